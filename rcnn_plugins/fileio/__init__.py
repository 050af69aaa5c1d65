"""File IO below every other layer: safe checkpoint reading (:mod:`.safe_load`), the restricted
unpickler for plain pickles (:mod:`.safe_pickle`), crash-safe writes (:mod:`.atomic`), the hub
cache paths (:mod:`.hub_cache`) and the mmengine checkpoint schemes that route every checkpoint
read through the safe loader (:mod:`.checkpoint_schemes`, installed by an explicit call)."""
from .atomic import atomic_path, atomic_write, remove_stale_partials, write_text_atomically
from .checkpoint_schemes import install_safe_loading
from .hub_cache import hub_checkpoint_path, mmengine_home
from .safe_load import (
                        UNSAFE_ENV,
                        CheckpointFileError,
                        UnsafeCheckpointError,
                        allow_unsafe_load,
                        load_checkpoint_file,
                        save_safetensors,
                        unsafe_load_allowed,
)
from .safe_pickle import NUMPY_GLOBALS, TENSOR_GLOBALS, RefusedGlobal, restricted_load

__all__ = ['atomic_path', 'atomic_write', 'remove_stale_partials', 'write_text_atomically',
           'install_safe_loading', 'hub_checkpoint_path', 'mmengine_home', 'UNSAFE_ENV',
           'CheckpointFileError', 'UnsafeCheckpointError', 'allow_unsafe_load', 'load_checkpoint_file',
           'save_safetensors', 'unsafe_load_allowed', 'NUMPY_GLOBALS', 'TENSOR_GLOBALS', 'RefusedGlobal',
           'restricted_load']
