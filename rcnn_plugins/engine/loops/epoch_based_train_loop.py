"""``EpochBasedTrainLoop``: mmengine's epoch loop (same arguments) that resumes bit-exactly.

Three changes, each needed for a resumed run to end with the same weights as the run left alone
(``tests/promises/test_resume_exact.py``):

- **mid-epoch resume**: a checkpoint saved by an iteration-level ``CheckpointHook(by_epoch=False)``
  records ``iter`` inside epoch ``epoch``; mmengine restarts that epoch from its first batch, this
  loop continues at batch ``iter - epoch * len(dataloader)``, skipping the trained batches in the
  batch sampler (indices only, no image loaded). Hooks see the true ``batch_idx``.
- **per-sample seeds** for the data pipeline, and no draw from the global generators when an
  epoch's iterator starts (see :mod:`.resumable_loader`).
- **validation leaves the training random streams alone** (:func:`~rcnn_plugins.rng.preserved_rng`):
  a checkpoint is written before the validation that follows it, so whatever validation draws
  would be missing from a run resumed from that checkpoint.

The RNG states themselves travel in the checkpoint through ``RNGStateHook``.
"""
from typing import Dict, List, Optional, Tuple, Union

import torch
from mmengine.runner import EpochBasedTrainLoop as MMEngineEpochBasedTrainLoop
from torch.utils.data import DataLoader

from ...registry import LOOPS
from ...rng import preserved_rng
from .resumable_loader import epoch_batches, resumable_loader, sync_loader_seed


@LOOPS.register_module()
class EpochBasedTrainLoop(MMEngineEpochBasedTrainLoop):
    """Train ``max_epochs`` epochs, validating every ``val_interval`` from ``val_begin`` on.

    Args (as mmengine's): runner, dataloader, max_epochs, val_begin, val_interval,
    dynamic_intervals.
    """

    def __init__(self, runner, dataloader: Union[DataLoader, Dict], max_epochs: int,
                 val_begin: int = 1, val_interval: int = 1,
                 dynamic_intervals: Optional[List[Tuple[int, int]]] = None) -> None:
        super().__init__(runner, dataloader, max_epochs, val_begin, val_interval, dynamic_intervals)
        self._loader_seed = runner.seed
        self.dataloader = resumable_loader(self.dataloader, runner.seed)

    def _resume_batch(self) -> int:
        """Batch of the current epoch to start at: 0, or where a mid-epoch checkpoint stopped."""
        start = self._iter - self._epoch * len(self.dataloader)
        if not 0 <= start <= len(self.dataloader):
            raise RuntimeError(
                f'cannot resume at iteration {self._iter} of epoch {self._epoch + 1}: epochs now '
                f'have {len(self.dataloader)} batches, which puts that iteration outside the epoch. '
                'Resume with the dataset and batch size the checkpoint was trained with.')
        return start

    def run(self) -> torch.nn.Module:
        """Launch training (from where a resumed checkpoint stopped)."""
        self.runner.call_hook('before_train')
        sync_loader_seed(self.dataloader, self._loader_seed, self.runner.seed)
        start = self._resume_batch()
        while self._epoch < self._max_epochs and not self.stop_training:
            self.run_epoch(start)
            start = 0

            self._decide_current_val_interval()
            if (self.runner.val_loop is not None and self._epoch >= self.val_begin
                    and (self._epoch % self.val_interval == 0 or self._epoch == self._max_epochs)):
                with preserved_rng():
                    self.runner.val_loop.run()

        self.runner.call_hook('after_train')
        return self.runner.model

    def run_epoch(self, start: int = 0) -> None:
        """Iterate the current epoch from batch ``start``."""
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        for idx, data_batch in enumerate(epoch_batches(self.dataloader, self._epoch, start), start):
            self.run_iter(idx, data_batch)

        self.runner.call_hook('after_train_epoch')
        self._epoch += 1
