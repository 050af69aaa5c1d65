"""Error types shared across layers (the lowest layer, so models, datasets and evaluation can all
raise them; this module imports nothing)."""


class MMDetArgumentError(ValueError, AssertionError):
    """A bad argument that MMDetection rejects with an ``assert``.

    It is both a ``ValueError`` (what our code raises for bad input) and an ``AssertionError``
    (what MMDetection raises there), so callers and tests written against either keep working.
    """
