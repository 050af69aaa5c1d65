"""detectors (filled in by its owner)."""
