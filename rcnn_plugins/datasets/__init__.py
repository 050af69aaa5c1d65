"""datasets (filled in by its owner)."""
