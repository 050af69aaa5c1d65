"""COCO error analysis on a hand case (a loose box, a poor box, similar-class and other-class
confusions, a background detection, a missed object): the seven curves against COCOeval run here
with the matching settings, the AP of each on the easy classes by hand, the tool's PNGs."""
import copy
import json
import os.path as osp

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from rcnn_plugins.analysis.coco_error_analysis import analyze_results
from repo_paths import REPO_ROOT

REPO = REPO_ROOT
CATS = [dict(id=1, name='cat', supercategory='animal'), dict(id=2, name='dog', supercategory='animal'),
        dict(id=3, name='car', supercategory='vehicle')]
# image 1: cat A [10,10,20x20], dog [60,10,20x20], car [10,60,20x20]; image 2: cat B [30,30,20x20] (missed).
GTS = [(1, 1, [10, 10, 20, 20]), (2, 1, [60, 10, 20, 20]), (3, 1, [10, 60, 20, 20]), (1, 2, [30, 30, 20, 20])]
DETS = [
    dict(image_id=1, category_id=1, bbox=[14, 10, 20, 20], score=0.7),   # cat A at IoU 16/24 = 0.67: C50, not C75
    dict(image_id=1, category_id=2, bbox=[60, 10, 20, 20], score=0.8),   # dog: exact
    dict(image_id=1, category_id=2, bbox=[10, 10, 20, 20], score=0.9),   # dog on cat A: similar-class confusion
    dict(image_id=1, category_id=3, bbox=[10, 60, 20, 20], score=0.9),   # car: exact
    dict(image_id=1, category_id=3, bbox=[10, 10, 20, 20], score=0.95),  # car on cat A: other-class confusion
    dict(image_id=2, category_id=1, bbox=[80, 80, 15, 15], score=0.6),   # cat on background
    dict(image_id=1, category_id=1, bbox=[60, 60, 8, 8], score=0.65),    # cat on background
]


@pytest.fixture
def files(tmp_path):
    gt = dict(images=[dict(id=1, width=100, height=100, file_name='1.jpg'),
                      dict(id=2, width=100, height=100, file_name='2.jpg')],
              annotations=[dict(id=i + 1, category_id=c, image_id=img, bbox=b, area=b[2] * b[3], iscrowd=0)
                           for i, (c, img, b) in enumerate(GTS)], categories=CATS)
    ann, res = tmp_path / 'gt.json', tmp_path / 'res.json'
    ann.write_text(json.dumps(gt))
    res.write_text(json.dumps(DETS))
    return str(res), str(ann), tmp_path


def cocoeval_precision(gt_dataset, dets, iou_thrs, cat_ids=None):
    gt = COCO()
    gt.dataset = copy.deepcopy(gt_dataset)
    gt.createIndex()
    dt = gt.loadRes(copy.deepcopy(dets))
    ev = COCOeval(gt, dt, 'bbox')
    ev.params.iouThrs = np.array(iou_thrs)
    ev.params.maxDets = [100]
    ev.params.areaRng = [[0, 1e10], [0, 1024], [1024, 9216], [9216, 1e10]]
    if cat_ids is not None:
        ev.params.catIds = cat_ids
    ev.evaluate()
    ev.accumulate()
    p = ev.eval['precision'].copy()
    p[p == -1] = 0
    return p


def test_breakdown_against_cocoeval_and_by_hand(files):
    res, ann, out = files
    ps = analyze_results(res, ann, out_dir=str(out / 'plots'))['bbox']
    assert ps.shape == (7, 101, 3, 4, 1)
    gt_dataset = json.load(open(ann))
    # C75, C50, Loc: plain COCOeval at IoU .75 / .5 / .1.
    np.testing.assert_array_equal(ps[:3], cocoeval_precision(gt_dataset, DETS, [0.75, 0.5, 0.1]))
    # Sim / Oth: COCOeval of one class's detections with the forgiven classes' boxes made crowd
    # regions of that class (MMDetection's recipe), here written out per class.
    for k, cat in enumerate(CATS):
        dets = [d for d in DETS if d['category_id'] == cat['id']]
        for row, forgiven in ((3, {c['id'] for c in CATS if c['supercategory'] == cat['supercategory']}),
                              (4, {c['id'] for c in CATS})):
            gt = copy.deepcopy(gt_dataset)
            for a in gt['annotations']:
                if a['category_id'] in forgiven - {cat['id']}:
                    a.update(ignore=1, iscrowd=1, category_id=cat['id'])
            expected = cocoeval_precision(gt, dets, [0.1], cat_ids=[cat['id']])[0, :, 0]
            np.testing.assert_array_equal(ps[row, :, k], expected)
    np.testing.assert_array_equal(ps[5], ps[4] > 0)
    assert (ps[6] == 1).all()

    ap = ps[..., 0, 0].mean(axis=1)   # (7, K): AP of each curve, all areas
    # car: the wrong-class box (0.95) ranks above the true one: precision 1/2 at recall 1 -> AP 0.5
    # until other-class confusion is forgiven (Oth: 1.0); 'Sim' does not forgive a cat/car mix-up.
    np.testing.assert_allclose(ap[:, 2], [0.5, 0.5, 0.5, 0.5, 1.0, 1.0, 1.0])
    # dog: the same with a similar class (cat, both animals): forgiven from Sim on.
    np.testing.assert_allclose(ap[:, 1], [0.5, 0.5, 0.5, 1.0, 1.0, 1.0, 1.0])
    # cat: A found at IoU 0.67 (not C75), B missed: recall <= 0.5; the 0.7 box ranks first, so
    # precision 1 up to recall 0.5: 51 of the 101 recall points.
    np.testing.assert_allclose(ap[:, 0], [0, 51 / 101, 51 / 101, 51 / 101, 51 / 101, 51 / 101, 1.0])
    # Plots with MMDetection's names.
    for name in ('bbox-cat-allarea.png', 'bbox-allclass-allarea.png', 'bbox-car-small.png'):
        assert osp.getsize(out / 'plots' / 'bbox' / name) > 1000


def test_tool_and_errors(files, capsys):
    res, ann, out = files
    from rcnn_plugins.cli.analysis_tools import coco_error_analysis_main
    assert 'coco_error_analysis_main' in open(osp.join(REPO, 'tools', 'analysis_tools', 'coco_error_analysis.py')).read()
    coco_error_analysis_main([res, str(out / 'tool'), '--ann', ann, '--extraplots'])
    assert 'C75 0.333' in capsys.readouterr().out   # mean over the 3 classes: (0 + 0.5 + 0.5) / 3
    with pytest.raises(SystemExit):
        coco_error_analysis_main([res, str(out / 'tool'), '--ann', str(out / 'missing.json')])
    assert 'annotation file' in capsys.readouterr().err
    for name in ('bbox-allclass-ap bar plot.png', 'number of annotations per area group.png',
                 'gt annotation areas histogram plot.png'):
        assert osp.isfile(out / 'tool' / 'bbox' / name)
    with pytest.raises(ValueError, match="only 'bbox'"):
        analyze_results(res, ann, ['segm'])
    with pytest.raises(FileNotFoundError, match='annotation file'):
        analyze_results(res, str(out / 'missing.json'))
