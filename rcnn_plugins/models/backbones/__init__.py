"""backbones (filled in by its owner)."""
