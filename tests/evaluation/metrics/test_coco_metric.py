"""CocoMetric against pycocotools' COCOeval run directly on the same ground truth and detections."""
import contextlib
import io
import json
import math
from unittest import mock

import numpy as np
import pytest
import torch
from mmengine.evaluator import Evaluator
from mmengine.logging import MMLogger
from mmengine.structures import InstanceData
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from rcnn_plugins.evaluation import CocoMetric
from rcnn_plugins.structures import DetDataSample

# Category ids are deliberately not 0..C-1 and the file lists them out of id order.
CATEGORIES = [dict(id=7, name='cat'), dict(id=1, name='person'), dict(id=3, name='car')]
# Label i is the category named CLASSES[i] (as CocoDataset maps them): neither the file's order
# (7, 1, 3) nor the id order (1, 3, 7).
CLASSES = ('person', 'cat', 'car')
CAT_IDS = [1, 7, 3]
ITEMS = ['mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l',
         'AR@100', 'AR@300', 'AR@1000', 'AR_s@1000', 'AR_m@1000', 'AR_l@1000']


def make_dataset(rng):
    """4 images with small/medium/large boxes of 'cat' and 'car', one crowd box, no 'person' gt;
    detections jitter the gts, plus random false positives, some of class 'person'."""
    images, anns, dets = [], [], []
    for img_id in range(1, 5):
        images.append(dict(id=img_id, width=640, height=480, file_name=f'{img_id}.jpg'))
        boxes, labels = [], []
        for size in (20, 60, 150):           # sides -> small (<32^2), medium, large areas
            x, y = rng.uniform(0, 640 - size), rng.uniform(0, 480 - size)
            label = int(rng.integers(1, 3))
            boxes.append([x, y, x + size * rng.uniform(0.8, 1.2), y + size * rng.uniform(0.8, 1.2)])
            labels.append(label)
        for k, (box, label) in enumerate(zip(boxes, labels)):
            w, h = box[2] - box[0], box[3] - box[1]
            anns.append(dict(id=len(anns) + 1, image_id=img_id, category_id=CAT_IDS[label],
                             bbox=[box[0], box[1], w, h], area=w * h, iscrowd=int(img_id == 2 and k == 0)))
        pred_boxes, pred_scores, pred_labels = [], [], []
        for box, label in zip(boxes, labels):
            for _ in range(2):
                jitter = rng.normal(0, 4, 4)
                pred_boxes.append(np.array(box) + jitter)
                pred_scores.append(rng.uniform(0.05, 1))
                pred_labels.append(label if rng.uniform() < 0.8 else int(rng.integers(0, 3)))
        for _ in range(3):
            x, y = rng.uniform(0, 500), rng.uniform(0, 350)
            pred_boxes.append(np.array([x, y, x + rng.uniform(10, 120), y + rng.uniform(10, 120)]))
            pred_scores.append(rng.uniform(0.05, 1))
            pred_labels.append(int(rng.integers(0, 3)))
        dets.append(dict(img_id=img_id, bboxes=np.array(pred_boxes), scores=np.array(pred_scores),
                         labels=np.array(pred_labels)))
    gt_json = dict(images=images, annotations=anns, categories=CATEGORIES)
    return gt_json, dets


def to_samples(dets, with_instances_from=None):
    samples = []
    for d in dets:
        s = DetDataSample(metainfo=dict(img_id=d['img_id'], ori_shape=(480, 640), img_path=f"{d['img_id']}.jpg"))
        s.pred_instances = InstanceData(bboxes=torch.tensor(d['bboxes'], dtype=torch.float32),
                                        scores=torch.tensor(d['scores'], dtype=torch.float32),
                                        labels=torch.tensor(d['labels']))
        if with_instances_from is not None:
            s.set_metainfo(dict(instances=[
                dict(bbox=[a['bbox'][0], a['bbox'][1], a['bbox'][0] + a['bbox'][2], a['bbox'][1] + a['bbox'][3]],
                     bbox_label=CAT_IDS.index(a['category_id']), ignore_flag=a['iscrowd'])
                for a in with_instances_from['annotations'] if a['image_id'] == d['img_id']]))
        samples.append(s)
    return samples


def direct_cocoeval(gt_path, dets, max_dets=(100, 300, 1000), use_cats=True, cat_ids=CAT_IDS):
    """COCOeval run by hand on the float32-rounded boxes the metric sees."""
    records = []
    for d in dets:
        boxes = torch.tensor(d['bboxes'], dtype=torch.float32).double().numpy()
        scores = torch.tensor(d['scores'], dtype=torch.float32).double().numpy()
        for b, s, l in zip(boxes, scores, d['labels']):
            records.append(dict(image_id=d['img_id'], bbox=[b[0], b[1], b[2] - b[0], b[3] - b[1]],
                                score=float(s), category_id=CAT_IDS[l]))
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_path))
        ev = COCOeval(gt, gt.loadRes(records), 'bbox')
        ev.params.catIds = cat_ids
        ev.params.maxDets = list(max_dets)
        if not use_cats:
            ev.params.useCats = 0
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


@pytest.fixture
def coco_case(tmp_path):
    gt_json, dets = make_dataset(np.random.default_rng(0))
    gt_path = tmp_path / 'gt.json'
    gt_path.write_text(json.dumps(gt_json))
    return gt_path, gt_json, dets


def run_evaluator(metric, samples, classes=CLASSES):
    evaluator = Evaluator(metric)
    evaluator.dataset_meta = dict(classes=classes)
    evaluator.process(data_samples=samples)
    return evaluator.evaluate(len(samples))


def test_bbox_equals_direct_cocoeval(coco_case):
    gt_path, _, dets = coco_case
    results = run_evaluator(dict(type=CocoMetric, ann_file=str(gt_path), metric_items=ITEMS), to_samples(dets))
    # MMDetection's configuration: maxDets = proposal_nums, so AP is read at maxDets[2] = 1000.
    ev = direct_cocoeval(gt_path, dets)
    assert list(results) == [f'coco/bbox_{item}' for item in ITEMS]
    for i, item in enumerate(ITEMS):
        assert results[f'coco/bbox_{item}'] == round(float(ev.stats[i]), 3)  # MMDetection's 3 decimals
    assert 0.05 < results['coco/bbox_mAP'] < 0.95   # a non-degenerate case
    # With fewer than 100 detections per image, AP equals plain COCOeval's (maxDets [1, 10, 100]).
    plain = direct_cocoeval(gt_path, dets, max_dets=(1, 10, 100))
    for i in range(6):
        assert results[f'coco/bbox_{ITEMS[i]}'] == round(float(plain.stats[i]), 3)


def test_default_keys_and_classwise(coco_case):
    gt_path, _, dets = coco_case
    metric = CocoMetric(ann_file=str(gt_path), classwise=True)
    metric.dataset_meta = dict(classes=CLASSES)
    metric.process({}, [s.to_dict() for s in to_samples(dets)])
    results = metric.compute_metrics(metric.results)
    ev = direct_cocoeval(gt_path, dets)
    precision = ev.eval['precision']     # (iou, recall, class, area, maxDets)
    assert ev.params.catIds == [1, 3, 7]  # COCOeval sorts the class axis by category id
    for label, name in enumerate(CLASSES):
        p = precision[:, :, ev.params.catIds.index(CAT_IDS[label]), 0, -1]
        expected = p[p > -1].mean() if (p > -1).any() else float('nan')
        if name == 'person':    # no ground truth of this class: COCOeval leaves -1, reported as nan
            assert math.isnan(results['person_precision'])
        else:
            assert results[f'{name}_precision'] == round(expected, 3)
    assert [k for k in results if k.startswith('bbox_')] == [f'bbox_{i}' for i in ITEMS[:6]]


def test_ann_file_none_builds_gt_from_instances(coco_case):
    gt_path, gt_json, dets = coco_case
    from_file = run_evaluator(dict(type=CocoMetric, ann_file=str(gt_path)), to_samples(dets))
    from_samples = run_evaluator(dict(type=CocoMetric), to_samples(dets, with_instances_from=gt_json))
    for key, value in from_file.items():
        assert from_samples[key] == pytest.approx(value, abs=1e-6)   # areas differ by float rounding only
    with pytest.raises(ValueError, match='ann_file'):
        run_evaluator(dict(type=CocoMetric), to_samples(dets))


def test_class_subset_maps_labels_to_its_categories(coco_case):
    gt_path, _, dets = coco_case
    # The user keeps only 'car': label 0 is category 3.
    car_dets = [dict(d, bboxes=d['bboxes'][d['labels'] == 2], scores=d['scores'][d['labels'] == 2],
                     labels=np.zeros(int((d['labels'] == 2).sum()), dtype=int)) for d in dets]
    results = run_evaluator(dict(type=CocoMetric, ann_file=str(gt_path)), to_samples(car_dets), classes=('car',))
    expected = direct_cocoeval(gt_path, [dict(d, labels=np.full(len(d['labels']), 2)) for d in car_dets],
                               cat_ids=[3])
    assert results['coco/bbox_mAP'] == round(float(expected.stats[0]), 3)
    for sort in (False, True):   # labels map by name, whatever the file's category order
        metric = CocoMetric(ann_file=str(gt_path), sort_categories=sort)
        metric.dataset_meta = dict(classes=CLASSES)
        assert metric._label_to_cat_ids(metric._coco_api) == CAT_IDS
    with pytest.raises(ValueError, match='zebra'):
        run_evaluator(dict(type=CocoMetric, ann_file=str(gt_path)), to_samples(car_dets), classes=('car', 'zebra'))


def test_proposal_recall_is_class_agnostic(coco_case):
    gt_path, _, dets = coco_case
    results = run_evaluator(dict(type=CocoMetric, ann_file=str(gt_path), metric='proposal'), to_samples(dets))
    ev = direct_cocoeval(gt_path, dets, use_cats=False)
    for i, item in enumerate(ITEMS[6:], start=6):
        assert results[f'coco/{item}'] == round(float(ev.stats[i]), 3)
    assert set(results) == {f'coco/{item}' for item in ITEMS[6:]}


def test_proposal_fast_by_hand(tmp_path):
    # One image, two gts; proposals by score: IoU with gt1 = 1.0 (best), IoU with gt2 = 0.5, then
    # a perfect box for gt2. Top-1 recalls 1 of 2 gts; top-2 recalls gt2 only at thresholds <= 0.5;
    # top-3 recalls both at every threshold.
    gt_json = dict(images=[dict(id=1, width=100, height=100)], categories=[dict(id=1, name='a')],
                   annotations=[dict(id=1, image_id=1, category_id=1, bbox=[0, 0, 10, 10], area=100, iscrowd=0),
                                dict(id=2, image_id=1, category_id=1, bbox=[50, 50, 20, 10], area=200, iscrowd=0),
                                dict(id=3, image_id=1, category_id=1, bbox=[80, 80, 5, 5], area=25, iscrowd=1)])
    path = tmp_path / 'gt.json'
    path.write_text(json.dumps(gt_json))
    dets = [dict(img_id=1, bboxes=np.array([[0, 0, 10, 10], [50, 50, 60, 60], [50, 50, 70, 60.]]),
                 scores=np.array([0.9, 0.8, 0.7]), labels=np.zeros(3, dtype=int))]
    results = run_evaluator(dict(type=CocoMetric, ann_file=str(path), metric='proposal_fast',
                                 proposal_nums=(1, 2, 3), iou_thrs=[0.5, 0.75]), to_samples(dets), classes=('a',))
    assert results == {'coco/AR@1': pytest.approx(0.5), 'coco/AR@2': pytest.approx(0.75),
                       'coco/AR@3': pytest.approx(1.0)}


def test_no_detections_gives_zeros_with_warning(coco_case):
    gt_path, _, dets = coco_case
    empty = [dict(d, bboxes=np.zeros((0, 4)), scores=np.zeros(0), labels=np.zeros(0, dtype=int)) for d in dets]
    metric = CocoMetric(ann_file=str(gt_path))
    metric.dataset_meta = dict(classes=CLASSES)
    metric.process({}, [s.to_dict() for s in to_samples(empty)])
    with mock.patch.object(MMLogger.get_current_instance(), 'warning') as warning:
        results = metric.compute_metrics(metric.results)
    assert results == {f'bbox_{i}': 0.0 for i in ITEMS[:6]}
    assert 'no detections' in warning.call_args[0][0]


def test_format_only_writes_results_json(coco_case, tmp_path):
    gt_path, _, dets = coco_case
    prefix = tmp_path / 'out' / 'preds'
    prefix.parent.mkdir()
    results = run_evaluator(dict(type=CocoMetric, ann_file=str(gt_path), format_only=True,
                                 outfile_prefix=str(prefix)), to_samples(dets))
    assert results == {}
    records = json.loads((tmp_path / 'out' / 'preds.bbox.json').read_text())
    assert len(records) == sum(len(d['scores']) for d in dets)
    first = records[0]
    box = torch.tensor(dets[0]['bboxes'][0], dtype=torch.float32).double().numpy()
    assert first['image_id'] == 1
    assert first['category_id'] == CAT_IDS[dets[0]['labels'][0]]
    np.testing.assert_allclose(first['bbox'], [box[0], box[1], box[2] - box[0], box[3] - box[1]], rtol=1e-12)
    assert first['score'] == pytest.approx(dets[0]['scores'][0], rel=1e-6)
    with pytest.raises(ValueError, match='outfile_prefix'):
        CocoMetric(ann_file=str(gt_path), format_only=True)
    with pytest.raises(AssertionError):  # what MMDetection raises there
        CocoMetric(ann_file=str(gt_path), format_only=True)


def test_iou_thrs_kept_as_given(coco_case):
    """MMDetection keeps ``iou_thrs`` as passed (a list stays that list); evaluating at [0.5] alone gives
    mAP = the default run's mAP_50, and a float 0.5 the same."""
    gt_path, _, dets = coco_case
    metric = CocoMetric(ann_file=str(gt_path), iou_thrs=[0.5, 0.75])
    assert metric.iou_thrs == [0.5, 0.75] and isinstance(metric.iou_thrs, list)
    assert CocoMetric(iou_thrs=0.5).iou_thrs == 0.5
    default = CocoMetric()
    np.testing.assert_allclose(default.iou_thrs, np.arange(10) * 0.05 + 0.5)
    full = run_evaluator(dict(type=CocoMetric, ann_file=str(gt_path)), to_samples(dets))
    for thrs in ([0.5], 0.5):
        at_50 = run_evaluator(dict(type=CocoMetric, ann_file=str(gt_path), iou_thrs=thrs), to_samples(dets))
        assert at_50['coco/bbox_mAP'] == pytest.approx(full['coco/bbox_mAP_50'], abs=1e-9)


def test_default_coco_classes_over_a_file_defining_some(tmp_path):
    """As CocoDataset loads it: the 80 COCO classes over a file defining only person (1) and dog (18).
    Exact person (label 0) and dog (label 16) detections give mAP 1; a 'car' (label 2) detection has no
    category in the file and is left out instead of failing the evaluation."""
    from rcnn_plugins.datasets import COCO_CLASSES
    gt_json = dict(images=[dict(id=1, width=100, height=100)],
                   categories=[dict(id=18, name='dog'), dict(id=1, name='person')],
                   annotations=[dict(id=1, image_id=1, category_id=1, bbox=[10, 10, 30, 40], area=1200, iscrowd=0),
                                dict(id=2, image_id=1, category_id=18, bbox=[50, 50, 40, 30], area=1200, iscrowd=0)])
    path = tmp_path / 'gt.json'
    path.write_text(json.dumps(gt_json))
    dets = [dict(img_id=1, bboxes=np.array([[10, 10, 40, 50], [50, 50, 90, 80], [0, 0, 20, 20.]]),
                 scores=np.array([0.9, 0.8, 0.95]), labels=np.array([0, 16, 2]))]
    results = run_evaluator(dict(type=CocoMetric, ann_file=str(path)), to_samples(dets), classes=COCO_CLASSES)
    assert results['coco/bbox_mAP_50'] == 1.0   # exactly: rounded as MMDetection (not 0.9999999999999998)
    assert results['coco/bbox_mAP'] == 1.0
    with pytest.raises(ValueError, match='car'):  # a user's own class list must be defined in full
        run_evaluator(dict(type=CocoMetric, ann_file=str(path)), to_samples(dets), classes=('person', 'car'))
