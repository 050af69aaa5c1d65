"""evaluation (filled in by its owner)."""
