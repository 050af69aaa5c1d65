"""Runner-side additions: hooks, and safe checkpoint loading (``weights_only=True`` with an
allow-list, see :mod:`.safe_load`) for every mmengine checkpoint read."""
from . import checkpoint_loader  # noqa: F401  (routes mmengine's checkpoint loaders through safe_load)
