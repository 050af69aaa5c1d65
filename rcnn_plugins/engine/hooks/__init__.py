"""Hooks: the atomic CheckpointHook and DetVisualizationHook (importing registers them in HOOKS)."""
from .checkpoint_hook import CheckpointHook  # noqa: F401
