"""Runner-side additions: hooks, and checkpoint loading that works with torch >= 2.6."""
from . import checkpoint_loader  # noqa: F401  (registers the local-file checkpoint loader)
