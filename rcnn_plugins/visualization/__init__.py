"""visualization (filled in by its owner)."""
