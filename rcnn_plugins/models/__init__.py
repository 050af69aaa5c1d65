"""Model components. Importing this package registers every model class in ``MODELS`` and every
task utility (assigners, samplers, coders, prior generators) in ``TASK_UTILS``."""
from . import (  # noqa: F401
    backbones,
    data_preprocessors,
    dense_heads,
    detectors,
    layers,
    losses,
    necks,
    roi_heads,
    task_modules,
    test_time_augs,
)
