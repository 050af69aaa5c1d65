"""``AspectRatioBatchSampler``: batches of only wide or only tall images.

Padding a batch to its largest image wastes less when all its images have the same
orientation. Indices come from an inner sampler (e.g. mmengine's ``DefaultSampler``) and go to
one of two buckets, wide (``width >= height``) or tall; a bucket that reaches ``batch_size`` is
yielded. At the end of an epoch the two buckets' remainders (each under ``batch_size``) are merged
and batched together, as MMDetection does, so at most one batch mixes orientations.

That merge is what keeps multi-process training alive: every rank then gets exactly
``ceil(len(sampler) / batch_size)`` batches, whatever its mix of wide and tall images. Batching the
remainders separately would give one rank an extra batch, and DDP would wait forever for the
others at that step's gradient all-reduce.

With ``drop_last=True`` the last batch of the merged remainders is dropped even when it is
exactly ``batch_size`` long (MMDetection's rule: that batch would mix orientations), so an epoch
has ``floor(len(sampler) / batch_size)`` batches (``len()``) or one fewer, depending on the
shuffle. Epoch-based multi-GPU training should therefore keep the default ``drop_last=False``.
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
        drop_last: drop the epoch's last batch of merged remainders (see the module docstring).
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
        leftover = buckets[0] + buckets[1]
        for start in range(0, len(leftover), self.batch_size):
            # drop_last drops the final chunk (<= batch_size) of the remainders, full or not.
            if not self.drop_last or start + self.batch_size < len(leftover):
                yield leftover[start:start + self.batch_size]

    def __len__(self) -> int:
        """Batches per epoch: the same on every rank; with ``drop_last`` an upper bound (see the
        module docstring)."""
        if self.drop_last:
            return len(self.sampler) // self.batch_size
        return -(-len(self.sampler) // self.batch_size)
