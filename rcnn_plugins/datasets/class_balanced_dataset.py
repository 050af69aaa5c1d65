"""``ClassBalancedDataset``: mmengine's repeat-factor wrapper (LVIS, Gupta et al. 2019), usable
with rcnn_plugins' datasets and resumable samplers.

mmengine's semantics unchanged: with ``f(c)`` the fraction of images containing class ``c``,
``r(c) = max(1, sqrt(oversample_thr / f(c)))``, an image's factor is the max ``r(c)`` over its
classes (1 without any), and the image appears ``ceil(factor)`` times in the index list
(deterministic, unlike Detectron2's stochastic rounding). Two additions:

- the wrapped dataset's config is built from rcnn_plugins' registry (mmengine's builds from its
  root, which finds ``CocoDataset`` only under ``default_scope='rcnn_plugins'``);
- ``__getitems__`` hands the per-sample seeds of ``ResumableBatchSampler`` through to the
  wrapped dataset, so augmentations stay a function of (seed, epoch, index) and a resumed run
  loads bit-identical batches.
"""
from typing import Any, List, Sequence

from mmengine.dataset import ClassBalancedDataset as MMEngineClassBalancedDataset

from ..registry import DATASETS
from .samplers.resumable_batch_sampler import SeededIndices


@DATASETS.register_module()
class ClassBalancedDataset(MMEngineClassBalancedDataset):
    """Args (as mmengine): ``dataset`` (config or dataset), ``oversample_thr``, ``lazy_init``."""

    def __init__(self, dataset, oversample_thr: float, lazy_init: bool = False) -> None:
        if isinstance(dataset, dict):
            dataset = DATASETS.build(dataset)
        super().__init__(dataset, oversample_thr, lazy_init=lazy_init)

    def __getitems__(self, indices: Sequence[int]) -> List[Any]:
        inner = [self._get_ori_dataset_idx(i) for i in indices]
        seeds = getattr(indices, 'seeds', None)
        if hasattr(self.dataset, '__getitems__'):
            return self.dataset.__getitems__(inner if seeds is None else SeededIndices(inner, seeds))
        return [self.dataset[i] for i in inner]
