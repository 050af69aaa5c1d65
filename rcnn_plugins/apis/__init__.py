"""apis (filled in by its owner)."""
