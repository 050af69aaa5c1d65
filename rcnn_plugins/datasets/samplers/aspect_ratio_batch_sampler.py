"""``AspectRatioBatchSampler``: batches of only wide or only tall images.

Padding a batch to its largest image wastes less when all its images have the same
orientation. Indices come from an inner sampler (e.g. mmengine's ``DefaultSampler``) and go to
one of two buckets, wide (``width >= height``) or tall; a bucket that reaches ``batch_size`` is
yielded. At the end of an epoch each bucket's remainder is yielded as its own, smaller batch
(MMDetection merges the two remainders into mixed batches; keeping them apart means EVERY batch
has one orientation), or dropped with ``drop_last=True``.
"""
from typing import Iterator, List

import numpy as np
from torch.utils.data import BatchSampler, Sampler

from ...registry import DATA_SAMPLERS


@DATA_SAMPLERS.register_module()
class AspectRatioBatchSampler(BatchSampler):
    """Group the indices of ``sampler`` into batches of one orientation.

    Args:
        sampler: yields dataset indices; must have a ``dataset`` attribute whose
            ``get_data_info(idx)`` returns ``width`` and ``height``.
        batch_size: images per batch.
        drop_last: drop each orientation's last, incomplete batch.
    """

    def __init__(self, sampler: Sampler, batch_size: int, drop_last: bool = False) -> None:
        if not isinstance(sampler, Sampler):
            raise TypeError(f'sampler must be a torch Sampler, got {type(sampler).__name__}')
        if not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f'batch_size must be a positive integer, got {batch_size!r}')
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = drop_last
        self._is_tall = None  # bool per dataset index, computed on first use

    def _tall_flags(self) -> np.ndarray:
        """``is_tall[idx]`` for every dataset index (read once: image sizes do not change)."""
        if self._is_tall is None:
            dataset = self.sampler.dataset
            flags = []
            for idx in range(len(dataset)):
                info = dataset.get_data_info(idx)
                flags.append(info['width'] < info['height'])
            self._is_tall = np.array(flags, dtype=bool)
        return self._is_tall

    def __iter__(self) -> Iterator[List[int]]:
        is_tall = self._tall_flags()
        buckets: List[List[int]] = [[], []]  # [wide, tall]
        for idx in self.sampler:
            bucket = buckets[int(is_tall[idx])]
            bucket.append(idx)
            if len(bucket) == self.batch_size:
                yield bucket[:]
                bucket.clear()
        if not self.drop_last:
            for bucket in buckets:
                if bucket:
                    yield bucket

    def __len__(self) -> int:
        """Exact number of batches of the coming epoch (each orientation batched separately)."""
        is_tall = self._tall_flags()
        num_tall = int(sum(is_tall[idx] for idx in self.sampler))
        num_wide = len(self.sampler) - num_tall
        if self.drop_last:
            return num_wide // self.batch_size + num_tall // self.batch_size
        return -(-num_wide // self.batch_size) + -(-num_tall // self.batch_size)
