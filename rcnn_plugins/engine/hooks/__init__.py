"""Runner hooks: the atomic-save CheckpointHook, RNGStateHook, FreezeModulesHook,
DetVisualizationHook, DivergenceGuardHook, NumClassCheckHook and FastInferenceHook (importing this
package registers them in HOOKS)."""
from .checkpoint_hook import CheckpointHook  # noqa: F401
from .divergence_guard_hook import DivergenceError, DivergenceGuardHook  # noqa: F401
from .fast_inference_hook import FastInferenceHook  # noqa: F401
from .freeze_modules_hook import FreezeModulesHook  # noqa: F401
from .num_class_check_hook import NumClassCheckHook  # noqa: F401
from .rng_state_hook import RNGStateHook  # noqa: F401
from .visualization_hook import DetVisualizationHook  # noqa: F401
