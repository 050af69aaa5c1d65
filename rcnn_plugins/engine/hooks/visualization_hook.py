"""``DetVisualizationHook``: draws predictions during validation and testing.

MMDetection 3.x's hook and arguments. Nothing happens unless ``draw=True`` (``tools/test.py
--show-dir DIR`` sets ``draw=True, test_out_dir=DIR``):

- validation: the first image of every ``interval``-th iteration is drawn and sent to the
  visualizer's backends (or shown, with ``show=True``);
- testing: every image is drawn; with ``test_out_dir`` each drawing is written to
  ``{work_dir}/{timestamp}/{test_out_dir}/{image file name}``, else sent to the backends.

Images are read again from each sample's ``img_path`` (through mmengine's file backends), so
boxes are drawn on the original image, where predictions live.
"""
import os.path as osp
import warnings
from typing import Optional, Sequence

import mmcv
from mmengine.fileio import get
from mmengine.hooks import Hook
from mmengine.runner import Runner
from mmengine.utils import mkdir_or_exist
from mmengine.visualization import Visualizer

from rcnn_plugins.registry import HOOKS
from rcnn_plugins.structures import DetDataSample


@HOOKS.register_module()
class DetVisualizationHook(Hook):
    """Detection visualization hook (see module docstring).

    Args:
        draw: draw at all.
        interval: in validation, draw every ``interval`` iterations.
        score_thr: predictions scoring at or below are not drawn.
        show: display the drawings instead of storing them (the backends are dropped).
        wait_time: seconds each shown drawing stays.
        test_out_dir: folder name, under ``{work_dir}/{timestamp}``, for the test drawings.
        backend_args: mmengine file backend arguments for reading the images.
    """

    priority = 'NORMAL'

    def __init__(self,
                 draw: bool = False,
                 interval: int = 50,
                 score_thr: float = 0.3,
                 show: bool = False,
                 wait_time: float = 0.,
                 test_out_dir: Optional[str] = None,
                 backend_args: Optional[dict] = None) -> None:
        self._visualizer: Visualizer = Visualizer.get_current_instance()
        self.interval = interval
        self.score_thr = score_thr
        self.show = show
        if show:
            # Shown drawings are not stored: drop the backends so nothing is saved twice.
            self._visualizer._vis_backends = {}
            warnings.warn('DetVisualizationHook: show=True only displays the predictions; '
                          'nothing is saved to the visualization backends.')
        self.wait_time = wait_time
        self.backend_args = backend_args
        self.draw = draw
        self.test_out_dir = test_out_dir
        self._test_index = 0
        self._out_dir: Optional[str] = None   # {work_dir}/{timestamp}/{test_out_dir}, set before testing

    def _read_rgb(self, img_path: str):
        return mmcv.imfrombytes(get(img_path, backend_args=self.backend_args), channel_order='rgb')

    def after_val_iter(self, runner: Runner, batch_idx: int, data_batch: dict,
                       outputs: Sequence[DetDataSample]) -> None:
        if not self.draw:
            return
        total_curr_iter = runner.iter + batch_idx
        if total_curr_iter % self.interval != 0:
            return
        sample = outputs[0]
        img_path = sample.img_path
        self._visualizer.add_datasample(
            osp.basename(img_path) if self.show else 'val_img', self._read_rgb(img_path),
            data_sample=sample, show=self.show, wait_time=self.wait_time,
            pred_score_thr=self.score_thr, step=total_curr_iter)

    def before_test(self, runner: Runner) -> None:
        # Resolved once per test run (MMDetection re-joins it every iteration).
        if self.draw and self.test_out_dir is not None:
            self._out_dir = osp.join(runner.work_dir, runner.timestamp, self.test_out_dir)
            mkdir_or_exist(self._out_dir)

    def after_test_iter(self, runner: Runner, batch_idx: int, data_batch: dict,
                        outputs: Sequence[DetDataSample]) -> None:
        if not self.draw:
            return
        for sample in outputs:
            self._test_index += 1
            img_path = sample.img_path
            out_file = osp.join(self._out_dir, osp.basename(img_path)) if self._out_dir else None
            self._visualizer.add_datasample(
                osp.basename(img_path) if self.show else 'test_img', self._read_rgb(img_path),
                data_sample=sample, show=self.show, wait_time=self.wait_time,
                pred_score_thr=self.score_thr, out_file=out_file, step=self._test_index)
