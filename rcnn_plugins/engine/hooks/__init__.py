"""Runner hooks: the atomic-save CheckpointHook and DetVisualizationHook (importing this package
registers both in HOOKS)."""
from .checkpoint_hook import CheckpointHook  # noqa: F401
from .visualization_hook import DetVisualizationHook  # noqa: F401
