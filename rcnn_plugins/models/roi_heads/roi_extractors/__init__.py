"""roi_extractors (filled in by its owner)."""
