"""Colour palettes for drawing: one RGB tuple (0-255) per class."""
from typing import List, Sequence, Tuple, Union

import numpy as np
from matplotlib import colors as mpl_colors

from rcnn_plugins.registry import DATASETS

Color = Tuple[int, int, int]
# Named palettes are those of the datasets' METAINFO (looked up lazily: datasets are optional here).
DATASET_PALETTES = {'coco': 'CocoDataset', 'voc': 'VOCDataset'}


def get_palette(palette: Union[None, str, Sequence, Color], num_classes: int) -> List[Color]:
    """Expand ``palette`` to a list of at least ``num_classes`` RGB tuples.

    Args:
        palette: a list of RGB tuples (used as is), one RGB tuple or matplotlib colour name (the
            same colour for every class), ``'coco'``/``'voc'`` (the dataset's palette), or
            ``None``/``'random'`` (random colours, fixed seed so runs draw alike).
        num_classes: how many classes must be covered.
    """
    if palette is None or palette == 'random':
        rng = np.random.RandomState(42)
        return [tuple(int(c) for c in rng.randint(0, 256, size=3)) for _ in range(num_classes)]
    if isinstance(palette, str):
        if palette in DATASET_PALETTES:
            return get_palette(DATASETS.get(DATASET_PALETTES[palette]).METAINFO['palette'], num_classes)
        rgb = tuple(int(round(255 * c)) for c in mpl_colors.to_rgb(palette))
        return [rgb] * num_classes
    if isinstance(palette, tuple) and len(palette) == 3 and all(isinstance(c, (int, np.integer)) for c in palette):
        return [tuple(int(c) for c in palette)] * num_classes
    palette = [tuple(int(c) for c in color) for color in palette]
    if len(palette) < num_classes:
        raise ValueError(f'palette has {len(palette)} colours but {num_classes} classes are drawn')
    return palette
