"""BF16OptimWrapper: the forward runs in bf16 on CPU, parameters and their updates stay float32,
and the step equals float32 SGD fed the bf16 gradients."""
import pytest
import torch
from mmengine.registry import init_default_scope
from torch import nn

from rcnn_plugins.engine.optimizers import cpu_bf16_supported
from rcnn_plugins.registry import OPTIM_WRAPPERS

pytestmark = pytest.mark.skipif(not cpu_bf16_supported(),
                                reason='no native bf16 on this CPU (emulated bf16 convs are ~400x slower)')


def test_bf16_forward_float32_update():
    init_default_scope('rcnn_plugins')
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Flatten(), nn.Linear(8 * 6 * 6, 2))
    wrapper = OPTIM_WRAPPERS.build(dict(type='BF16OptimWrapper',
                                        optimizer=torch.optim.SGD(model.parameters(), lr=0.1)))
    before = [p.detach().clone() for p in model.parameters()]
    x = torch.randn(4, 3, 8, 8)
    with wrapper.optim_context(model):
        out = model(x)
        loss = out.float().pow(2).mean()
    assert out.dtype == torch.bfloat16
    wrapper.update_params(loss)
    for p, p0 in zip(model.parameters(), before):
        assert p.dtype == torch.float32
        assert not torch.equal(p, p0)
    # Plain SGD: p = p0 - lr * grad (grads were zeroed by update_params, so recompute them).
    model2 = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Flatten(), nn.Linear(8 * 6 * 6, 2))
    model2.load_state_dict({k: v for k, v in zip(model.state_dict(), before)})
    with torch.autocast('cpu', dtype=torch.bfloat16):
        loss2 = model2(x).float().pow(2).mean()
    loss2.backward()
    for p, q in zip(model.parameters(), model2.parameters()):
        torch.testing.assert_close(p, q - 0.1 * q.grad)


def test_refuses_without_native_bf16(monkeypatch):
    from rcnn_plugins.engine.optimizers import bf16_optim_wrapper
    monkeypatch.setattr(bf16_optim_wrapper, 'cpu_bf16_supported', lambda: False)
    with pytest.raises(RuntimeError, match='400x slower'):
        bf16_optim_wrapper.BF16OptimWrapper(optimizer=torch.optim.SGD([nn.Parameter(torch.ones(1))], lr=0.1))
