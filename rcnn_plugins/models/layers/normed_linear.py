"""``NormedLinear``: a cosine-similarity linear layer (MMDetection's name and arguments, ``tempearture``
spelled as there), used as a box head's ``cls_predictor_cfg`` in long-tail configs."""
import torch.nn.functional as F
from torch import Tensor, nn

from ...registry import MODELS


@MODELS.register_module()
class NormedLinear(nn.Linear):
    """``out = tempearture * (x / |x|^power) @ (W / |W_row|^power).T + b``: logits are scaled cosines.

    Args:
        *args, **kwargs: ``nn.Linear`` arguments (``in_features``, ``out_features``, ``bias``).
        tempearture: the scale of the cosines (20). MMDetection's spelling, so its configs work.
        power: exponent of the norms (1: plain cosine).
        eps: added to the norms against division by zero.

    Shapes: (N, in_features) -> (N, out_features). Same parameters and keys as ``nn.Linear``.
    """

    def __init__(self, *args, tempearture: float = 20, power: float = 1.0, eps: float = 1e-6, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.tempearture = tempearture
        self.power = power
        self.eps = eps
        self.init_weights()

    def init_weights(self) -> None:
        """Normal(0, 0.01) weights, zero bias (MMDetection's init)."""
        nn.init.normal_(self.weight, mean=0, std=0.01)
        if self.bias is not None:
            nn.init.constant_(self.bias, 0)

    def forward(self, x: Tensor) -> Tensor:
        weight = self.weight / (self.weight.norm(dim=1, keepdim=True).pow(self.power) + self.eps)
        x = x / (x.norm(dim=1, keepdim=True).pow(self.power) + self.eps)
        return F.linear(x * self.tempearture, weight, self.bias)
