"""FrozenBatchNorm2d: same numbers and keys as eval-mode BatchNorm, nothing saved for backward."""
import torch
from torch import nn

from rcnn_plugins.models.backbones import ResNet
from rcnn_plugins.models.layers import FrozenBatchNorm2d


def _random_bn(c=8):
    bn = nn.BatchNorm2d(c)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 2)
        bn.bias.uniform_(-1, 1)
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
    return bn


def _saved_bytes(fn, x):
    """Bytes that autograd keeps for backward while running ``fn(x)``."""
    saved = []

    def pack(t):
        saved.append(t.numel() * t.element_size())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn(x)
    return out, sum(saved)


def test_matches_eval_batchnorm_forward_and_input_grad():
    torch.manual_seed(0)
    bn = _random_bn().eval()
    for p in bn.parameters():
        p.requires_grad_(False)
    frozen = FrozenBatchNorm2d.convert(nn.Sequential(bn))[0]
    assert type(frozen) is FrozenBatchNorm2d and not frozen.training
    assert list(frozen.state_dict()) == list(bn.state_dict())
    x = torch.randn(2, 8, 5, 7, requires_grad=True)
    # Independent reference: the eval BatchNorm formula written out.
    ref = (x - bn.running_mean[:, None, None]) / torch.sqrt(bn.running_var[:, None, None] + bn.eps) \
        * bn.weight[:, None, None] + bn.bias[:, None, None]
    out = frozen(x)
    torch.testing.assert_close(out, ref)
    g = torch.randn_like(out)
    (gx_frozen,) = torch.autograd.grad(out, x, g)
    (gx_ref,) = torch.autograd.grad(ref, x, g)
    torch.testing.assert_close(gx_frozen, gx_ref)


def test_saves_no_activation_for_backward():
    bn = _random_bn(16).eval().requires_grad_(False)
    frozen = FrozenBatchNorm2d.convert(nn.Sequential(_random_bn(16)))[0].eval().requires_grad_(False)
    x = torch.randn(2, 16, 32, 32, requires_grad=True)
    _, saved_native = _saved_bytes(bn, x)
    _, saved_frozen = _saved_bytes(frozen, x)
    assert saved_native >= x.numel() * 4  # the native kernel keeps the whole input
    assert saved_frozen < 16 * 4 * 4  # only per-channel vectors, if anything


def test_resnet_uses_it_only_for_frozen_eval_bn():
    frozen = ResNet(depth=18, norm_cfg=dict(type='BN', requires_grad=False), norm_eval=True)
    trainable = ResNet(depth=18)  # MMDetection default: BN weights trained
    assert all(type(m) is FrozenBatchNorm2d for m in frozen.modules() if isinstance(m, nn.BatchNorm2d))
    assert not any(type(m) is FrozenBatchNorm2d for m in trainable.modules())
    assert list(frozen.state_dict()) == list(trainable.state_dict())
    # Same weights -> same features and same input gradients in training mode (norm_eval keeps BN in eval).
    trainable.load_state_dict(frozen.state_dict())
    for p in trainable.modules():
        if isinstance(p, nn.BatchNorm2d):
            p.requires_grad_(False)
    frozen.train()
    trainable.train()
    x = torch.randn(1, 3, 64, 96, requires_grad=True)
    out_f, out_t = frozen(x)[-1], trainable(x)[-1]
    torch.testing.assert_close(out_f, out_t, rtol=1e-4, atol=1e-5)
    (gf,) = torch.autograd.grad(out_f.sum(), x)
    (gt,) = torch.autograd.grad(out_t.sum(), x)
    torch.testing.assert_close(gf, gt, rtol=1e-3, atol=1e-5)
