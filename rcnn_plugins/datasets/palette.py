"""Class colours, one policy for datasets and drawing: one RGB tuple (0-255 ints) per class.

:func:`default_palette` gives the colours of a dataset without a ``palette`` in its metainfo and
of a drawing asked for ``None`` / ``'random'`` (MMDetection's name): hues stepping by the golden
ratio, so neighbouring labels are well apart and ``default_palette(n)[:k] == default_palette(k)``.
:func:`get_palette` expands any palette a config or visualizer gives.
"""
import colorsys
from typing import List, Sequence, Tuple, Union

Color = Tuple[int, int, int]
# Named palettes are those of the datasets' METAINFO (looked up through the registry).
DATASET_PALETTES = {'coco': 'CocoDataset', 'voc': 'VOCDataset'}


def default_palette(num_classes: int) -> List[Color]:
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


def get_palette(palette: Union[None, str, Sequence, Color], num_classes: int) -> List[Color]:
    """Expand ``palette`` to a list of at least ``num_classes`` RGB tuples.

    Args:
        palette: a list of RGB tuples (used as is), one RGB tuple or matplotlib colour name (the
            same colour for every class), ``'coco'``/``'voc'`` (the dataset's palette), or
            ``None``/``'random'`` (:func:`default_palette`).
        num_classes: how many classes must be covered.
    """
    import numpy as np
    if palette is None or palette == 'random':
        return default_palette(num_classes)
    if isinstance(palette, str):
        if palette in DATASET_PALETTES:
            from rcnn_plugins.registry import DATASETS
            return get_palette(DATASETS.get(DATASET_PALETTES[palette]).METAINFO['palette'], num_classes)
        from matplotlib import colors as mpl_colors
        rgb = tuple(int(round(255 * c)) for c in mpl_colors.to_rgb(palette))
        return [rgb] * num_classes
    if isinstance(palette, tuple) and len(palette) == 3 and all(isinstance(c, (int, np.integer)) for c in palette):
        return [tuple(int(c) for c in palette)] * num_classes
    palette = [tuple(int(c) for c in color) for color in palette]
    if len(palette) < num_classes:
        raise ValueError(f'palette has {len(palette)} colours but {num_classes} classes are drawn')
    return palette
