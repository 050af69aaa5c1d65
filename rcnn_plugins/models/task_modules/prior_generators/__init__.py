"""prior_generators (filled in by its owner)."""
