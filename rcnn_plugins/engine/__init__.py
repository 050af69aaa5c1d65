"""Runner-side additions: hooks, the CPU bf16 optimizer wrapper, and checkpoint loading that works
with torch >= 2.6."""
from . import checkpoint_loader  # noqa: F401  (registers the local-file checkpoint loader)
from . import optimizers  # noqa: F401  (registers BF16OptimWrapper)
