"""task_modules (filled in by its owner)."""
