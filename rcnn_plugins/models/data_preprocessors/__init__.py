"""data_preprocessors (filled in by its owner)."""
