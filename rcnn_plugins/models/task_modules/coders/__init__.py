"""coders (filled in by its owner)."""
