"""CocoMetric(backend='faster_coco_eval') returns exactly pycocotools' numbers (all 12 items and
the per-class APs) on a synthetic COCO-like case with crowd boxes and all three area ranges."""
import pytest

from benchmarks.coco_eval import synthetic_coco
from rcnn_plugins.evaluation import CocoMetric

pytest.importorskip('faster_coco_eval', reason="backend='faster_coco_eval' needs the faster-coco-eval package")

ITEMS = ['mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l',
         'AR@100', 'AR@300', 'AR@1000', 'AR_s@1000', 'AR_m@1000', 'AR_l@1000']


def _run(backend, gt_path, samples, classes, **kwargs):
    from mmengine.evaluator import Evaluator
    evaluator = Evaluator(dict(type=CocoMetric, ann_file=gt_path, backend=backend, **kwargs))
    evaluator.dataset_meta = dict(classes=classes)
    evaluator.process(data_samples=samples)
    return evaluator.evaluate(len(samples))


@pytest.mark.parametrize('dets_per_image', [30, 150])  # 150: more than 100, so maxDets matters
def test_faster_coco_eval_equals_pycocotools(tmp_path, dets_per_image):
    gt_path, samples, classes = synthetic_coco(str(tmp_path), num_images=40, dets_per_image=dets_per_image)
    ref = _run('pycocotools', gt_path, samples, classes, metric_items=ITEMS, classwise=True)
    fast = _run('faster_coco_eval', gt_path, samples, classes, metric_items=ITEMS, classwise=True)
    assert list(fast) == list(ref)
    assert 0.05 < ref['coco/bbox_mAP'] < 0.95 and ref['coco/bbox_mAP_s'] > 0 and ref['coco/bbox_mAP_l'] > 0
    for key in ref:
        assert fast[key] == pytest.approx(ref[key], abs=1e-12, nan_ok=True), key


def test_proposal_metric_equal(tmp_path):
    gt_path, samples, classes = synthetic_coco(str(tmp_path), num_images=20, dets_per_image=120)
    ref = _run('pycocotools', gt_path, samples, classes, metric='proposal')
    fast = _run('faster_coco_eval', gt_path, samples, classes, metric='proposal')
    assert ref == pytest.approx(fast, abs=1e-12)


def test_unknown_backend():
    with pytest.raises(ValueError, match="backend must be 'pycocotools' or 'faster_coco_eval'"):
        CocoMetric(backend='cocoapi')
