"""``ResumableBatchSampler``: any batch sampler, made resumable mid-epoch and reproducible.

Wraps the batch sampler of a training data loader (``AspectRatioBatchSampler``, torch's
``BatchSampler``, ...) and adds the two things a bit-exact resume needs:

- **a start batch**: :meth:`start_at` makes the epoch begin at batch ``k``. The inner batch
  sampler still runs over the whole epoch (it only deals in indices, so this loads no image) and
  the first ``k`` batches are dropped, so batch ``k`` is exactly the batch that the uninterrupted
  run trained at that step, even when batches depend on the whole order (aspect-ratio buckets).
- **a seed per sample**: each batch is a :class:`SeededIndices` list whose ``seeds`` give every
  sample its own seed, ``sample_seed(seed, epoch, index)``. ``BaseDetDataset.__getitems__`` runs
  each sample's pipeline under that seed (:func:`rcnn_plugins.rng.seeded_rng`), so a sample's
  random flip depends on the run's seed, the epoch and the image only: not on which worker
  process loads it, how many workers there are, nor what that worker loaded before, which a
  mid-epoch resume (fresh workers, starting at batch ``k``) could not reproduce otherwise.

The training loops of :mod:`rcnn_plugins.engine.loops` install it; configs do not name it.
"""
from typing import Iterator, List

from torch.utils.data import Sampler

from ...registry import DATA_SAMPLERS
from ...rng import sample_seed


class SeededIndices(list):
    """A batch of dataset indices (a plain ``list``) with ``seeds``: one int per index."""

    def __init__(self, indices, seeds) -> None:
        super().__init__(indices)
        self.seeds = list(seeds)


@DATA_SAMPLERS.register_module()
class ResumableBatchSampler(Sampler):
    """Yield the batches of ``batch_sampler`` as :class:`SeededIndices`, from a chosen batch on.

    Args:
        batch_sampler: yields lists of dataset indices; its ``sampler`` (if any) is exposed as
            :attr:`sampler` so that mmengine's ``DistSamplerSeedHook`` still finds it.
        seed: the run's seed (``runner.seed``), mixed into every sample's seed.
    """

    def __init__(self, batch_sampler, seed: int) -> None:
        self.batch_sampler = batch_sampler
        self.seed = int(seed)
        self.epoch = 0
        self._start = 0

    @property
    def sampler(self):
        return getattr(self.batch_sampler, 'sampler', None)

    @property
    def batch_size(self):
        """The inner batch sampler's (mmengine reads ``loader.batch_sampler.batch_size``)."""
        return getattr(self.batch_sampler, 'batch_size', None)

    def set_epoch(self, epoch: int) -> None:
        """Epoch of the next iteration: for the sample seeds and the inner sampler's shuffle."""
        self.epoch = epoch
        if hasattr(self.sampler, 'set_epoch'):
            self.sampler.set_epoch(epoch)

    def start_at(self, batch: int) -> None:
        """Make iterations begin at batch ``batch`` of the epoch (until set again).

        Not a one-shot: torch's multi-worker iterator calls ``iter()`` on its batch sampler
        twice when it starts; the training loops set the start before every epoch."""
        if batch < 0:
            raise ValueError(f'start batch must be >= 0, got {batch}')
        self._start = batch

    def __iter__(self) -> Iterator[List[int]]:
        # Read the start and the epoch now, not at the first next(): the data loader creates
        # this iterator when its own iterator is created, which is when they are meant.
        return self._batches(self._start, self.epoch)

    def _batches(self, start: int, epoch: int) -> Iterator[List[int]]:
        per_epoch = max(len(self), 1)
        for position, batch in enumerate(self.batch_sampler):
            if position >= start:
                # An endless sampler (mmengine's InfiniteSampler) is one long epoch 0: count its
                # passes over the data as epochs, so an image is not flipped alike every pass.
                pass_ = epoch + position // per_epoch
                yield SeededIndices(batch, [sample_seed(self.seed, pass_, idx) for idx in batch])

    def __len__(self) -> int:
        """Batches in a whole epoch (a resumed epoch yields ``len(self) - start`` of them)."""
        return len(self.batch_sampler)
