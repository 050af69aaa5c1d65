"""CheckpointHook that never loses work: atomic saves, pruning only after a successful save.

mmengine's ``CheckpointHook`` deletes the oldest checkpoint (``max_keep_ckpts``) and the previous
best checkpoint *before* writing the new one, and writes files in place: a crash or a full disk
mid-save leaves a truncated ``epoch_N.pth`` and possibly no usable checkpoint at all.

This subclass, registered under the same name so ``type='CheckpointHook'`` with
``default_scope='rcnn_plugins'`` picks it up, keeps mmengine's arguments and file names and
changes only the order and the way files are written:

1. the checkpoint is written to a hidden temporary file in the same directory, fsynced, then
   ``os.replace``d onto its final name (atomic on POSIX: readers see the old file or the new one;
   :mod:`rcnn_plugins.fileio.atomic`, the one writer every rcnn_plugins output goes through);
2. ``last_checkpoint`` is updated the same way;
3. only then are old checkpoints (``max_keep_ckpts``) and the previous best checkpoint removed.

A process killed mid-write (``kill -9``, out of memory) cannot remove its temporary file; the
next run's ``before_train`` removes such leftovers (hidden ``.NAME.tmpPID`` files whose process
is gone) from the checkpoint and work directories.

Remote storage backends (``backend_args`` for S3 and the like) have no rename; for them the hook
keeps mmengine's behaviour.

Those checkpoints are read back (safely, ``weights_only=True``) by :mod:`rcnn_plugins.fileio.safe_load`.
"""
import os
import os.path as osp

from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook as MMEngineCheckpointHook

from rcnn_plugins.fileio.atomic import commit, remove_stale_partials, temp_path_for, write_text_atomically
from rcnn_plugins.registry import HOOKS


class _AtomicSaveRunner:
    """Stands in for the runner inside mmengine's ``_save_best_checkpoint`` so that its
    ``runner.save_checkpoint`` call goes through :meth:`CheckpointHook._save_atomically`;
    everything else is the real runner's."""

    def __init__(self, runner, hook):
        self._runner = runner
        self._hook = hook

    def __getattr__(self, name):
        return getattr(self._runner, name)

    def save_checkpoint(self, out_dir, filename, *args, **kwargs):
        self._hook._save_atomically(self._runner, out_dir, filename, *args, **kwargs)


@HOOKS.register_module()
class CheckpointHook(MMEngineCheckpointHook):
    """mmengine's ``CheckpointHook`` (same arguments) with atomic saves; see the module docstring."""

    def _is_local(self) -> bool:
        return isinstance(self.file_backend, LocalBackend)

    def before_train(self, runner) -> None:
        super().before_train(runner)
        if self._is_local() and is_main_process():
            for folder in {self.out_dir, runner.work_dir}:
                for path in remove_stale_partials(folder):
                    runner.logger.warning(f'Removed {path}: a partial checkpoint left by a save that '
                                          'was killed; the complete checkpoints are untouched.')

    def _save_atomically(self, runner, out_dir, filename, *args, **kwargs) -> None:
        """``runner.save_checkpoint`` into a temporary file, then rename it onto ``filename``."""
        if not self._is_local():
            runner.save_checkpoint(out_dir, filename, *args, **kwargs)
            return
        tmp_path = temp_path_for(osp.join(out_dir, filename))
        tmp_name = osp.basename(tmp_path)
        try:
            # Runner.save_checkpoint writes on the main process only (it is master_only).
            runner.save_checkpoint(out_dir, tmp_name, *args, **kwargs)
            if is_main_process():
                commit(tmp_path, osp.join(out_dir, filename))
        finally:
            if osp.exists(tmp_path):  # the save failed part-way: drop the partial file
                os.remove(tmp_path)

    def _remove_checkpoint(self, path: str) -> None:
        if self.file_backend.isfile(path):
            self.file_backend.remove(path)
        elif self.file_backend.isdir(path):  # DeepSpeed-style checkpoints are folders
            self.file_backend.rmtree(path)

    def _save_checkpoint_with_step(self, runner, step, meta):
        # mmengine's _save_best_checkpoint calls this with our runner stand-in: use the real one.
        if isinstance(runner, _AtomicSaveRunner):
            runner = runner._runner
        # Book-keeping first, as mmengine does, so that the saved message hub already lists this
        # step in keep_ckpt_ids; the file of the dropped step is removed after the save.
        to_prune = None
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                to_prune = self.keep_ckpt_ids.popleft()
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))

        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, ckpt_filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)

        self._save_atomically(
            runner, self.out_dir, ckpt_filename, self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args)

        if not is_main_process():
            return
        write_text_atomically(osp.join(runner.work_dir, 'last_checkpoint'), self.last_ckpt)
        if to_prune is not None:
            self._remove_checkpoint(
                self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(to_prune)))

    def _save_best_checkpoint(self, runner, metrics) -> None:
        if not self.save_best:
            return
        # mmengine removes the previous best file before saving the new one. Hide the previous
        # paths from it, let it save (atomically, through the runner stand-in), and remove the
        # files it replaced afterwards.
        single = len(self.key_indicators) == 1
        previous = ({None: self.best_ckpt_path} if single else dict(self.best_ckpt_path_dict))
        if single:
            self.best_ckpt_path = None
        else:
            self.best_ckpt_path_dict = {key: None for key in previous}

        super()._save_best_checkpoint(_AtomicSaveRunner(runner, self), metrics)

        for key, old_path in previous.items():
            new_path = self.best_ckpt_path if single else self.best_ckpt_path_dict[key]
            if new_path is None:  # not improved: the previous best stays the best
                if single:
                    self.best_ckpt_path = old_path
                else:
                    self.best_ckpt_path_dict[key] = old_path
            elif old_path is not None and old_path != new_path and is_main_process():
                self._remove_checkpoint(old_path)
                runner.logger.info(f'The previous best checkpoint {old_path} is removed')
