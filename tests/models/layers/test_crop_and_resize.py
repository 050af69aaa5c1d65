"""CropAndResize against a slow per-sample loop of TensorFlow's crop_and_resize formula."""
import math

import pytest
import torch

from rcnn_plugins.models.layers import CropAndResize
from rcnn_plugins.models.roi_heads import SingleRoIExtractor
from rcnn_plugins.registry import MODELS


def tf_crop_and_resize_reference(feat, rois, spatial_scale, crop):
    """TF's kernel, written out: one RoI, one sample point at a time (float64).

    feat (B, C, H, W); rois (R, 5) pixels. Boxes are normalised by the image size H / spatial_scale.
    """
    _, channels, height, width = feat.shape
    img_h, img_w = height / spatial_scale, width / spatial_scale
    out = torch.zeros(len(rois), channels, crop, crop, dtype=torch.float64)
    for r, (b, x1, y1, x2, y2) in enumerate(rois.tolist()):
        y1, y2, x1, x2 = y1 / img_h, y2 / img_h, x1 / img_w, x2 / img_w
        fm = feat[int(b)].double()
        for i in range(crop):
            in_y = y1 * (height - 1) + i * (y2 - y1) * (height - 1) / (crop - 1)
            if in_y < 0 or in_y > height - 1:
                continue  # extrapolation_value = 0
            top, bottom = math.floor(in_y), math.ceil(in_y)
            y_lerp = in_y - top
            for j in range(crop):
                in_x = x1 * (width - 1) + j * (x2 - x1) * (width - 1) / (crop - 1)
                if in_x < 0 or in_x > width - 1:
                    continue
                left, right = math.floor(in_x), math.ceil(in_x)
                x_lerp = in_x - left
                top_v = fm[:, top, left] + (fm[:, top, right] - fm[:, top, left]) * x_lerp
                bottom_v = fm[:, bottom, left] + (fm[:, bottom, right] - fm[:, bottom, left]) * x_lerp
                out[r, :, i, j] = top_v + (bottom_v - top_v) * y_lerp
    return out


def make_case(dtype=torch.float64):
    g = torch.Generator().manual_seed(0)
    feat = torch.randn(2, 3, 9, 11, generator=g, dtype=dtype)  # stride 8: a 72 x 88 px image
    rois = torch.tensor([
        [0, 8.0, 4.0, 60.0, 50.0],     # inside
        [1, 0.0, 0.0, 88.0, 72.0],     # the whole image
        [0, -20.0, -10.0, 30.0, 40.0],  # partly outside, top-left
        [1, 50.0, 40.0, 120.0, 100.0],  # partly outside, bottom-right
        [1, 33.3, 17.7, 34.1, 18.2],   # smaller than a cell
        [0, 100.0, 90.0, 140.0, 130.0],  # entirely outside
    ], dtype=dtype)
    return feat, rois


def test_matches_tf_formula_reference_including_boxes_outside():
    feat, rois = make_case()
    layer = CropAndResize(output_size=14, spatial_scale=1 / 8, crop_size=14)  # no pooling: raw crops
    out = layer(feat, rois)
    ref = tf_crop_and_resize_reference(feat, rois, 1 / 8, 14)
    assert out.shape == (6, 3, 14, 14)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-10)
    # The partly outside boxes really have zero rows / columns and non-zero ones.
    assert (out[2, :, 0] == 0).all() and (out[2, :, -1] != 0).any()
    assert (out[5] == 0).all()


def test_max_pool_after_crop_and_float32():
    feat, rois = make_case(torch.float32)
    out = CropAndResize(output_size=7, spatial_scale=1 / 8)(feat, rois)  # default crop 14, 2x2 pool
    ref = torch.nn.functional.max_pool2d(tf_crop_and_resize_reference(feat, rois, 1 / 8, 14), 2)
    assert out.shape == (6, 3, 7, 7) and out.dtype == torch.float32
    torch.testing.assert_close(out.double(), ref, rtol=0, atol=1e-5)


def test_gradcheck_wrt_features():
    feat, rois = make_case()
    feat = feat[:, :1, :5, :6].clone().requires_grad_()  # tiny: 2 x 1 x 5 x 6
    rois = rois[:4] / 2  # same boxes on a smaller image (stride 8 on 40 x 48 px)
    layer = CropAndResize(output_size=2, spatial_scale=1 / 8, crop_size=4)
    assert torch.autograd.gradcheck(lambda f: layer(f, rois), (feat,), eps=1e-6, atol=1e-7)


def test_single_point_crop_is_the_box_centre():
    feat = torch.arange(20.).reshape(1, 1, 4, 5)
    # Box [0.25, 0.75] of the image in y and x -> centre at 0.5 * (H - 1), 0.5 * (W - 1) = (1.5, 2).
    rois = torch.tensor([[0, 1.25, 1.0, 3.75, 3.0]])  # image 4 x 5 px at spatial_scale 1
    out = CropAndResize(output_size=1, spatial_scale=1.0, crop_size=1)(feat, rois)
    assert out.item() == pytest.approx(0.5 * (feat[0, 0, 1, 2] + feat[0, 0, 2, 2]).item())


def test_built_by_single_roi_extractor_and_bad_args():
    extractor = SingleRoIExtractor(roi_layer=dict(type='CropAndResize', output_size=7), out_channels=3,
                                   featmap_strides=[8])
    layer = extractor.roi_layers[0]
    assert isinstance(layer, CropAndResize) and layer.spatial_scale == 1 / 8 and layer.crop_size == (14, 14)
    feat, rois = make_case(torch.float32)
    torch.testing.assert_close(extractor([feat], rois), layer(feat, rois))
    assert MODELS.get('CropAndResize') is CropAndResize
    with pytest.raises(ValueError, match='multiple of output_size'):
        CropAndResize(output_size=7, crop_size=10)
    with pytest.raises(ValueError, match=r'rois \(R, 5\)'):
        layer(feat, rois[:, 1:])
    assert layer(feat, rois[:0]).shape == (0, 3, 7, 7)
