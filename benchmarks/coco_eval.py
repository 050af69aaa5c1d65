"""COCO evaluation speed: ``CocoMetric`` with each backend on one synthetic COCO-sized case.

``synthetic_coco`` writes a COCO-like ground truth (80 categories, ~7 objects per image with COCO's
mix of small / medium / large boxes, 1 % crowd) and detections that jitter the objects plus random
false positives, ``dets_per_image`` per image. ``time_backends`` runs the same detections through
``CocoMetric(backend=...)`` for each backend and reports the wall time of ``evaluate`` (results
json, COCOeval evaluate / accumulate / summarize) and the metrics, which must be equal.
"""
import json
import os.path as osp
import time
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch
from mmengine.structures import InstanceData

from rcnn_plugins.structures import DetDataSample

NUM_CLASSES = 80


def synthetic_coco(out_dir: str, num_images: int = 5000, dets_per_image: int = 100, seed: int = 0
                   ) -> Tuple[str, List[DetDataSample], Tuple[str, ...]]:
    """Write ``out_dir/gt.json``; return its path, one predicted ``DetDataSample`` per image
    (boxes xyxy in pixels of a 640x480 image) and the class names (label i = category id i + 1)."""
    rng = np.random.default_rng(seed)
    classes = tuple(f'class_{i}' for i in range(NUM_CLASSES))
    images, anns, samples = [], [], []
    for img_id in range(1, num_images + 1):
        images.append(dict(id=img_id, width=640, height=480, file_name=f'{img_id:06d}.jpg'))
        n = int(rng.integers(1, 14))
        # COCO: ~41 % small (< 32^2), 34 % medium, 24 % large objects.
        kind = rng.choice(3, n, p=[.41, .35, .24])
        side = rng.uniform(np.array([8., 32, 96])[kind], np.array([32., 96, 400])[kind])
        w = side * rng.uniform(0.6, 1.4, n)
        h = side * rng.uniform(0.6, 1.4, n)
        x = rng.uniform(0, 1, n) * np.maximum(640 - w, 1)
        y = rng.uniform(0, 1, n) * np.maximum(480 - h, 1)
        labels = rng.integers(0, NUM_CLASSES, n)
        for k in range(n):
            anns.append(dict(id=len(anns) + 1, image_id=img_id, category_id=int(labels[k]) + 1,
                             bbox=[float(x[k]), float(y[k]), float(w[k]), float(h[k])], area=float(w[k] * h[k]),
                             iscrowd=int(rng.uniform() < 0.01)))
        # Detections: 2 jittered copies of each object (sometimes the wrong class), the rest random.
        gt_xyxy = np.stack([x, y, x + w, y + h], 1)
        hits = np.repeat(gt_xyxy, 2, 0) + rng.normal(0, 1, (2 * n, 4)) * np.repeat(side, 2)[:, None] * 0.1
        hit_labels = np.where(rng.uniform(size=2 * n) < 0.8, np.repeat(labels, 2), rng.integers(0, NUM_CLASSES, 2 * n))
        m = dets_per_image - 2 * n
        fx, fy = rng.uniform(0, 600, m), rng.uniform(0, 440, m)
        false = np.stack([fx, fy, fx + rng.uniform(4, 200, m), fy + rng.uniform(4, 200, m)], 1)
        boxes = np.concatenate([hits, false])[:dets_per_image]
        det_labels = np.concatenate([hit_labels, rng.integers(0, NUM_CLASSES, m)])[:dets_per_image]
        scores = np.concatenate([rng.uniform(0.3, 1, 2 * n), rng.uniform(0.01, 0.6, m)])[:dets_per_image]
        s = DetDataSample(metainfo=dict(img_id=img_id, ori_shape=(480, 640), img_path=f'{img_id:06d}.jpg'))
        s.pred_instances = InstanceData(bboxes=torch.from_numpy(boxes).float(), scores=torch.from_numpy(scores).float(),
                                        labels=torch.from_numpy(det_labels))
        samples.append(s)
    categories = [dict(id=i + 1, name=name) for i, name in enumerate(classes)]
    gt_path = osp.join(out_dir, 'gt.json')
    with open(gt_path, 'w') as f:
        json.dump(dict(images=images, annotations=anns, categories=categories), f)
    return gt_path, samples, classes


def evaluate(backend: str, gt_path: str, samples: Sequence[DetDataSample], classes: Sequence[str]
             ) -> Tuple[Dict[str, float], float]:
    """``CocoMetric(backend=backend)`` over ``samples``; returns (metrics, seconds of ``evaluate``)."""
    from mmengine.evaluator import Evaluator

    from rcnn_plugins.evaluation import CocoMetric
    evaluator = Evaluator(dict(type=CocoMetric, ann_file=gt_path, backend=backend))
    evaluator.dataset_meta = dict(classes=tuple(classes))
    evaluator.process(data_samples=samples)
    start = time.perf_counter()
    metrics = evaluator.evaluate(len(samples))
    return metrics, time.perf_counter() - start


def time_backends(out_dir: str, num_images: int = 5000, dets_per_image: int = 100,
                  backends: Sequence[str] = ('pycocotools', 'faster_coco_eval'), log=print) -> dict:
    """Both backends on one synthetic case: seconds per backend, metrics, and whether they agree."""
    start = time.perf_counter()
    gt_path, samples, classes = synthetic_coco(out_dir, num_images, dets_per_image)
    log(f'synthetic case: {num_images} images, {dets_per_image} detections each '
        f'({time.perf_counter() - start:.1f} s to build)')
    result = dict(num_images=num_images, dets_per_image=dets_per_image, seconds={}, metrics={})
    for backend in backends:
        metrics, seconds = evaluate(backend, gt_path, samples, classes)
        result['seconds'][backend] = round(seconds, 2)
        result['metrics'][backend] = metrics
        log(f'{backend:<18} {seconds:8.2f} s   mAP {metrics["coco/bbox_mAP"]:.4f}')
    values = list(result['metrics'].values())
    result['equal'] = all(v == values[0] for v in values[1:])
    return result
