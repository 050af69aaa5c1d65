"""``IterBasedTrainLoop``: mmengine's iteration loop (same arguments) that resumes bit-exactly.

mmengine's loop resumes by running the data loader through all the iterations already trained
(loading and augmenting every one of their images) and restarts its worker processes with the
same seeds, so the augmentations after a resume are not those of the uninterrupted run. This
loop starts at epoch ``iter // len(dataloader)``, batch ``iter % len(dataloader)`` (batch
``iter`` of the one endless pass of an ``InfiniteSampler``), skipping the trained batches in the
batch sampler; the rest is as :class:`.EpochBasedTrainLoop` (per-sample
seeds, epoch iterators and validation that leave the training random streams alone).
"""
from typing import Dict, List, Optional, Tuple, Union

from mmengine.dataset import InfiniteSampler
from mmengine.runner import IterBasedTrainLoop as MMEngineIterBasedTrainLoop
from torch.utils.data import DataLoader

from ...registry import LOOPS
from ...rng import preserved_rng
from .resumable_loader import epoch_batches, resumable_loader, sync_loader_seed


@LOOPS.register_module()
class IterBasedTrainLoop(MMEngineIterBasedTrainLoop):
    """Train ``max_iters`` iterations, validating every ``val_interval`` from ``val_begin`` on.

    Args (as mmengine's): runner, dataloader, max_iters, val_begin, val_interval,
    dynamic_intervals.
    """

    def __init__(self, runner, dataloader: Union[DataLoader, Dict], max_iters: int,
                 val_begin: int = 1, val_interval: int = 1000,
                 dynamic_intervals: Optional[List[Tuple[int, int]]] = None) -> None:
        super().__init__(runner, dataloader, max_iters, val_begin, val_interval, dynamic_intervals)
        # mmengine's __init__ already started an iterator over the original loader; dropping it
        # (and the loader) shuts its worker processes down. run() iterates the rebuilt loader.
        del self.dataloader_iterator
        self._loader_seed = runner.seed
        self.dataloader = resumable_loader(self.dataloader, runner.seed)

    def run(self) -> None:
        """Launch training (from where a resumed checkpoint stopped)."""
        self.runner.call_hook('before_train')
        # The whole run is one big "epoch" for the hooks, as in mmengine.
        self.runner.call_hook('before_train_epoch')
        sync_loader_seed(self.dataloader, self._loader_seed, self.runner.seed)
        if isinstance(self.dataloader.batch_sampler.sampler, InfiniteSampler):
            # One endless stream of indices: the trained batches are its first _iter ones.
            epoch, start = 0, self._iter
        else:
            epoch, start = divmod(self._iter, len(self.dataloader))
        batches = epoch_batches(self.dataloader, epoch, start)
        while self._iter < self._max_iters and not self.stop_training:
            self.runner.model.train()
            data_batch = next(batches, None)
            if data_batch is None:  # end of the data: the next pass, reshuffled
                epoch += 1
                batches = epoch_batches(self.dataloader, epoch)
                data_batch = next(batches)
            self.run_iter(data_batch)

            self._decide_current_val_interval()
            if (self.runner.val_loop is not None and self._iter >= self.val_begin
                    and (self._iter % self.val_interval == 0 or self._iter == self._max_iters)):
                with preserved_rng():
                    self.runner.val_loop.run()

        self.runner.call_hook('after_train_epoch')
        self.runner.call_hook('after_train')
        return self.runner.model
