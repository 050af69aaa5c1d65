"""CrowdHumanDataset on an .odgt written here (ignore regions, named errors) and CrowdHumanMetric's
AP, MR^-2 and JI on a hand case worked out in the comments."""
import json

import cv2
import numpy as np
import pytest
import torch

from rcnn_plugins.datasets import CrowdHumanDataset, DatasetError
from rcnn_plugins.evaluation.metrics import CrowdHumanMetric


def box(x1, y1, x2, y2):
    return [x1, y1, x2 - x1, y2 - y1]


RECORDS = [
    dict(ID='A', gtboxes=[dict(tag='person', fbox=box(0, 0, 10, 20), hbox=box(2, 0, 8, 5), vbox=box(0, 0, 10, 20)),
                          dict(tag='person', fbox=box(50, 50, 60, 70), hbox=box(52, 50, 58, 55),
                               vbox=box(50, 50, 60, 70)),
                          dict(tag='mask', fbox=box(80, 0, 100, 40), hbox=box(80, 0, 100, 40),
                               vbox=box(80, 0, 100, 40))]),
    dict(ID='B', gtboxes=[dict(tag='person', fbox=box(10, 10, 30, 50), hbox=box(15, 10, 25, 18),
                               vbox=box(10, 10, 30, 50)),
                          dict(tag='person', fbox=box(70, 10, 80, 30), hbox=box(72, 10, 78, 15),
                               vbox=box(70, 10, 80, 30)),
                          dict(tag='person', fbox=box(0, 60, 10, 90), hbox=box(0, 60, 10, 65),
                               vbox=box(0, 60, 10, 90), extra=dict(ignore=1))]),
]
# A: d1 = P1 (TP), d2 near P1 after it was taken (FP), d3 inside the mask region (ignored), d4 = P2 (TP).
# B: d5 = P3 (TP), d6 on background (FP); P4 missed; the third box of B is an ignore (extra.ignore).
DETS = {'A': [[0, 0, 10, 20, 0.9], [1, 0, 11, 20, 0.8], [85, 5, 95, 30, 0.7], [50, 50, 60, 70, 0.6]],
        'B': [[10, 10, 30, 50, 0.85], [60, 60, 70, 70, 0.5]]}


@pytest.fixture
def odgt(tmp_path):
    (tmp_path / 'Images').mkdir()
    for rec in RECORDS:
        cv2.imwrite(str(tmp_path / 'Images' / f'{rec["ID"]}.jpg'), np.zeros((100, 100, 3), np.uint8))
    path = tmp_path / 'annotation_val.odgt'
    path.write_text('\n'.join(json.dumps(r) for r in RECORDS) + '\n')
    return tmp_path, path


def test_dataset_ignore_boxes_and_errors(odgt):
    root, path = odgt
    ds = CrowdHumanDataset(data_root=str(root), ann_file=path.name, data_prefix=dict(img='Images/'), pipeline=[])
    a, b = ds[0], ds[1]
    assert (a['height'], a['width']) == (100, 100)        # from the image header
    assert [i['ignore_flag'] for i in a['instances']] == [0, 0, 1] and a['instances'][2]['bbox_label'] == -1
    assert [i['ignore_flag'] for i in b['instances']] == [0, 0, 1]   # extra.ignore
    assert a['instances'][0]['bbox'] == [0, 0, 10, 20] and a['instances'][0]['hbox'] == [2, 0, 8, 5]
    (root / 'bad.odgt').write_text(json.dumps(RECORDS[0]) + '\n{"ID": "B", "gtboxes": [{"tag": "person"}]}\n')
    with pytest.raises(DatasetError, match=r'bad.odgt:2 \(ID B, gtboxes\[0\]\).*fbox'):
        CrowdHumanDataset(data_root=str(root), ann_file='bad.odgt', data_prefix=dict(img='Images/'))
    (root / 'bad2.odgt').write_text('{"ID": "A", "gtboxes": [}\n')
    with pytest.raises(DatasetError, match='bad2.odgt:1: not a json record'):
        CrowdHumanDataset(data_root=str(root), ann_file='bad2.odgt', data_prefix=dict(img='Images/'))


def run(ann, metric):
    m = CrowdHumanMetric(ann_file=str(ann), metric=metric)
    samples = []
    for img_id, dets in DETS.items():
        d = torch.tensor(dets, dtype=torch.float64)
        samples.append(dict(img_id=img_id, ori_shape=(100, 100),
                            pred_instances=dict(bboxes=d[:, :4], scores=d[:, 4])))
    m.process({}, samples)
    return m.compute_metrics(m.results)


def test_ap_mr_ji_by_hand(odgt):
    _, ann = odgt
    out = run(ann, ['AP', 'MR', 'JI'])
    # Ranked: .9 TP, .85 TP, .8 FP, .6 TP, .5 FP (the .7 box is ignored); 4 persons.
    # recall 1/4, 2/4, 2/4, 3/4, 3/4; precision 1, 1, 2/3, 3/4, 3/5.
    # AP = trapezoids: (1/4)(1 + 1)/2 + 0 + (1/4)(2/3 + 3/4)/2 + 0 = 41/96.
    assert out['mAP'] == round(41 / 96, 4)
    # FPPI (2 images) 0, 0, .5, .5, 1; miss rate 3/4, 1/2, 1/2, 1/4, 1/4. The 7 references up to 0.316
    # read the first point with FPPI >= ref: miss 1/2; 0.562 and 1.0: miss 1/4.
    assert out['mMR'] == round(0.5 ** (7 / 9) * 0.25 ** (2 / 9), 4)
    # JI, best at t = 0.5: A: 4 boxes, 2 matched, the mask box ignored: 2 / (2 + 3 - 2);
    # B: only the .85 box: 1 / (2 + 1 - 1); mean (2/3 + 1/2) / 2 = 7/12 (t = 0: B 1/3, mean 1/2).
    assert out['JI'] == round(7 / 12, 4)


def test_metric_arguments(odgt, tmp_path):
    _, ann = odgt
    with pytest.raises(KeyError, match='metric'):
        CrowdHumanMetric(ann_file=str(ann), metric='mAP')
    with pytest.raises(AssertionError):
        CrowdHumanMetric(ann_file=str(ann), format_only=True)
    with pytest.raises(NotImplementedError, match='head boxes'):
        CrowdHumanMetric(ann_file=str(ann), eval_mode=2)
    m = CrowdHumanMetric(ann_file=str(ann), format_only=True, outfile_prefix=str(tmp_path / 'res'))
    m.process({}, [dict(img_id='A', ori_shape=(100, 100),
                        pred_instances=dict(bboxes=torch.tensor([[1., 2., 11., 22.]]), scores=torch.tensor([.5])))])
    assert m.compute_metrics(m.results) == {}
    rec = json.load(open(tmp_path / 'res.json'))[0]
    assert rec['ID'] == 'A' and rec['dtboxes'][0]['box'] == [1., 2., 10., 20.] and rec['dtboxes'][0]['tag'] == 1
