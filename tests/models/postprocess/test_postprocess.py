"""The shared per-image post-processing against slow references written here: proposal selection
(per level top-k, decode, clip, size filter, per-level NMS, cap) and second-stage detections
(softmax, decode, threshold, class-wise NMS, cap), eagerly and as traced by ONNX export's tracer."""
import torch
from torchvision.ops import box_iou

from rcnn_plugins.models.postprocess import rcnn_detections, rpn_proposals, topk_at_most
from rcnn_plugins.models.task_modules.coders.delta_xywh_bbox_coder import DeltaXYWHBBoxCoder


def _anchors(n, g, size=100.):
    xy = torch.rand(n, 2, generator=g) * size
    wh = torch.rand(n, 2, generator=g) * 30 + 2
    return torch.cat([xy - wh / 2, xy + wh / 2], 1)


def _greedy_nms(boxes, scores, thr):
    """Textbook greedy NMS, one box at a time."""
    order = scores.argsort(descending=True).tolist()
    keep = []
    for i in order:
        if all(box_iou(boxes[i:i + 1], boxes[j:j + 1])[0, 0] <= thr for j in keep):
            keep.append(i)
    return torch.tensor(keep, dtype=torch.long)


def test_rpn_proposals_match_reference():
    g = torch.Generator().manual_seed(0)
    coder = DeltaXYWHBBoxCoder()
    sizes = [60, 25, 7]
    scores = [torch.rand(n, generator=g) for n in sizes]
    deltas = [torch.randn(n, 4, generator=g) * 0.2 for n in sizes]
    anchors = [_anchors(n, g) for n in sizes]
    hw = torch.tensor([90., 80.])
    cfg = dict(nms_pre=20, min_bbox_size=3, nms=dict(type='nms', iou_threshold=0.5), max_per_img=15)
    boxes, got_scores = rpn_proposals(scores, deltas, anchors, coder, hw, cfg)

    ref_boxes, ref_scores = [], []
    for s, d, a in zip(scores, deltas, anchors):  # per level: top-20, decode, clip to (h, w)
        top = s.argsort(descending=True)[:20]
        b = coder.decode(a[top], d[top])
        b = torch.stack([b[:, 0].clamp(0, 80), b[:, 1].clamp(0, 90), b[:, 2].clamp(0, 80), b[:, 3].clamp(0, 90)], 1)
        big = ((b[:, 2] - b[:, 0]) > 3) & ((b[:, 3] - b[:, 1]) > 3)
        b, ss = b[big], s[top][big]
        k = _greedy_nms(b, ss, 0.5)
        ref_boxes.append(b[k])
        ref_scores.append(ss[k])
    ref_boxes, ref_scores = torch.cat(ref_boxes), torch.cat(ref_scores)
    order = ref_scores.argsort(descending=True)[:15]
    assert len(got_scores) == 15
    torch.testing.assert_close(got_scores, ref_scores[order])
    torch.testing.assert_close(boxes, ref_boxes[order])


def test_rcnn_detections_match_reference_and_trace():
    g = torch.Generator().manual_seed(1)
    coder = DeltaXYWHBBoxCoder(target_stds=[0.1, 0.1, 0.2, 0.2])
    proposals = _anchors(30, g)
    logits = torch.randn(30, 4, generator=g) * 2  # 3 classes + background
    deltas = torch.randn(30, 12, generator=g)
    hw = torch.tensor([100., 100.])
    cfg = dict(score_thr=0.2, nms=dict(type='nms', iou_threshold=0.5), max_per_img=10)
    boxes, scores, labels = rcnn_detections(proposals, logits, deltas, coder, hw, cfg)

    probs = logits.softmax(-1)
    cand = []
    for c in range(3):  # per class: threshold, NMS
        b = coder.decode(proposals, deltas[:, 4 * c:4 * c + 4], max_shape=(100, 100))
        m = probs[:, c] > 0.2
        k = _greedy_nms(b[m], probs[m, c], 0.5)
        cand += [(probs[m, c][i].item(), c, b[m][i]) for i in k]
    cand.sort(key=lambda t: -t[0])
    cand = cand[:10]
    assert len(scores) == len(cand) > 3
    torch.testing.assert_close(scores, torch.tensor([t[0] for t in cand]))
    assert labels.tolist() == [t[1] for t in cand]
    torch.testing.assert_close(boxes, torch.stack([t[2] for t in cand]))

    # Traced (the ONNX path: coordinate-offset NMS, graph-valued sizes) gives the same.
    traced = torch.jit.trace(lambda p, lg, d: rcnn_detections(p, lg, d, coder, hw, cfg), (proposals, logits, deltas),
                             check_trace=False)
    t_boxes, t_scores, t_labels = traced(proposals, logits, deltas)
    torch.testing.assert_close(t_scores, scores)
    torch.testing.assert_close(t_boxes, boxes)


def test_topk_at_most_keeps_everything_when_k_is_large():
    s = torch.tensor([0.1, 0.9, 0.5])
    values, inds = topk_at_most(s, 10)
    assert torch.equal(values, s) and inds.tolist() == [0, 1, 2]
    values, inds = topk_at_most(s, 2)
    assert inds.tolist() == [1, 2]
