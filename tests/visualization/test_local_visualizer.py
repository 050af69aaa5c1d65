"""DetLocalVisualizer draws boxes where they belong; DetVisualizationHook writes its files."""
import os.path as osp
import types
from unittest import mock

import cv2
import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData

from rcnn_plugins.engine.hooks.visualization_hook import DetVisualizationHook
from rcnn_plugins.registry import HOOKS, VISUALIZERS
from rcnn_plugins.structures import DetDataSample
from rcnn_plugins.datasets.palette import default_palette
from rcnn_plugins.visualization import DetLocalVisualizer, get_palette

H, W, BG = 120, 160, 60
RED, GREEN = (255, 0, 0), (0, 255, 0)


def make_sample():
    s = DetDataSample(metainfo=dict(img_id=0, ori_shape=(H, W)))
    s.gt_instances = InstanceData(bboxes=torch.tensor([[10., 10, 50, 60], [80, 30, 140, 100]]),
                                  labels=torch.tensor([0, 1]))
    s.pred_instances = InstanceData(
        bboxes=torch.tensor([[12., 14, 52, 62], [78, 30, 138, 104], [20, 80, 60, 110]]),
        labels=torch.tensor([0, 1, 1]), scores=torch.tensor([0.9, 0.6, 0.2]))   # the last is below 0.3
    return s


def read_rgb(path):
    return cv2.imread(str(path))[..., ::-1]


def test_boxes_drawn_in_class_colours_and_rest_untouched(tmp_path):
    vis = VISUALIZERS.build(dict(type='DetLocalVisualizer', name='vis_colours', alpha=1.0))
    vis.dataset_meta = dict(classes=('cat', 'dog'), palette=[RED, GREEN])
    out = tmp_path / 'drawn.png'
    vis.add_datasample('x', np.full((H, W, 3), BG, np.uint8), make_sample(), out_file=str(out))
    drawn = read_rgb(out)
    assert drawn.shape == (H, 2 * W, 3)          # gt panel | prediction panel
    gt, pred = drawn[:, :W], drawn[:, W:]
    # Left edges (x = 10 / 80) and bottom edges, sampled away from corners and label texts.
    np.testing.assert_array_equal(gt[35, 10], RED)
    np.testing.assert_array_equal(gt[60, 30], RED)
    np.testing.assert_array_equal(gt[70, 80], GREEN)
    np.testing.assert_array_equal(pred[40, 12], RED)
    np.testing.assert_array_equal(pred[70, 78], GREEN)
    np.testing.assert_array_equal(pred[104, 100], GREEN)
    # The 0.2-score prediction ([20, 80, 60, 110]) is not drawn.
    np.testing.assert_array_equal(pred[95, 20], (BG, BG, BG))
    # Far from every box (and from the labels at the boxes' top-left corners) nothing changed.
    for panel in (gt, pred):
        for y, x in [(2, 155), (115, 5), (115, 155), (40, 65), (5, 70)]:
            np.testing.assert_array_equal(panel[y, x], (BG, BG, BG))
    # Box interiors stay as they were (face colour 'none').
    np.testing.assert_array_equal(gt[45, 30], (BG, BG, BG))


def test_alpha_blends_with_the_image_and_fixed_bbox_color(tmp_path):
    vis = DetLocalVisualizer(name='vis_alpha', bbox_color=(0, 0, 255), alpha=0.8)
    vis.dataset_meta = dict(classes=('cat', 'dog'))
    sample = make_sample()
    out = tmp_path / 'pred.png'
    vis.add_datasample('x', np.full((H, W, 3), BG, np.uint8), sample, draw_gt=False, out_file=str(out))
    drawn = read_rgb(out)
    assert drawn.shape == (H, W, 3)                # predictions only
    expected = 0.8 * np.array([0, 0, 255]) + 0.2 * BG
    np.testing.assert_allclose(drawn[40, 12].astype(float), expected, atol=2)
    np.testing.assert_allclose(drawn[70, 78].astype(float), expected, atol=2)


def test_get_palette_forms():
    assert get_palette([(1, 2, 3), (4, 5, 6)], 2) == [(1, 2, 3), (4, 5, 6)]
    assert get_palette((9, 8, 7), 3) == [(9, 8, 7)] * 3
    assert get_palette('red', 2) == [(255, 0, 0)] * 2
    random = get_palette(None, 5)
    assert random == get_palette("random", 5) == default_palette(5)   # one colour policy
    assert len(set(random)) == 5
    with pytest.raises(ValueError):
        get_palette([(1, 2, 3)], 2)


def write_image(path):
    img = np.full((H, W, 3), BG, np.uint8)
    cv2.imwrite(str(path), img)
    return str(path)


def test_hook_writes_test_drawings_under_work_dir(tmp_path):
    DetLocalVisualizer.get_instance('vis_hook_test')
    hook = HOOKS.build(dict(type='DetVisualizationHook', draw=True, test_out_dir='show'))
    assert isinstance(hook, DetVisualizationHook)
    runner = types.SimpleNamespace(work_dir=str(tmp_path / 'work'), timestamp='20260101_000000', iter=0)
    samples = []
    for name in ('a.png', 'b.png'):
        s = make_sample()
        del s.gt_instances
        s.set_metainfo(dict(img_path=write_image(tmp_path / name)))
        samples.append(s)
    hook.before_test(runner)
    hook.after_test_iter(runner, 0, {}, samples)
    for name in ('a.png', 'b.png'):
        path = osp.join(str(tmp_path / 'work'), '20260101_000000', 'show', name)
        assert osp.isfile(path)
        drawn = read_rgb(path)
        assert drawn.shape == (H, W, 3)
        assert (drawn != BG).any()              # boxes were drawn
        np.testing.assert_array_equal(drawn[115, 155], (BG, BG, BG))


def test_hook_draws_every_interval_in_validation_and_nothing_when_off(tmp_path):
    vis = DetLocalVisualizer.get_instance('vis_hook_val')
    sample = make_sample()
    sample.set_metainfo(dict(img_path=write_image(tmp_path / 'v.png')))
    runner = types.SimpleNamespace(work_dir=str(tmp_path), timestamp='t', iter=0)
    with mock.patch.object(vis, 'add_datasample') as add:
        hook = DetVisualizationHook(draw=True, interval=2)
        for batch_idx in range(5):
            hook.after_val_iter(runner, batch_idx, {}, [sample])
        assert [c.kwargs['step'] for c in add.call_args_list] == [0, 2, 4]
        image = add.call_args_list[0].args[1]
        assert image.shape == (H, W, 3) and image.dtype == np.uint8
        off = DetVisualizationHook(draw=False, test_out_dir='x')
        off.before_test(runner)
        off.after_test_iter(runner, 0, {}, [sample])
        off.after_val_iter(runner, 0, {}, [sample])
        assert add.call_count == 3
    assert not osp.exists(osp.join(str(tmp_path), 't', 'x'))
