"""``LoadProposals``: a data_info's precomputed proposals -> ``proposals`` / ``proposals_scores`` arrays.

MMDetection 3.x's transform (same name and argument). The dataset's ``proposal_file`` puts
``proposals = dict(bboxes (N, 4), scores (N,))`` in original-image pixels into each data_info
(see :mod:`rcnn_plugins.datasets.proposal_file`); this transform turns it into
``results['proposals']`` (N, 4) float32 and ``results['proposals_scores']`` (N,) float32, which
``Resize`` / ``RandomFlip`` transform like ``gt_bboxes`` and ``PackDetInputs`` packs into
``data_sample.proposals``. Put it before ``Resize`` in both the train and the test pipeline.
"""
from typing import Optional

import numpy as np
from mmcv.transforms import BaseTransform

from ...registry import TRANSFORMS
from ..errors import DatasetError


@TRANSFORMS.register_module()
class LoadProposals(BaseTransform):
    """Load the precomputed proposals of an image (see module docstring).

    Args:
        num_max_proposals: keep at most this many (the first ones: proposal files are written
            sorted by score, as MMDetection assumes); None keeps all.
    """

    def __init__(self, num_max_proposals: Optional[int] = None) -> None:
        if num_max_proposals is not None and num_max_proposals < 0:
            raise ValueError(f'num_max_proposals must be None or >= 0, got {num_max_proposals}')
        self.num_max_proposals = num_max_proposals

    def transform(self, results: dict) -> dict:
        proposals = results.get('proposals')
        if proposals is None:
            raise DatasetError(f'LoadProposals: image {results.get("img_path")} has no proposals; set the '
                               "dataset's proposal_file (e.g. written by tools/misc/gen_proposals.py)")
        if isinstance(proposals, np.ndarray):  # a data_info made by hand, not by a dataset
            proposals = dict(bboxes=proposals[:, :4],
                             scores=proposals[:, 4] if proposals.shape[1] == 5 else None)
        bboxes = np.asarray(proposals['bboxes'], dtype=np.float32).reshape(-1, 4)
        scores = proposals.get('scores')
        scores = np.zeros(len(bboxes), np.float32) if scores is None else np.asarray(scores, np.float32)
        if self.num_max_proposals is not None:
            bboxes, scores = bboxes[:self.num_max_proposals], scores[:self.num_max_proposals]
        results['proposals'] = bboxes
        results['proposals_scores'] = scores
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(num_max_proposals={self.num_max_proposals})'
