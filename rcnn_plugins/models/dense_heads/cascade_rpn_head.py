"""``CascadeRPNHead``: the Cascade RPN (Vu et al., 2019), a sequence of ``StageCascadeRPNHead``.

Stage 1 regresses the generator's anchors (one square per location) with a dilated conv; each
later stage takes the boxes the previous one regressed as its anchors, with its conv's sampling
grid moved onto them (offset-mode adaptive conv), and the last stage's objectness and boxes are
the proposals. Losses are named ``s{i}.loss_rpn_cls`` / ``s{i}.loss_rpn_reg`` per stage i, as
MMDetection. Keys: ``stages.{i}.rpn_conv.conv.*``, ``stages.{i}.rpn_cls.*``, ``stages.{i}.rpn_reg.*``.
"""
import copy
from typing import List, Optional, Sequence

from mmengine.model import BaseModule
from mmengine.structures import InstanceData
from torch import Tensor, nn

from ...registry import MODELS, build_or_use
from ...structures import DetDataSample
from ..utils import unpack_gt_instances


@MODELS.register_module()
class CascadeRPNHead(BaseModule):
    """Cascade of RPN stages.

    Args:
        num_classes: must be 1 (objectness).
        num_stages: number of stages; must equal ``len(stages)``.
        stages: ``StageCascadeRPNHead`` configs (or built stages).
        train_cfg: one training config per stage (the detector's ``train_cfg.rpn`` list), or None.
        test_cfg: proposal settings (``test_cfg.rpn``), shared by every stage.
    """

    def __init__(self, num_classes: int, num_stages: int, stages: List[dict], train_cfg: Optional[list] = None,
                 test_cfg: Optional[dict] = None, init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if num_classes != 1:
            raise ValueError(f'CascadeRPNHead: num_classes must be 1 (objectness), got {num_classes}')
        if num_stages != len(stages):
            raise ValueError(f'CascadeRPNHead: num_stages={num_stages} but {len(stages)} stage configs')
        if train_cfg is not None and (isinstance(train_cfg, dict) or len(train_cfg) != num_stages):
            raise ValueError(f'CascadeRPNHead: train_cfg.rpn must be a list of {num_stages} configs, one per stage '
                             f'(assigner, sampler, ...), got {type(train_cfg).__name__}')
        self.num_stages = num_stages
        self.train_cfg, self.test_cfg = train_cfg, test_cfg
        built = []
        for i, stage in enumerate(stages):
            if isinstance(stage, dict):
                stage = copy.deepcopy(dict(stage))
                stage.update(train_cfg=train_cfg[i] if train_cfg is not None else None, test_cfg=test_cfg)
            built.append(build_or_use(MODELS, stage))
        self.stages = nn.ModuleList(built)

    def forward(self, x: Sequence[Tensor]):
        """Raw outputs of the cascade on the generator's anchors, without image metas (so the boxes
        between stages are not clipped to an image): the last stage's (cls_scores, bbox_preds), per
        level (B, 1, H_l, W_l) / (B, 4, H_l, W_l). Training and proposals go through ``loss`` /
        ``predict``, which clip as MMDetection."""
        x = list(x)
        sizes = [f.shape[-2:] for f in x]
        priors = self.stages[0].prior_generator.grid_priors([tuple(s) for s in sizes], device=x[0].device)
        anchors = [p[None].expand(x[0].size(0), -1, -1) for p in priors]
        cls_scores = bbox_preds = None
        for i, stage in enumerate(self.stages):
            x, cls_scores, bbox_preds = stage.stage_forward(x, anchors)
            if i < self.num_stages - 1:
                anchors = stage.refine_bboxes(anchors, bbox_preds)
        return cls_scores, bbox_preds

    def _run(self, x, metas, gts=None):
        """All stages: (losses or None, last stage's anchors, cls_scores, bbox_preds)."""
        x = list(x)
        anchors, flags = self.stages[0].get_anchors([f.shape[-2:] for f in x], metas, device=x[0].device)
        losses = {} if gts is not None else None
        for i, stage in enumerate(self.stages):
            x, cls_scores, bbox_preds = stage.stage_forward(x, anchors)
            if gts is not None:
                for name, value in stage.stage_loss(anchors, flags, cls_scores, bbox_preds, gts, metas).items():
                    losses[f's{i}.{name}'] = value
            if i < self.num_stages - 1:
                anchors = stage.refine_bboxes(anchors, bbox_preds, metas)
        return losses, anchors, cls_scores, bbox_preds

    def loss(self, x: Sequence[Tensor], batch_data_samples: Sequence[DetDataSample]) -> dict:
        gts, _, metas = unpack_gt_instances(batch_data_samples)
        return self._run(x, metas, gts)[0]

    def loss_and_predict(self, x: Sequence[Tensor], batch_data_samples: Sequence[DetDataSample],
                         proposal_cfg: Optional[dict] = None):
        """(losses of every stage, the last stage's proposals per image with ``proposal_cfg``)."""
        gts, _, metas = unpack_gt_instances(batch_data_samples)
        losses, anchors, cls_scores, bbox_preds = self._run(x, metas, gts)
        return losses, self.stages[-1].predict_by_feat(anchors, cls_scores, bbox_preds, metas, cfg=proposal_cfg)

    def predict(self, x: Sequence[Tensor], batch_data_samples: Sequence[DetDataSample],
                rescale: bool = False) -> List[InstanceData]:
        """Per image InstanceData(bboxes (K, 4), scores (K,), labels (K,) zeros) from the last stage."""
        metas = [s.metainfo for s in batch_data_samples]
        _, anchors, cls_scores, bbox_preds = self._run(x, metas)
        return self.stages[-1].predict_by_feat(anchors, cls_scores, bbox_preds, metas, rescale=rescale)
