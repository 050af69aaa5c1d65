"""The contract of this folder: what a dense (RPN-style) head must offer."""
from typing import Protocol, Sequence, runtime_checkable

from torch import Tensor


@runtime_checkable
class DenseHead(Protocol):
    """Predicts on every location of a feature pyramid: the RPN of a two-stage detector."""

    def __call__(self, x: Sequence[Tensor]):
        """Per level (B, C, H_l, W_l) -> per-level raw outputs (e.g. cls_scores, bbox_preds)."""

    def loss(self, x: Sequence[Tensor], batch_data_samples: Sequence, **kwargs) -> dict:
        """Losses against ``gt_instances`` of the data samples."""

    def loss_and_predict(self, x: Sequence[Tensor], batch_data_samples: Sequence, proposal_cfg=None,
                         **kwargs) -> tuple:
        """(losses, per image InstanceData(bboxes, scores, labels)): training with proposals."""

    def predict(self, x: Sequence[Tensor], batch_data_samples: Sequence, rescale: bool = False, **kwargs) -> list:
        """Per image InstanceData(bboxes (K, 4), scores (K,), labels (K,))."""
