"""Runner-side additions: hooks, train loops, the CPU bf16 optimizer wrapper, and safe checkpoint
loading (``weights_only=True`` with an allow-list, see :mod:`.safe_load`) for every mmengine
checkpoint read."""
from . import checkpoint_loader  # noqa: F401  (routes mmengine's checkpoint loaders through safe_load)
from . import optimizers  # noqa: F401  (registers BF16OptimWrapper)
