"""transforms (filled in by its owner)."""
