"""Runner-side additions: hooks."""
