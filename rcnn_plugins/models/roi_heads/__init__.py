"""roi_heads (filled in by its owner)."""
