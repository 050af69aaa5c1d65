"""``RNGStateHook``: checkpoints carry the random generators' states, resumed runs get them back.

Saved under the checkpoint's ``rng_state`` key (layout in :mod:`rcnn_plugins.rng`: tensors, ints
and lists only, so ``torch.load(weights_only=True)`` reads it): torch CPU, CUDA (when in use),
numpy's global ``RandomState`` and Python's ``random``, as they are when the checkpoint is
written, i.e. after the iteration (or epoch) it ends with.

Put back in ``before_train`` of a resumed run, not when the checkpoint is read:
``Runner.resume`` reseeds everything after reading it when the config's seed differs from the
checkpoint's (``randomness.seed=None``), which would undo an earlier restore. A checkpoint read
by ``load_from`` (fine-tuning, not resuming) leaves the generators alone.

A checkpoint written during validation (``save_best``) stores the states from before the
validation, which the training loops keep out of the training streams.

In a multi-process run only rank 0 writes the checkpoint: its states are the ones saved, and
every rank gets them back.
"""
from typing import Optional

from mmengine.hooks import Hook

from rcnn_plugins.registry import HOOKS
from rcnn_plugins.rng import capture_rng_state, restore_rng_state


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Save the RNG states into every checkpoint and restore them on ``--resume``."""

    # After every other hook's before_train: nothing may draw between the restore and training.
    priority = 'LOWEST'

    def __init__(self) -> None:
        self._read_checkpoint = False
        self._loaded: Optional[dict] = None  # the states read from the checkpoint
        self._before_val: Optional[dict] = None  # the training states while validating

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint['rng_state'] = self._before_val or capture_rng_state()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._read_checkpoint = True
        self._loaded = checkpoint.get('rng_state')

    def before_train(self, runner) -> None:
        # Runner.resume sets the iteration after after_load_checkpoint; load_from leaves it at 0.
        resumed = runner.iter > 0 and self._read_checkpoint
        if resumed and self._loaded is not None:
            restore_rng_state(self._loaded)
            runner.logger.info('Restored the torch, numpy, random (and CUDA) RNG states saved '
                               'in the checkpoint')
        elif resumed:
            runner.logger.warning(
                'The resumed checkpoint holds no RNG state (it was written without RNGStateHook): '
                'training goes on from freshly seeded generators, so it will not reproduce the '
                'uninterrupted run exactly.')
        self._loaded = None

    def before_val(self, runner) -> None:
        self._before_val = capture_rng_state()

    def after_val(self, runner) -> None:
        self._before_val = None
