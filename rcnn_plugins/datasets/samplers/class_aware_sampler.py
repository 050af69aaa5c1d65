"""``ClassAwareSampler``: MMDetection's class-aware sampling (Relay Backpropagation, Shen et al. 2016).

Each step picks a class from a shuffled cycle over the classes that have images, then
``num_sample_class`` images containing it from that class's own shuffled cycle (a cycle is
reshuffled each time it is used up). An epoch has ``len(dataset)`` samples (per rank: the
``ceil(len / world_size)`` slice of rank ``r``), so every class is drawn about equally often
whatever its frequency in the data. The draws come from one ``torch.Generator`` seeded with
``seed + epoch``, in MMDetection's order, so the index sequence is MMDetection's for the same
seed and a pure function of (seed, epoch): ``ResumableBatchSampler`` (bit-exact mid-epoch resume)
wraps it like any other sampler.

The loop over samples here is index bookkeeping (no tensors, no images), one pass per epoch.
"""
import math
from typing import Dict, Iterator, List, Optional

import torch
from mmengine.dist import get_dist_info, sync_random_seed
from torch.utils.data import Sampler

from ...registry import DATA_SAMPLERS


class _ShuffledCycle:
    """Items of ``data`` in a random order, reshuffled (same generator) whenever exhausted."""

    def __init__(self, data: list, generator: torch.Generator) -> None:
        self.data = data
        self.generator = generator
        self.order = torch.randperm(len(data), generator=generator).tolist()
        self.pos = 0

    def __len__(self) -> int:
        return len(self.data)

    def next(self):
        if self.pos == len(self.data):
            self.order = torch.randperm(len(self.data), generator=self.generator).tolist()
            self.pos = 0
        item = self.data[self.order[self.pos]]
        self.pos += 1
        return item


@DATA_SAMPLERS.register_module()
class ClassAwareSampler(Sampler):
    """Args:
        dataset: a dataset with ``metainfo['classes']`` and ``get_cat_ids(idx)`` (0-based labels).
        seed: shuffling seed, identical on every rank (None: a synchronised random one). The
            Runner passes the run's seed.
        num_sample_class: images taken per class visit.
    """

    def __init__(self, dataset, seed: Optional[int] = None, num_sample_class: int = 1) -> None:
        if not isinstance(num_sample_class, int) or num_sample_class <= 0:
            raise ValueError(f'ClassAwareSampler: num_sample_class must be a positive int, got {num_sample_class!r}')
        self.rank, self.world_size = get_dist_info()
        self.dataset = dataset
        self.epoch = 0
        self.seed = sync_random_seed() if seed is None else seed
        self.num_sample_class = num_sample_class
        self.cat_dict = self.get_cat2imgs()
        self.num_samples = int(math.ceil(len(dataset) / self.world_size))
        self.total_size = self.num_samples * self.world_size
        self.num_cat_imgs = [len(v) for v in self.cat_dict.values()]
        self.valid_cat_inds = [i for i, n in enumerate(self.num_cat_imgs) if n != 0]
        self.num_classes = len(self.valid_cat_inds)
        if self.num_classes == 0:
            raise ValueError(f'ClassAwareSampler: no image of {type(dataset).__name__} has a labelled box; '
                             'class-aware sampling needs annotated images')

    def get_cat2imgs(self) -> Dict[int, List[int]]:
        """Label -> indices of the images that contain it (each image once per label)."""
        classes = self.dataset.metainfo.get('classes')
        if classes is None:
            raise ValueError("ClassAwareSampler: the dataset's metainfo has no 'classes'")
        if not hasattr(self.dataset, 'get_cat_ids'):
            raise TypeError(f'ClassAwareSampler: {type(self.dataset).__name__} has no get_cat_ids(idx)')
        cat2imgs = {i: [] for i in range(len(classes))}
        for idx in range(len(self.dataset)):
            for cat in sorted(set(self.dataset.get_cat_ids(idx))):
                cat2imgs[cat].append(idx)
        return cat2imgs

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator()
        g.manual_seed(self.epoch + self.seed)
        classes = _ShuffledCycle(self.valid_cat_inds, g)
        images = {c: _ShuffledCycle(self.cat_dict[c], g) for c in self.valid_cat_inds}
        rounds = int(math.ceil(self.total_size / self.num_classes / self.num_sample_class))
        indices = []
        for _ in range(rounds):
            for _ in range(len(classes)):
                c = classes.next()
                indices += [images[c].next() for _ in range(self.num_sample_class)]
        indices = (indices + indices)[:self.total_size]  # trim, or pad from the start if short
        offset = self.num_samples * self.rank
        return iter(indices[offset:offset + self.num_samples])

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
