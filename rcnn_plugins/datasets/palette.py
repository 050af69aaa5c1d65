"""Default per-class colours for datasets that do not give a ``palette`` in their metainfo."""
import colorsys
from typing import List, Tuple


def default_palette(num_classes: int) -> List[Tuple[int, int, int]]:
    """``num_classes`` distinct RGB colours (0..255 ints), the same prefix for any length.

    Hues step by the golden ratio so neighbouring labels get well separated colours, and
    ``default_palette(n)[:k] == default_palette(k)``: a dataset with a subset of classes gets
    the same colours as the first entries of a longer list.
    """
    golden = 0.618033988749895
    palette = []
    for i in range(num_classes):
        hue = (i * golden) % 1.0
        # Alternate brightness a little so that hues that come close again stay distinguishable.
        value = 0.95 if i % 2 == 0 else 0.75
        r, g, b = colorsys.hsv_to_rgb(hue, 0.85, value)
        palette.append((int(round(r * 255)), int(round(g * 255)), int(round(b * 255))))
    return palette
