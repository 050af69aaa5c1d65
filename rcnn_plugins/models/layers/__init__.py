"""layers (filled in by its owner)."""
