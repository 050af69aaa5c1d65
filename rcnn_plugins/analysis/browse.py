"""Draw a dataset's ground truth as the model sees it: after the training pipeline.

Each image is loaded and augmented by the config's ``train_dataloader.dataset.pipeline``
(resize, flip, ...), then its ``gt_instances`` are drawn on the augmented image, so wrong
annotations and wrong augmentations both show.
"""
import copy
import os
import os.path as osp
from typing import List, Optional

import numpy as np
from mmengine.config import Config
from tqdm import tqdm

from ..config_utils import enter_default_scope
from ..registry import DATASETS
from ..visualization import DetLocalVisualizer


def browse_dataset(cfg: Config, output_dir: Optional[str] = None, split: str = 'train',
                   max_images: Optional[int] = None, show: bool = False, show_interval: float = 2) -> List[str]:
    """Write ``<output_dir>/<image file name>`` for each (augmented) image with its boxes drawn.

    Args:
        cfg: the config; its ``{split}_dataloader.dataset`` (and that dataset's pipeline) is used.
        output_dir: where the drawings go; ``None`` with ``show`` only displays them.
        split: ``'train'`` (the default: the augmentations are the point), ``'val'`` or ``'test'``.
        max_images: stop after this many images.
        show: also display each drawing for ``show_interval`` seconds.

    Returns the paths written.
    """
    enter_default_scope(cfg)
    dataset = DATASETS.build(copy.deepcopy(cfg[f'{split}_dataloader'].dataset))
    visualizer = DetLocalVisualizer(name='browse_dataset')
    visualizer.dataset_meta = dataset.metainfo
    if output_dir is not None:
        os.makedirs(output_dir, exist_ok=True)

    count = len(dataset) if max_images is None else min(max_images, len(dataset))
    written = []
    for idx in tqdm(range(count), desc='browse_dataset', unit='img'):
        item = dataset[idx]
        sample = item['data_samples']
        image = item['inputs'].permute(1, 2, 0).numpy()
        if image.shape[-1] == 3:
            image = image[..., ::-1]   # the pipeline's BGR -> RGB for drawing
        name = osp.basename(sample.img_path) if 'img_path' in sample else f'{idx:06d}.png'
        out_file = osp.join(output_dir, name) if output_dir is not None else None
        visualizer.add_datasample(name, np.ascontiguousarray(image), sample, draw_pred=False, show=show,
                                  wait_time=show_interval, out_file=out_file)
        if out_file is not None:
            written.append(out_file)
    return written
