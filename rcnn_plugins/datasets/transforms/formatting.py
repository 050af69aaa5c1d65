"""``PackDetInputs``: the end of every pipeline; results dict -> ``dict(inputs, data_samples)``.

``inputs`` is the image as a contiguous (C, H, W) tensor of the image's dtype (uint8 from
``LoadImageFromFile``); the model's data preprocessor normalises and pads it.
``data_samples`` is a ``DetDataSample`` whose

- ``gt_instances`` holds the boxes with ``gt_ignore_flags`` False (``bboxes`` (N, 4) float32,
  ``labels`` (N,) int64) and ``ignored_instances`` those with it True (COCO crowd, VOC difficult),
  as MMDetection splits them; both exist only when the pipeline loaded annotations, so a
  test pipeline without ``LoadAnnotations`` packs no ground truth;
- ``proposals`` (when ``LoadProposals`` ran) holds ``bboxes`` (N, 4) float32 and ``scores`` (N,)
  in the coordinates of the transformed image, as MMDetection's ``data_sample.proposals``;
- metainfo holds the ``meta_keys`` present in the results (missing ones, e.g. ``flip`` in a test
  pipeline without ``RandomFlip``, are skipped).

The boxes are in the coordinates of the image at this point of the pipeline: after ``Resize``
when ``LoadAnnotations`` comes before it (training), in original-image pixels when it comes after
(MMDetection's test pipelines, which is what ``VOCMetric`` relies on).
"""
import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.structures import InstanceData

from ...registry import TRANSFORMS
from ...structures import DetDataSample

#: results key -> InstanceData field, and the dtype the field gets.
_GT_FIELDS = {'gt_bboxes': ('bboxes', torch.float32), 'gt_bboxes_labels': ('labels', torch.int64)}


@TRANSFORMS.register_module()
class PackDetInputs(BaseTransform):
    """Pack image, ground truth and meta information (see module docstring).

    Args:
        meta_keys: results keys copied into the sample's metainfo when present.
    """

    def __init__(self, meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'flip',
                                  'flip_direction')) -> None:
        self.meta_keys = meta_keys

    def transform(self, results: dict) -> dict:
        packed = {}
        if 'img' in results:
            img = results['img']
            if img.ndim == 2:
                img = img[..., None]
            packed['inputs'] = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))

        data_sample = DetDataSample()
        present = [key for key in _GT_FIELDS if key in results]
        if present:
            num = len(results[present[0]])
            ignore = np.asarray(results.get('gt_ignore_flags', np.zeros(num, dtype=bool)), dtype=bool)
            gt, ignored = InstanceData(), InstanceData()
            for key in present:
                field, dtype = _GT_FIELDS[key]
                values = np.asarray(results[key])
                gt[field] = torch.as_tensor(values[~ignore], dtype=dtype)
                ignored[field] = torch.as_tensor(values[ignore], dtype=dtype)
            data_sample.gt_instances = gt
            data_sample.ignored_instances = ignored
        if 'proposals' in results:
            bboxes = torch.as_tensor(np.asarray(results['proposals']), dtype=torch.float32).reshape(-1, 4)
            scores = results.get('proposals_scores')
            scores = torch.zeros(len(bboxes)) if scores is None else torch.as_tensor(scores, dtype=torch.float32)
            data_sample.proposals = InstanceData(bboxes=bboxes, scores=scores)
        data_sample.set_metainfo({key: results[key] for key in self.meta_keys if key in results})
        packed['data_samples'] = data_sample
        return packed

    def __repr__(self) -> str:
        return f'{type(self).__name__}(meta_keys={self.meta_keys})'
