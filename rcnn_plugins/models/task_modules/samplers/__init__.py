"""samplers (filled in by its owner)."""
