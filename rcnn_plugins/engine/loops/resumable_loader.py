"""What both training loops do to their data loader to resume bit-exactly.

- :func:`resumable_loader` rebuilds the training ``DataLoader`` around a
  :class:`~rcnn_plugins.datasets.samplers.ResumableBatchSampler` (same dataset, workers,
  collate function, ...): a torch ``DataLoader`` does not allow swapping its batch sampler.
- :func:`epoch_batches` starts an epoch's iterator at a given batch, under
  :func:`~rcnn_plugins.rng.preserved_rng`: creating a data-loader iterator draws a worker base
  seed from torch's global generator, and a mid-epoch resume creates one where the uninterrupted
  run did not, which would shift every later draw of the RPN / RoI samplers.
- :func:`sync_loader_seed` gives the sampler the seed that ``Runner.resume`` restored: mmengine
  builds the data loader (and its shuffling sampler) with the new run's seed before it resumes,
  so with ``randomness.seed=None`` a resumed run would otherwise shuffle differently.
"""
from typing import Iterator

from torch.utils.data import DataLoader

from ...datasets.samplers import ResumableBatchSampler
from ...rng import preserved_rng


def resumable_loader(loader: DataLoader, seed: int) -> DataLoader:
    """``loader`` with its batch sampler wrapped in a ``ResumableBatchSampler``."""
    if isinstance(loader.batch_sampler, ResumableBatchSampler):
        return loader
    if loader.batch_sampler is None:
        raise ValueError('rcnn_plugins train loops need a batched train_dataloader '
                         '(batch_size or batch_sampler), got batch_size=None')
    kwargs = dict(num_workers=loader.num_workers, collate_fn=loader.collate_fn,
                  pin_memory=loader.pin_memory, timeout=loader.timeout,
                  worker_init_fn=loader.worker_init_fn, generator=loader.generator,
                  persistent_workers=loader.persistent_workers,
                  pin_memory_device=loader.pin_memory_device)
    if loader.num_workers > 0:
        kwargs.update(multiprocessing_context=loader.multiprocessing_context,
                      prefetch_factor=loader.prefetch_factor)
    if hasattr(loader, 'in_order'):  # torch >= 2.6
        kwargs['in_order'] = loader.in_order
    return DataLoader(loader.dataset, batch_sampler=ResumableBatchSampler(loader.batch_sampler, seed),
                      **kwargs)


def epoch_batches(loader: DataLoader, epoch: int, start: int = 0) -> Iterator:
    """An iterator over the batches of ``epoch`` from batch ``start`` on (no image of the
    skipped batches is loaded: the batch sampler drops their indices)."""
    loader.batch_sampler.set_epoch(epoch)
    loader.batch_sampler.start_at(start)
    with preserved_rng():
        return iter(loader)


def sync_loader_seed(loader: DataLoader, built_with: int, seed: int) -> None:
    """Move ``loader``'s sample seeds and its sampler's shuffle seed from ``built_with`` (the
    seed the Runner built it with) to ``seed`` (the run's seed after a resume)."""
    loader.batch_sampler.seed = seed
    sampler = loader.batch_sampler.sampler
    if getattr(sampler, 'seed', None) == built_with:  # mmengine's DefaultSampler, InfiniteSampler
        sampler.seed = seed
