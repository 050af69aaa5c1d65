"""``DetDataSample``: the record that travels with one image through transforms, model and metric.

It is an mmengine ``BaseDataElement`` whose data fields are ``InstanceData`` groups, named as in
MMDetection 3.x so that hooks, metrics and user code written for MMDetection read it unchanged:

- ``gt_instances``: ``bboxes`` (N, 4) float xyxy pixels of the *resized* image, ``labels`` (N,) long.
- ``ignored_instances``: boxes that count neither as object nor as background (COCO crowd,
  VOC difficult); same fields as ``gt_instances``.
- ``proposals``: RPN output for this image (``bboxes``, ``scores``), used by two-stage heads.
- ``pred_instances``: detections, ``bboxes`` (K, 4) xyxy pixels of the *original* image,
  ``scores`` (K,), ``labels`` (K,).

Meta information (``img_id``, ``img_path``, ``ori_shape`` (h, w), ``img_shape`` (h, w),
``scale_factor`` (w_scale, h_scale), ``flip``, ``flip_direction``, ``pad_shape``,
``batch_input_shape``) lives in ``metainfo``.
"""
from typing import List

from mmengine.structures import BaseDataElement, InstanceData


class DetDataSample(BaseDataElement):
    """Annotations and predictions of one image (see module docstring for the fields)."""

    @property
    def gt_instances(self) -> InstanceData:
        return self._gt_instances

    @gt_instances.setter
    def gt_instances(self, value: InstanceData) -> None:
        self.set_field(value, '_gt_instances', dtype=InstanceData)

    @gt_instances.deleter
    def gt_instances(self) -> None:
        del self._gt_instances

    @property
    def ignored_instances(self) -> InstanceData:
        return self._ignored_instances

    @ignored_instances.setter
    def ignored_instances(self, value: InstanceData) -> None:
        self.set_field(value, '_ignored_instances', dtype=InstanceData)

    @ignored_instances.deleter
    def ignored_instances(self) -> None:
        del self._ignored_instances

    @property
    def proposals(self) -> InstanceData:
        return self._proposals

    @proposals.setter
    def proposals(self, value: InstanceData) -> None:
        self.set_field(value, '_proposals', dtype=InstanceData)

    @proposals.deleter
    def proposals(self) -> None:
        del self._proposals

    @property
    def pred_instances(self) -> InstanceData:
        return self._pred_instances

    @pred_instances.setter
    def pred_instances(self, value: InstanceData) -> None:
        self.set_field(value, '_pred_instances', dtype=InstanceData)

    @pred_instances.deleter
    def pred_instances(self) -> None:
        del self._pred_instances


SampleList = List[DetDataSample]
OptSampleList = List[DetDataSample] | None
InstanceList = List[InstanceData]
