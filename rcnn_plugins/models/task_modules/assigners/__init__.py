"""assigners (filled in by its owner)."""
