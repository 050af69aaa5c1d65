"""``DetLocalVisualizer``: draws ground-truth and predicted boxes of a ``DetDataSample``.

Built on mmengine's ``Visualizer`` (matplotlib, drawn off-screen), with MMDetection 3.x's
arguments. ``add_datasample`` puts the ground truth on the left and the predictions (those
scoring above ``pred_score_thr``) on the right, each box labelled with its class name (and score),
and writes the result to ``out_file`` or, without one, to the visualizer's backends.
Boxes are drawn in the coordinates of the image given, so ``gt_instances`` must be in the same
frame as that image (MMDetection's test pipelines load annotations after resizing for this).
"""
from typing import Optional, Sequence, Tuple, Union

import mmcv
import numpy as np
from mmengine.dist import master_only
from mmengine.structures import InstanceData
from mmengine.visualization import Visualizer
from mmengine.visualization.utils import tensor2ndarray

from rcnn_plugins.registry import VISUALIZERS
from rcnn_plugins.structures import DetDataSample
from ..datasets.palette import get_palette


def adaptive_scales(areas: np.ndarray, min_area: float = 800, max_area: float = 30000) -> np.ndarray:
    """Font scale per box: 0.5 for boxes up to ``min_area`` rising linearly to 1.0 at ``max_area``."""
    return np.clip(0.5 + (areas - min_area) / (max_area - min_area), 0.5, 1.0)


@VISUALIZERS.register_module()
class DetLocalVisualizer(Visualizer):
    """Detection visualizer.

    Args:
        name: instance name (mmengine keeps one instance per name).
        image: optional image to start with.
        vis_backends: mmengine visualization backend configs.
        save_dir: where the backends save.
        bbox_color: one colour for all boxes (name or RGB tuple), a palette, or ``None`` to use
            ``dataset_meta['palette']`` (the default palette if the dataset has none).
        text_color: colour of the labels (same forms as ``bbox_color``).
        line_width: box line width.
        alpha: opacity of the boxes.
    """

    def __init__(self,
                 name: str = 'visualizer',
                 image: Optional[np.ndarray] = None,
                 vis_backends: Optional[list] = None,
                 save_dir: Optional[str] = None,
                 bbox_color: Optional[Union[str, Tuple[int, int, int], Sequence]] = None,
                 text_color: Optional[Union[str, Tuple[int, int, int], Sequence]] = (200, 200, 200),
                 line_width: Union[int, float] = 3,
                 alpha: float = 0.8) -> None:
        super().__init__(name=name, image=image, vis_backends=vis_backends, save_dir=save_dir)
        self.bbox_color = bbox_color
        self.text_color = text_color
        self.line_width = line_width
        self.alpha = alpha
        # Set by mmengine's loops from the dataset (classes, palette).
        self.dataset_meta: dict = {}

    def _draw_instances(self, image: np.ndarray, instances: InstanceData) -> np.ndarray:
        """Draw ``instances.bboxes`` labelled with class names (and scores, if present)."""
        self.set_image(image)
        if 'bboxes' in instances and len(instances.bboxes) > 0:
            bboxes = np.asarray(tensor2ndarray(instances.bboxes), dtype=np.float64).reshape(-1, 4)
            labels = np.asarray(tensor2ndarray(instances.labels)).astype(int).reshape(-1)
            classes = self.dataset_meta.get('classes')
            num_colors = max(int(labels.max()) + 1, len(classes) if classes else 0)
            bbox_palette = get_palette(self.bbox_color if self.bbox_color is not None
                                       else self.dataset_meta.get('palette'), num_colors)
            text_palette = get_palette(self.text_color, num_colors)

            self.draw_bboxes(bboxes, edge_colors=[bbox_palette[label] for label in labels],
                             alpha=self.alpha, line_widths=self.line_width)

            areas = (bboxes[:, 2] - bboxes[:, 0]) * (bboxes[:, 3] - bboxes[:, 1])
            scales = adaptive_scales(areas)
            scores = instances.scores if 'scores' in instances else None
            for i, label in enumerate(labels):
                text = classes[label] if classes is not None and label < len(classes) else f'class {label}'
                if scores is not None:
                    text += f': {round(float(scores[i]) * 100, 1)}'
                self.draw_texts(text, bboxes[i, :2] + self.line_width, colors=text_palette[label],
                                font_sizes=int(13 * scales[i]),
                                bboxes=[dict(facecolor='black', alpha=0.8, pad=0.7, edgecolor='none')])
        return self.get_image()

    # Only rank 0 draws: mmengine's Visualizer keeps dataset_meta on the main process alone, and
    # one copy of each image is what the user wants from a multi-process test.
    @master_only
    def add_datasample(self,
                       name: str,
                       image: np.ndarray,
                       data_sample: Optional[DetDataSample] = None,
                       draw_gt: bool = True,
                       draw_pred: bool = True,
                       show: bool = False,
                       wait_time: float = 0,
                       out_file: Optional[str] = None,
                       pred_score_thr: float = 0.3,
                       step: int = 0) -> None:
        """Draw a sample's ground truth (left) and predictions (right).

        Args:
            name: image name for the backends / window title.
            image: (H, W, 3) RGB image.
            data_sample: the sample with ``gt_instances`` and/or ``pred_instances``.
            draw_gt, draw_pred: which panels to draw (a panel is left out when its data is missing).
            show: display the drawing (needs an interactive matplotlib backend).
            wait_time: seconds to show it.
            out_file: write the drawing here (any extension cv2 knows); otherwise it goes to the
                vis backends with ``step``.
            pred_score_thr: predictions scoring at or below are not drawn.
            step: global step for the backends.
        """
        image = image.clip(0, 255).astype(np.uint8)
        gt_img = pred_img = None
        if data_sample is not None:
            if draw_gt and 'gt_instances' in data_sample:
                gt_img = self._draw_instances(image, data_sample.gt_instances)
            if draw_pred and 'pred_instances' in data_sample:
                pred = data_sample.pred_instances
                pred_img = self._draw_instances(image, pred[pred.scores > pred_score_thr])

        panels = [img for img in (gt_img, pred_img) if img is not None]
        drawn = np.concatenate(panels, axis=1) if panels else image
        if len(panels) != 1:
            # With one panel the canvas already holds it; set_image clears matplotlib's axes,
            # a third of the drawing time.
            self.set_image(drawn)
        if show:
            self.show(drawn, win_name=name, wait_time=wait_time)
        if out_file is not None:
            mmcv.imwrite(drawn[..., ::-1], out_file)   # RGB -> BGR for cv2
        else:
            self.add_image(name, drawn, step)
