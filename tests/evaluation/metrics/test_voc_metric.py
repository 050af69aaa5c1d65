"""VOCMetric / eval_map against worked examples.

The main case is the example of R. Padilla's "Object-Detection-Metrics" README (repository
rafaelpadilla/Object-Detection-Metrics, files groundtruths/ and detections/, boxes as
left top width height): 7 images, 15 gt and 24 detections (A..Y) of one class, IoU threshold 0.3.
"""
import numpy as np
import pytest
import torch
from mmengine.evaluator import Evaluator
from mmengine.structures import InstanceData

from rcnn_plugins.evaluation import VOCMetric
from rcnn_plugins.evaluation.functional import average_precision, eval_map, eval_recalls
from rcnn_plugins.structures import DetDataSample

PADILLA_GTS = {
    1: [(25, 16, 38, 56), (129, 123, 41, 62)],
    2: [(123, 11, 43, 55), (38, 132, 59, 45)],
    3: [(16, 14, 35, 48), (123, 30, 49, 44), (99, 139, 47, 47)],
    4: [(53, 42, 40, 52), (154, 43, 31, 34)],
    5: [(59, 31, 44, 51), (48, 128, 34, 52)],
    6: [(36, 89, 52, 76), (62, 58, 44, 67)],
    7: [(28, 31, 55, 63), (58, 67, 50, 58)],
}
PADILLA_DETS = {  # (confidence, left, top, width, height); letters A.. in this order
    1: [(.88, 5, 67, 31, 48), (.70, 119, 111, 40, 67), (.80, 124, 9, 49, 67)],
    2: [(.71, 64, 111, 64, 58), (.54, 26, 140, 60, 47), (.74, 19, 18, 43, 35)],
    3: [(.18, 109, 15, 77, 39), (.67, 86, 63, 46, 45), (.38, 160, 62, 36, 53), (.91, 105, 131, 47, 47),
        (.44, 18, 148, 40, 44)],
    4: [(.35, 83, 28, 28, 26), (.78, 28, 68, 42, 67), (.45, 87, 89, 25, 39), (.14, 10, 155, 60, 26)],
    5: [(.62, 50, 38, 28, 46), (.44, 95, 11, 53, 28), (.95, 29, 131, 72, 29), (.23, 29, 163, 72, 29)],
    6: [(.45, 43, 48, 74, 38), (.84, 17, 155, 29, 35), (.43, 95, 110, 25, 42)],
    7: [(.48, 16, 20, 101, 88), (.95, 33, 116, 37, 49)],
}


def xywh_to_xyxy(boxes):
    boxes = np.array(boxes, dtype=np.float64).reshape(-1, 4)
    boxes[:, 2:] += boxes[:, :2]
    return boxes


def padilla_samples():
    samples = []
    for img_id in range(1, 8):
        dets = np.array(PADILLA_DETS[img_id])
        s = DetDataSample(metainfo=dict(img_id=img_id, ori_shape=(200, 250)))
        s.pred_instances = InstanceData(bboxes=torch.tensor(xywh_to_xyxy(dets[:, 1:])),
                                        scores=torch.tensor(dets[:, 0]),
                                        labels=torch.zeros(len(dets), dtype=torch.long))
        s.gt_instances = InstanceData(bboxes=torch.tensor(xywh_to_xyxy(PADILLA_GTS[img_id])),
                                      labels=torch.zeros(len(PADILLA_GTS[img_id]), dtype=torch.long))
        s.ignored_instances = InstanceData(bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long))
        samples.append(s)
    return samples


def evaluate(metric_cfg, samples, classes=('person',), dataset_type=None):
    evaluator = Evaluator(metric_cfg)
    evaluator.dataset_meta = dict(classes=classes, dataset_type=dataset_type)
    evaluator.process(data_samples=samples)
    return evaluator.evaluate(len(samples))


# The README's ranked table (ties keep image order: R (image 5) before Y (image 7)):
#   R T, Y F, J T, A F, U F, C F, M F, F F, D F, B T, H F, P T, E T, X T, N F, T F, K F, Q F, V F,
#   I F, L F, S F, G T, O F      -> 7 TPs of 15 gts.
# Precision envelope: 1 up to recall 1/15, 2/3 up to 2/15, 6/14 up to 6/15, 7/23 up to 7/15.
ELEVEN_POINT = (1 + 2 / 3 + 3 * 6 / 14) / 11                                   # README: 26.84 %
ALL_POINT = 1 / 15 * 1 + 1 / 15 * 2 / 3 + 4 / 15 * 6 / 14 + 1 / 15 * 7 / 23   # README: 24.56 %


def test_padilla_example_both_eval_modes():
    # The README's IoUs use inclusive pixels (w = x2 - x1 + 1): detection G overlaps its gt
    # with IoU 0.303 that way (a TP at 0.3) but 0.295 with w = x2 - x1.
    r11 = evaluate(dict(type=VOCMetric, iou_thrs=0.3, eval_mode='11points', use_legacy_coordinate=True),
                   padilla_samples())
    area = evaluate(dict(type=VOCMetric, iou_thrs=0.3, eval_mode='area', use_legacy_coordinate=True),
                    padilla_samples())
    assert r11 == {'pascal_voc/mAP': pytest.approx(ELEVEN_POINT, abs=1e-12),
                   'pascal_voc/AP30': pytest.approx(ELEVEN_POINT, abs=1e-12)}
    assert r11['pascal_voc/mAP'] == pytest.approx(0.2684, abs=1e-4)
    assert area['pascal_voc/mAP'] == pytest.approx(ALL_POINT, abs=1e-12)
    assert area['pascal_voc/mAP'] == pytest.approx(0.2456, abs=1e-4)


def test_padilla_example_without_legacy_coordinates():
    # G becomes a false positive: only 6 TPs; the envelope ends at recall 6/15.
    area = evaluate(dict(type=VOCMetric, iou_thrs=0.3, eval_mode='area', use_legacy_coordinate=False),
                    padilla_samples())
    assert area['pascal_voc/mAP'] == pytest.approx(1 / 15 + 1 / 15 * 2 / 3 + 4 / 15 * 6 / 14, abs=1e-12)
    # 'auto' picks the legacy convention only for VOC data.
    auto_voc = evaluate(dict(type=VOCMetric, iou_thrs=0.3, eval_mode='area'), padilla_samples(),
                        dataset_type='VOC2012')
    auto_other = evaluate(dict(type=VOCMetric, iou_thrs=0.3, eval_mode='area'), padilla_samples())
    assert auto_voc['pascal_voc/mAP'] == pytest.approx(ALL_POINT, abs=1e-12)
    assert auto_other['pascal_voc/mAP'] == pytest.approx(area['pascal_voc/mAP'], abs=1e-12)


def test_several_thresholds_average_into_map():
    res = evaluate(dict(type=VOCMetric, iou_thrs=[0.3, 0.5], eval_mode='area', use_legacy_coordinate=True),
                   padilla_samples())
    assert list(res) == ['pascal_voc/mAP', 'pascal_voc/AP30', 'pascal_voc/AP50']
    assert res['pascal_voc/mAP'] == pytest.approx((res['pascal_voc/AP30'] + res['pascal_voc/AP50']) / 2)
    assert res['pascal_voc/AP50'] < res['pascal_voc/AP30']


def ann(bboxes, labels, ignore=(), ignore_labels=()):
    return dict(bboxes=np.array(bboxes, dtype=np.float64).reshape(-1, 4), labels=np.array(labels, dtype=int),
                bboxes_ignore=np.array(ignore, dtype=np.float64).reshape(-1, 4),
                labels_ignore=np.array(ignore_labels, dtype=int))


def test_difficult_gt_is_neither_tp_nor_fp():
    # Class 0: one normal gt and one difficult gt. Ranked detections:
    #   0.9 on the difficult gt -> ignored;  0.8 on the normal gt -> TP;  0.7 elsewhere -> FP.
    # Positives = 1. Points (recall, precision): (1, 1) then (1, 0.5) -> AP = 1 in both modes.
    # Had the difficult match counted as FP, precision at recall 1 would be 1/2.
    anns = [ann([[0, 0, 10, 10]], [0], ignore=[[50, 50, 60, 60]], ignore_labels=[0])]
    dets = [[np.array([[50, 50, 60, 60, .9], [0, 0, 10, 10, .8], [100, 100, 110, 110, .7]])]]
    for mode in ('area', '11points'):
        mean_ap, results = eval_map(dets, anns, iou_thr=0.5, eval_mode=mode)
        assert mean_ap == pytest.approx(1.0)
        assert results[0]['num_gts'] == 1
    # Through the metric, with `instances` (ignore_flag) as the gt source.
    s = DetDataSample(metainfo=dict(img_id=0, ori_shape=(120, 120), scale_factor=(2., 2.), instances=[
        dict(bbox=[0, 0, 10, 10], bbox_label=0, ignore_flag=0),
        dict(bbox=[50, 50, 60, 60], bbox_label=0, ignore_flag=1)]))
    s.pred_instances = InstanceData(bboxes=torch.tensor(dets[0][0][:, :4]), scores=torch.tensor(dets[0][0][:, 4]),
                                    labels=torch.zeros(3, dtype=torch.long))
    assert evaluate(dict(type=VOCMetric, use_legacy_coordinate=False), [s])['pascal_voc/mAP'] == pytest.approx(1.0)


def test_duplicate_detection_is_false_positive_and_classes_without_gt_are_left_out():
    # Class 0: two detections on the same gt: 0.9 TP, 0.8 duplicate FP; a second gt is missed.
    #   points (1/2, 1), (1/2, 1/2): area AP = 1/2; 11-point AP = 6/11 (recall 0..0.5 -> 1).
    # Class 1: no gt, one detection -> AP 0 but not part of the mean (MMDetection's rule).
    anns = [ann([[0, 0, 10, 10], [20, 20, 30, 30]], [0, 0])]
    dets = [[np.array([[0, 0, 10, 10, .9], [1, 1, 10, 10, .8]]), np.array([[40, 40, 50, 50, .5]])]]
    mean_ap, results = eval_map(dets, anns, iou_thr=0.5, eval_mode='area')
    assert results[0]['ap'] == pytest.approx(0.5) and results[1]['ap'] == 0.0 and results[1]['num_gts'] == 0
    assert mean_ap == pytest.approx(0.5)
    assert eval_map(dets, anns, iou_thr=0.5, eval_mode='11points')[0] == pytest.approx(6 / 11)
    # No gt at all in the dataset: mAP 0.
    assert eval_map([[np.zeros((0, 5))]], [ann([], [])])[0] == 0.0


def test_best_match_taken_gives_false_positive_even_if_another_gt_overlaps():
    # gt a = [0,0,10,10], gt b = [6,0,16,10]. Det 1 (0.9) = a exactly -> TP.
    # Det 2 (0.8) = [2,0,12,10]: IoU with a = 8/12, with b = 6/14; its best gt (a) is taken -> FP,
    # even though IoU with b >= 0.4 (VOC matches only the best-overlapping gt).
    anns = [ann([[0, 0, 10, 10], [6, 0, 16, 10]], [0, 0])]
    dets = [[np.array([[0, 0, 10, 10, .9], [2, 0, 12, 10, .8]])]]
    _, results = eval_map(dets, anns, iou_thr=0.4, eval_mode='area')
    np.testing.assert_allclose(results[0]['recall'], [0.5, 0.5])
    np.testing.assert_allclose(results[0]['precision'], [1.0, 0.5])


def test_average_precision_by_hand():
    recalls = np.array([0.25, 0.25, 0.5, 0.75])
    precisions = np.array([1.0, 0.5, 2 / 3, 0.75])
    # Envelope: 1 on (0, .25], .75 on (.25, .75]  -> 0.25 + 0.375
    assert average_precision(recalls, precisions, 'area') == pytest.approx(0.25 + 0.5 * 0.75)
    # 11 points: r = 0 .. 0.2 -> 1 (3 points); 0.3 .. 0.7 -> 0.75 (5 points); 0.8 .. 1 -> 0
    assert average_precision(recalls, precisions, '11points') == pytest.approx((3 + 5 * 0.75) / 11)


def test_scale_ranges_split_by_box_size():
    # A small gt (10x10) found, a large gt (100x100) missed: AP 1 for the small range, 0 for large.
    anns = [ann([[0, 0, 10, 10], [100, 100, 200, 200]], [0, 0])]
    dets = [[np.array([[0, 0, 10, 10, .9]])]]
    mean_ap, _ = eval_map(dets, anns, iou_thr=0.5, scale_ranges=[(0, 32), (32, 1e5)], eval_mode='area')
    assert mean_ap == pytest.approx([1.0, 0.0])
    s = DetDataSample(metainfo=dict(img_id=0, ori_shape=(300, 300)))
    s.gt_instances = InstanceData(bboxes=torch.tensor(anns[0]['bboxes']), labels=torch.zeros(2, dtype=torch.long))
    s.pred_instances = InstanceData(bboxes=torch.tensor([[0., 0, 10, 10]]), scores=torch.tensor([.9]),
                                    labels=torch.tensor([0]))
    res = evaluate(dict(type=VOCMetric, scale_ranges=[(0, 32), (32, 1e5)], eval_mode='area'), [s])
    assert res['pascal_voc/AP50_0-32'] == pytest.approx(1.0)
    assert res['pascal_voc/AP50_32-100000.0'] == pytest.approx(0.0)
    assert res['pascal_voc/mAP_0-32'] == pytest.approx(1.0)


def test_recall_metric_by_hand():
    # gts: g1 = [0,0,10,10], g2 = [20,0,30,10]. Proposals by score: exact g1; [20,0,35,10] (IoU 10/15
    # with g2); exact g2. Top 1: 1/2 at any thr. Top 2: g2 matched at 2/3 -> counted at 0.5, not 0.7.
    gts = [np.array([[0, 0, 10, 10], [20, 0, 30, 10.]])]
    props = [np.array([[0, 0, 10, 10, .9], [20, 0, 35, 10, .8], [20, 0, 30, 10, .7]])]
    recalls = eval_recalls(gts, props, proposal_nums=(1, 2, 3), iou_thrs=[0.5, 0.7])
    np.testing.assert_allclose(recalls, [[0.5, 0.5], [1.0, 0.5], [1.0, 1.0]])
    s = DetDataSample(metainfo=dict(img_id=0, ori_shape=(50, 50)))
    s.gt_instances = InstanceData(bboxes=torch.tensor(gts[0]), labels=torch.zeros(2, dtype=torch.long))
    s.pred_instances = InstanceData(bboxes=torch.tensor(props[0][:, :4]), scores=torch.tensor(props[0][:, 4]),
                                    labels=torch.zeros(3, dtype=torch.long))
    res = evaluate(dict(type=VOCMetric, metric='recall', proposal_nums=(1, 2), iou_thrs=[0.5, 0.7],
                        use_legacy_coordinate=False), [s])
    assert res == {'pascal_voc/recall@1@0.5': 0.5, 'pascal_voc/recall@1@0.7': 0.5,
                   'pascal_voc/recall@2@0.5': 1.0, 'pascal_voc/recall@2@0.7': 0.5,
                   'pascal_voc/AR@1': 0.5, 'pascal_voc/AR@2': 0.75}
