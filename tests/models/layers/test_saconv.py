"""SAC (switchable atrous convolution) against convolutions computed by hand."""
import torch
import torch.nn.functional as F

from rcnn_plugins.models.backbones import DetectoRS_ResNet
from rcnn_plugins.models.layers import SAConv2d


def _aws(conv, w):
    """mmcv's adaptive weight standardisation: gamma * (w - mean) / sqrt(var + 1e-5) + beta."""
    flat = w.reshape(w.shape[0], -1)
    w_hat = (w - flat.mean(1)[:, None, None, None]) / torch.sqrt(flat.var(1) + 1e-5)[:, None, None, None]
    return conv.weight_gamma * w_hat + conv.weight_beta


@torch.no_grad()
def test_fresh_sac_is_the_standardised_conv():
    torch.manual_seed(0)
    sac = SAConv2d(4, 6, 3, padding=1, bias=False)
    x = torch.randn(2, 4, 9, 9)
    torch.testing.assert_close(sac(x), F.conv2d(x, _aws(sac, sac.weight), padding=1), atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_switch_mixes_dilation_1_and_3_and_context_is_added():
    torch.manual_seed(0)
    sac = SAConv2d(4, 6, 3, padding=1, bias=False)
    sac.switch.bias.fill_(0.25)                      # s = 0.25 everywhere (switch weights are 0)
    sac.weight_diff.normal_(0, 0.1)
    sac.post_context.bias.normal_()                  # global context: a per-channel constant added
    x = torch.randn(2, 4, 11, 11)
    w = _aws(sac, sac.weight)
    small = F.conv2d(x, w, padding=1)
    large = F.conv2d(x, w + sac.weight_diff, padding=3, dilation=3)
    out = 0.25 * small + 0.75 * large
    out = out + sac.post_context(out.mean((2, 3), keepdim=True))
    torch.testing.assert_close(sac(x), out, atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_deformable_sac_with_zero_offsets_equals_plain_sac():
    torch.manual_seed(0)
    plain = SAConv2d(4, 6, 3, padding=1, bias=False)
    deform = SAConv2d(4, 6, 3, padding=1, bias=False, use_deform=True)
    missing, unexpected = deform.load_state_dict(plain.state_dict(), strict=False)
    assert unexpected == [] and sorted(missing) == ['offset_l.bias', 'offset_l.weight', 'offset_s.bias',
                                                    'offset_s.weight']
    plain.switch.bias.fill_(0.5)
    deform.switch.bias.fill_(0.5)
    x = torch.randn(1, 4, 10, 10)
    torch.testing.assert_close(deform(x), plain(x), atol=1e-5, rtol=1e-5)


def test_detectors_resnet_rfp_path():
    torch.manual_seed(0)
    m = DetectoRS_ResNet(depth=50, conv_cfg=dict(type='ConvAWS'), sac=dict(type='SAC', use_deform=True),
                         stage_with_sac=(False, True, True, True), rfp_inplanes=16, output_img=True).eval()
    m.init_weights()
    assert type(m.layer2[0].conv2) is SAConv2d and type(m.layer1[0].conv2).__name__ == 'ConvAWS2d'
    assert hasattr(m.layer2[0], 'rfp_conv') and not hasattr(m.layer2[1], 'rfp_conv')
    # SAC's 5x5 reflect padding needs maps of >= 3 px at stride 32 (as mmcv's): 128 px, not 64.
    x = torch.randn(1, 3, 128, 128)
    with torch.no_grad():
        outs = m(x)
        assert outs[0] is x and [o.shape[1] for o in outs[1:]] == [256, 512, 1024, 2048]
        feats = [torch.randn(1, 16, 128 // 2**(i + 2), 128 // 2**(i + 2)) for i in range(4)]
        # rfp_conv starts at zero: the RFP pass equals the plain pass...
        for a, b in zip(m.rfp_forward(x, feats), outs[1:]):
            torch.testing.assert_close(a, b)
        # ...and once trained it adds rfp_conv(feature) before the first block's last ReLU.
        m.layer2[0].rfp_conv.bias.fill_(1.)
        assert not torch.allclose(m.rfp_forward(x, feats)[1], outs[2])
