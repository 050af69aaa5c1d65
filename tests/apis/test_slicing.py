"""Sliced inference (``rcnn_plugins.apis.slicing``): tile grid, merging, and recovery of objects on
tile borders with a deterministic stand-in detector whose answers are known.

The stand-in "detector" sees what a 512-pixel model sees: it resizes its input so the long side
is 512, thresholds it, and reports each bright connected region at least 6 px wide and high (at
that scale) as a box, class = the colour channel that is bright, score growing with the area.
So on a 2048 x 2048 image a whole-image pass (scale 1/4) cannot see the 12-pixel objects, while
512-pixel tiles (scale 1) see every pixel exactly.
"""
import cv2
import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData

from rcnn_plugins.apis.slicing import (connected_components, merge_predictions, slice_grid, sliced_predict)

MODEL_SIZE = 512
MIN_SIDE = 6
SIZE = 2048

# Tiles of 512 with overlap 0.2 on 2048: starts 0, 410, 820, 1230, 1536 (both axes), so the
# overlaps are x/y in [410, 512), [820, 922), [1230, 1332), [1536, 1742).
# (x1, y1, x2, y2, class); all coordinates integers, objects never touch each other.
SMALL = [
    (450, 100, 462, 112, 0),    # inside the overlap of tiles 0 and 1: seen whole twice
    (505, 300, 517, 312, 0),    # across tile 0's right edge (x=512): 7 px partial + whole in tile 1
    (460, 460, 472, 472, 1),    # in the 4-tile overlap at a corner: seen whole four times
    (200, 200, 212, 212, 1),    # inside one tile only
    (915, 1500, 927, 1512, 0),  # across tile column 1's right edge (x=922): 7 px partial + whole
    (2036, 2036, 2048, 2048, 1),  # in the image corner
    (1000, 700, 1012, 712, 0),  # inside one tile only
]
LARGE = [
    (380, 1000, 630, 1250, 0),   # across x = 410-512 and y = 1230-1332: no tile holds it, 4 partial boxes
    (1200, 1200, 1450, 1450, 1),  # across a tile corner: four partial boxes
]
TRUTH = SMALL + LARGE


def make_scene() -> np.ndarray:
    img = np.full((SIZE, SIZE, 3), 20, np.uint8)
    for x1, y1, x2, y2, cls in TRUTH:
        img[y1:y2, x1:x2, cls] = 255
    return img


def stand_in_detector(images):
    """See module docstring: boxes in each input image's pixels."""
    preds = []
    for img in images:
        h, w = img.shape[:2]
        scale = MODEL_SIZE / max(h, w)
        if scale != 1:
            img = cv2.resize(img, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        boxes, labels = [], []
        for cls in (0, 1):
            mask = ((img[..., cls] > 127) & (img[..., 1 - cls] < 128)).astype(np.uint8)
            _, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=4)
            for x, y, bw, bh, _ in stats[1:]:
                if bw >= MIN_SIDE and bh >= MIN_SIDE:
                    boxes.append([x, y, x + bw, y + bh])
                    labels.append(cls)
        boxes = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4) / scale
        areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        preds.append(InstanceData(bboxes=boxes, scores=1 - 1 / (1 + areas / 100),
                                  labels=torch.tensor(labels, dtype=torch.long)))
    return preds


def match_truth(pred: InstanceData, truth, tol: float):
    """For each truth box, the number of predicted boxes of its class within ``tol`` px on every side."""
    t = torch.tensor([b[:4] for b in truth], dtype=torch.float32)
    t_labels = torch.tensor([b[4] for b in truth])
    close = ((pred.bboxes[None] - t[:, None]).abs() <= tol).all(-1) & (pred.labels[None] == t_labels[:, None])
    return close.sum(1)


def test_slice_grid_hand_computed():
    tiles = slice_grid(SIZE, SIZE, (512, 512), 0.2)
    starts = [0, 410, 820, 1230, 1536]  # step round(0.8 * 512) = 410; the last moved back to end at 2048
    assert tiles.shape == (25, 4)
    assert tiles[:5, 0].tolist() == starts and tiles[::5, 1].tolist() == starts
    assert ((tiles[:, 2:] - tiles[:, :2]) == 512).all()
    # A non-square image and a tile larger than the image.
    tiles = slice_grid(300, 1000, (512, 400), 0.25)
    assert tiles.tolist() == [[0, 0, 400, 300], [300, 0, 700, 300], [600, 0, 1000, 300]]
    with pytest.raises(ValueError, match='overlap'):
        slice_grid(100, 100, (50, 50), 1.0)


def test_connected_components_match_union_find():
    rng = np.random.default_rng(0)
    num = 60
    pairs = rng.integers(0, num, size=(2, 45))
    parent = list(range(num))

    def find(a):
        while parent[a] != a:
            a = parent[a]
        return a

    for a, b in pairs.T:
        ra, rb = find(a), find(b)
        parent[max(ra, rb)] = min(ra, rb)
    expected = [min(i for i in range(num) if find(i) == find(j)) for j in range(num)]
    assert connected_components(num, torch.from_numpy(pairs)).tolist() == expected


def test_whole_image_pass_misses_the_small_objects():
    pred = stand_in_detector([make_scene()])[0]
    assert (match_truth(pred, SMALL, tol=8) == 0).all()  # 12 px -> 3 px at scale 1/4: invisible
    assert (match_truth(pred, LARGE, tol=8) == 1).all()  # 250 px objects are found whole


def test_sliced_nmm_recovers_every_object_once():
    img = make_scene()
    pred = sliced_predict(img, stand_in_detector, (512, 512), overlap=0.2, batch_size=4, merge='nmm')
    # Each object exactly once, within a pixel of the truth, nothing else.
    assert match_truth(pred, TRUTH, tol=1).tolist() == [1] * len(TRUTH)
    assert len(pred) == len(TRUTH)
    # The tiles alone gave several boxes for most objects: merging did the work.
    raw = stand_in_detector([img[y1:y2, x1:x2] for x1, y1, x2, y2 in slice_grid(SIZE, SIZE, (512, 512)).tolist()])
    assert sum(len(p) for p in raw) > len(TRUTH) + 10
    # The same with the whole-image pass merged in (its large boxes are only ~4 px exact).
    pred = sliced_predict(img, stand_in_detector, (512, 512), overlap=0.2, batch_size=3, full_image=True)
    assert match_truth(pred, TRUTH, tol=4).tolist() == [1] * len(TRUTH) and len(pred) == len(TRUTH)


def test_sliced_nms_dedups_small_objects_but_not_split_large_ones():
    pred = sliced_predict(make_scene(), stand_in_detector, (512, 512), overlap=0.2, merge='nms')
    assert match_truth(pred, SMALL, tol=1).tolist() == [1] * len(SMALL)
    # No tile holds a large object whole; NMS keeps truncated boxes and never rebuilds the object.
    assert (match_truth(pred, LARGE, tol=1) == 0).all()
    assert len(pred) > len(TRUTH)


def test_merge_keeps_classes_apart_and_takes_the_union():
    bboxes = torch.tensor([[0., 0., 10., 10.], [2., 1., 12., 10.], [0., 0., 10., 10.], [1., 1., 9., 9.]])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6])
    labels = torch.tensor([0, 0, 1, 0])
    tile_ids = torch.tensor([0, 1, 1, 0])
    out_boxes, out_scores, out_labels = merge_predictions(bboxes, scores, labels, tile_ids, merge='nmm')
    # Box 0 and 1 (class 0, different tiles) merge into their union; box 2 is another class; box 3
    # is inside box 0 but from the same tile (that tile's model NMS kept both), yet joins through box 1.
    assert out_labels.tolist() == [0, 1]
    torch.testing.assert_close(out_boxes, torch.tensor([[0., 0., 12., 10.], [0., 0., 10., 10.]]))
    torch.testing.assert_close(out_scores, torch.tensor([0.9, 0.7]))
    # IoU is stricter: boxes 0 and 1 have IoS 72/90 = 0.8 but IoU 72/118 = 0.61; 1 and 3 IoU 56/98 = 0.57.
    out_boxes, out_scores, out_labels = merge_predictions(bboxes, scores, labels, tile_ids, match_metric='iou',
                                                          match_thr=0.6)
    assert out_labels.tolist() == [0, 1, 0]
    torch.testing.assert_close(out_boxes, torch.tensor([[0., 0., 12., 10.], [0., 0., 10., 10.], [1., 1., 9., 9.]]))
    # NMS instead: box 1 (IoU 0.61 with box 0) and box 3 (IoU 0.64 with box 0) are suppressed.
    out_boxes, out_scores, out_labels = merge_predictions(bboxes, scores, labels, tile_ids, merge='nms')
    assert out_scores.tolist() == pytest.approx([0.9, 0.7]) and out_labels.tolist() == [0, 1]
