"""``init_detector`` / ``inference_detector``: checkpoint round trip, file vs array input, and
boxes returned in pixels of the input image."""
import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config

from rcnn_plugins.apis import inference_detector, init_detector

CONFIG = 'configs/faster_rcnn/faster-rcnn_r18_fpn_demo.py'


@pytest.fixture(scope='module')
def small_cfg():
    cfg = Config.fromfile(CONFIG)
    # Lower the score threshold so a randomly initialised model still returns boxes to compare.
    cfg.model.test_cfg.rcnn.score_thr = 0.0
    # Pin the test-time resize so the expected shapes below don't follow demo tuning.
    resize = next(t for t in cfg.test_dataloader.dataset.pipeline if t['type'] == 'Resize')
    resize.update(scale=(224, 224), keep_ratio=True)
    return cfg


@pytest.fixture(scope='module')
def image_file(tmp_path_factory):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, size=(300, 420, 3), dtype=np.uint8)
    path = tmp_path_factory.mktemp('img') / 'img.png'
    cv2.imwrite(str(path), img)
    return path, img


def test_checkpoint_round_trip(small_cfg, tmp_path):
    torch.manual_seed(0)
    model = init_detector(small_cfg, exact=True)
    ckpt = tmp_path / 'model.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {'dataset_meta': {'classes': ('a', 'b', 'c', 'd')}}},
               ckpt)
    torch.manual_seed(1)  # a different random init, overwritten by the checkpoint
    loaded = init_detector(small_cfg, str(ckpt), exact=True)
    assert not loaded.training
    assert loaded.dataset_meta == {'classes': ('a', 'b', 'c', 'd')}
    for (name, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), name


def test_file_and_array_give_same_detections_in_input_pixels(small_cfg, image_file):
    path, img = image_file
    torch.manual_seed(0)
    model = init_detector(small_cfg)
    from_file = inference_detector(model, path)
    from_array = inference_detector(model, img)
    assert from_file.ori_shape == (300, 420)
    # keep_ratio resize of 300x420 into 224x224: scale = min(224/420, 224/300) -> 224x160
    assert from_file.img_shape == (160, 224)
    assert from_file.img_path == str(path) and from_array.img_path is None
    pred_f, pred_a = from_file.pred_instances, from_array.pred_instances
    assert len(pred_f) > 0
    torch.testing.assert_close(pred_f.bboxes, pred_a.bboxes)
    torch.testing.assert_close(pred_f.scores, pred_a.scores)
    # Boxes are in pixels of the 420x300 input, not of the 224x160 network input: some reach
    # beyond the resized width, and none beyond the original image.
    bboxes = pred_f.bboxes
    assert bboxes[:, 0::2].max() > 224 and bboxes[:, 0::2].max() <= 420 + 1e-3
    assert bboxes[:, 1::2].max() <= 300 + 1e-3
    batch = inference_detector(model, [path, img])
    assert len(batch) == 2
    torch.testing.assert_close(batch[1].pred_instances.bboxes, pred_a.bboxes)
