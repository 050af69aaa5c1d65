"""necks (filled in by its owner)."""
