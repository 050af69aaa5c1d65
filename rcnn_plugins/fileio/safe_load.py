"""Safe checkpoint reading: ``torch.load(weights_only=True)`` with an allow-list, opt-in unsafe.

A ``.pth`` file is a pickle, and unpickling can call any function the file names (a downloaded
checkpoint whose ``__reduce__`` says ``os.system`` runs that command). Every checkpoint rcnn_plugins
reads (``--resume``, ``load_from``, ``tools/test.py``, ``init_detector``, ``Pretrained`` /
``torchvision://`` backbone init; see :mod:`rcnn_plugins.fileio.checkpoint_schemes`) goes through
:func:`load_checkpoint_file`, which unpickles with ``weights_only=True``: tensors, containers,
numbers and strings, plus the few classes our, mmengine's and MMDetection's checkpoints hold
(:func:`allowed_globals`):

- numpy arrays, scalars and dtypes (mmengine stores metric values and RNG-like state as numpy);
- mmengine's ``HistoryBuffer`` (the message hub's loss history), whose pickle rebuilds its
  statistics methods with ``getattr(HistoryBuffer, 'mean')``: ``getattr`` is allowed for exactly
  that, through :func:`_history_buffer_getattr`, never as the general ``builtins.getattr``.

A file that needs any other global is refused with :class:`UnsafeCheckpointError`, naming the
file and the globals. It loads (with ``weights_only=False``, after a logged warning) only with an
explicit opt-in: ``--unsafe-load`` (every command that reads a checkpoint), ``init_detector(...,
unsafe_load=True)``, ``with allow_unsafe_load():`` or the environment variable
``RCNN_PLUGINS_UNSAFE_LOAD=1``.

``.safetensors`` files (no pickle at all) are read with the ``safetensors`` package, imported
only when such a file is loaded.
"""
import contextlib
import io
import os
import pickle
import re
from typing import IO, Iterator, List, Optional, Union

import torch
from mmengine.logging import print_log

#: Environment variable that opts in to unsafe (full pickle) loading when set to ``1``.
UNSAFE_ENV = 'RCNN_PLUGINS_UNSAFE_LOAD'

_OPT_IN = (f'--unsafe-load (every command that reads a checkpoint), init_detector(..., unsafe_load=True) '
           f'or the environment variable {UNSAFE_ENV}=1')

# Set by allow_unsafe_load(); a counter so that nested opt-ins restore correctly.
_unsafe_depth = 0


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint needs pickle globals outside the allow-list (it could run code when loaded)."""


class CheckpointFileError(ValueError):
    """The file is not a readable checkpoint: truncated, empty, or not a torch file at all."""


def unsafe_load_allowed() -> bool:
    """Whether the user opted in to full-pickle loading (context manager or environment)."""
    return _unsafe_depth > 0 or os.environ.get(UNSAFE_ENV, '') == '1'


@contextlib.contextmanager
def allow_unsafe_load(enabled: bool = True) -> Iterator[None]:
    """Within the block, checkpoints refused by the safe loader load with ``weights_only=False``
    (each such load is logged). ``enabled=False`` makes the block a no-op, so callers can pass
    their flag straight through."""
    global _unsafe_depth
    if enabled:
        _unsafe_depth += 1
    try:
        yield
    finally:
        if enabled:
            _unsafe_depth -= 1


def _history_buffer_getattr(obj, name):
    """Stands in for ``builtins.getattr`` while unpickling: only ``HistoryBuffer``'s own public
    methods (how pickle rebuilds ``HistoryBuffer._statistics_methods``), nothing else."""
    from mmengine.logging.history_buffer import HistoryBuffer
    if obj is HistoryBuffer and not name.startswith('_') and callable(getattr(HistoryBuffer, name, None)):
        return getattr(HistoryBuffer, name)
    raise UnsafeCheckpointError(
        f'unsupported GLOBAL builtins.getattr applied to ({getattr(obj, "__name__", type(obj).__name__)}, '
        f'{name!r}): only getattr(HistoryBuffer, <statistics method>) is allowed')


def allowed_globals() -> List:
    """What ``weights_only=True`` unpickling may construct beyond torch's defaults, as accepted
    by ``torch.serialization.safe_globals`` (objects, or ``(object, 'pickled.name')`` pairs for
    names that differ between numpy 1.x and 2.x)."""
    import numpy as np
    from mmengine.logging.history_buffer import HistoryBuffer
    try:
        from numpy._core.multiarray import _reconstruct, scalar  # numpy 2
    except ImportError:
        from numpy.core.multiarray import _reconstruct, scalar  # numpy 1
    allowed = [HistoryBuffer, np.ndarray, np.dtype,
               (_history_buffer_getattr, 'builtins.getattr')]
    # numpy 2 pickles arrays and scalars as numpy._core.multiarray.*, numpy 1 as numpy.core.*.
    for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        allowed += [(_reconstruct, f'{module}._reconstruct'), (scalar, f'{module}.scalar')]
    # numpy >= 1.25 pickles some dtypes through their classes (numpy.dtypes.Float64DType, ...).
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        allowed += [getattr(dtypes, name) for name in dtypes.__all__]
    return allowed


def _describe(source) -> str:
    return source if isinstance(source, str) else getattr(source, 'name', '<in-memory checkpoint>')


def _refused_globals(source, error: Exception) -> List[str]:
    """The globals a refused checkpoint asked for: torch's scan of the file (zip format) minus
    our allow-list, else the one named in torch's error message."""
    names: List[str] = []
    if isinstance(source, str):
        try:
            allowed = {f'{g.__module__}.{g.__qualname__}' if not isinstance(g, tuple) else g[1]
                       for g in allowed_globals()}
            allowed.add('builtins.getattr')
            names = [name for name in torch.serialization.get_unsafe_globals_in_checkpoint(source)
                     if name not in allowed]
        except Exception:  # legacy (non-zip) format: torch cannot scan it
            names = []
    if not names:
        names = re.findall(r'GLOBAL (\S+?)(?: |\.? was)', str(error))
    return names


def _torch_reason(error: Exception) -> str:
    """The specific part of torch's weights_only error (without its generic advice)."""
    boilerplate = ('Weights only load failed', 'Please file an issue', 'Check the documentation')
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith(boilerplate)]
    return ' '.join(lines).replace('WeightsUnpickler error: ', '') or type(error).__name__


def _unreadable(source, reason: str) -> CheckpointFileError:
    return CheckpointFileError(
        f'{_describe(source)} is not a readable torch checkpoint ({reason}): it is truncated, empty or not a '
        'checkpoint at all (an HTML error page from a failed download?). Download or save it again.')


def load_checkpoint_file(source: Union[str, IO[bytes]], map_location=None):
    """Read a checkpoint safely (see the module docstring).

    Args:
        source: a local file path (``.pth``, ``.pt``, ``.safetensors``, ...) or a binary buffer.
        map_location: as for ``torch.load``.

    Returns:
        What the file holds: a dict (``{'state_dict', 'meta', ...}``, or a bare state dict).

    Raises:
        UnsafeCheckpointError: the file needs globals outside the allow-list and no opt-in is set.
        CheckpointFileError: the file is truncated, empty or not a torch checkpoint.
    """
    if isinstance(source, str) and source.endswith('.safetensors'):
        from safetensors.torch import load_file  # optional dependency, only for these files
        device = map_location if isinstance(map_location, str) else 'cpu'
        return load_file(source, device=device)
    try:
        with torch.serialization.safe_globals(allowed_globals()):
            return torch.load(source, map_location=map_location, weights_only=True)
    except (EOFError, RuntimeError, OSError) as error:
        # Not: a missing or unreadable path. Yes: torch's zip reader failing on cut-off bytes
        # (RuntimeError "PytorchStreamReader failed ..." or OSError EINVAL), no bytes at all.
        if isinstance(error, (FileNotFoundError, PermissionError, IsADirectoryError)) or (
                isinstance(error, RuntimeError) and 'PytorchStreamReader' not in str(error)):
            raise
        raise _unreadable(source, str(error).split('. ')[0] or 'no data') from None
    except pickle.UnpicklingError as error:
        refused = _refused_globals(source, error)
        reason = _torch_reason(error)
        if not refused:  # no forbidden global: the bytes are not a pickle torch understands
            raise _unreadable(source, reason) from None
        if not unsafe_load_allowed():
            raise UnsafeCheckpointError(
                f'Refusing to load checkpoint {_describe(source)}: it asks for the pickle global(s) '
                f'{", ".join(refused)}, which are not tensors, numpy arrays or mmengine history, and '
                f'unpickling them could run code from the file. If you trust the file, load it with '
                f'{_OPT_IN}. (torch: {reason})') from None
        print_log(f'UNSAFE LOAD: loading {_describe(source)} with weights_only=False although it '
                  f'asks for {", ".join(refused)} (opted in through {_OPT_IN}); this runs any code '
                  'the file contains.', logger='current', level=30)
        if isinstance(source, io.IOBase):
            source.seek(0)
        return torch.load(source, map_location=map_location, weights_only=False)


def save_safetensors(state_dict: dict, path: str, metadata: Optional[dict] = None) -> None:
    """Write a flat ``{name: tensor}`` state dict as ``.safetensors`` (readable by
    :func:`load_checkpoint_file`, ``load_from`` and ``init_detector``); tensors are made
    contiguous, as the format requires."""
    from safetensors.torch import save_file
    save_file({k: v.contiguous() for k, v in state_dict.items()}, path, metadata=metadata)
