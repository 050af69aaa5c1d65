"""Runner hooks: the atomic-save CheckpointHook, DetVisualizationHook and FastInferenceHook
(importing this package registers them in HOOKS)."""
from .checkpoint_hook import CheckpointHook  # noqa: F401
from .visualization_hook import DetVisualizationHook  # noqa: F401
from .fast_inference_hook import FastInferenceHook  # noqa: F401
