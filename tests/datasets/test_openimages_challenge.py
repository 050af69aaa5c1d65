"""OpenImagesChallengeDataset on challenge-format files written here (txt boxes, ``MID,name,id`` labels,
.npy class tree, metas pickle): the same two images as the v6 csv test, so OpenImagesMetric gives the
same hand-computed mAP; malformed files give errors naming the file and line."""
import pickle

import cv2
import numpy as np
import pytest
import torch

from rcnn_plugins.datasets import DatasetError, OpenImagesChallengeDataset
from rcnn_plugins.evaluation.metrics import OpenImagesMetric

# img1: a cat [10,10,30,30]; a group of dogs [50,50,90,90]. img2: a dog [0,0,40,40]. Images 100 wide x 80 high.
BOXES = ['img1.jpg', '100 80', '2', '2 0.1 0.125 0.3 0.375 0', '3 0.5 0.625 0.9 1.125 1',
         'img2.jpg', '100 80', '1', '3 0.0 0.0 0.4 0.5 0']
# Label ids out of file order: classes follow the ids (Animal 1, Cat 2, Dog 3).
LABELS = '/m/dog,Dog,3\n/m/animal,Animal,1\n/m/cat,Cat,2\n'
# Row/column 0 is the root; [c, p] = 1 where p is c or its ancestor.
TREE = np.array([[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 0, 1]], dtype=np.float64)


def write(root, boxes=BOXES, labels=LABELS, tree=TREE, metas=None):
    (root / 'images').mkdir(exist_ok=True)
    for name in ('img1', 'img2'):
        cv2.imwrite(str(root / 'images' / f'{name}.jpg'), np.zeros((80, 100, 3), np.uint8))
    (root / 'boxes.txt').write_text('\n'.join(boxes) + '\n')
    (root / 'labels.csv').write_text(labels)
    with open(root / 'tree.npy', 'wb') as f:
        np.save(f, tree)
    metas = metas or [dict(filename=f'images/{n}.jpg', ori_shape=(80, 100, 3)) for n in ('img1', 'img2')]
    (root / 'metas.pkl').write_bytes(pickle.dumps(metas))
    (root / 'image_labels.csv').write_text('ImageID,LabelName,Confidence\nimg2,/m/dog,1\n')


def build(root, **kw):
    args = dict(data_root=str(root), ann_file='boxes.txt', label_file='labels.csv', hierarchy_file='tree.npy',
                meta_file='metas.pkl', image_level_ann_file='image_labels.csv', data_prefix=dict(img='images/'),
                pipeline=[])
    return OpenImagesChallengeDataset(**dict(args, **kw))


def test_challenge_files(tmp_path):
    write(tmp_path)
    ds = build(tmp_path)
    assert ds.metainfo['classes'] == ('Animal', 'Cat', 'Dog')
    assert ds.metainfo['dataset_type'] == 'oid_challenge'
    np.testing.assert_array_equal(ds.metainfo['RELATION_MATRIX'], [[1, 0, 0], [1, 1, 0], [1, 0, 1]])
    first = ds[0]
    assert first['img_id'] == 'img1' and (first['height'], first['width']) == (80, 100)
    assert first['instances'][0]['bbox'] == pytest.approx([10, 10, 30, 30])  # x by width, y by height
    assert first['instances'][1]['bbox'] == pytest.approx([50, 50, 90, 90])
    assert [i['bbox_label'] for i in first['instances']] == [1, 2]          # 1-based ids -> 0-based labels
    assert [i['is_group_of'] for i in first['instances']] == [False, True]
    assert ds[1]['image_level_labels'].tolist() == [2] and ds[0]['image_level_labels'].tolist() == []
    assert ds[1]['confidences'].tolist() == [1.0]


def test_metric_matches_the_v6_hand_case(tmp_path):
    write(tmp_path)
    ds = build(tmp_path)
    dets = {'img1': [([10, 10, 30, 30], 0.9, 1), ([55, 55, 70, 70], 0.8, 2), ([60, 60, 85, 85], 0.7, 2),
                     ([60, 60, 85, 85], 0.6, 1)],
            'img2': [([0, 0, 40, 40], 0.95, 2), ([0, 0, 40, 40], 0.92, 1)]}
    metric = OpenImagesMetric()
    metric.dataset_meta = ds.metainfo
    samples = []
    for i in range(len(ds)):
        info, d = ds[i], dets[ds[i]['img_id']]
        samples.append(dict(instances=info['instances'], image_level_labels=info.get('image_level_labels'),
                            pred_instances=dict(bboxes=torch.tensor([x[0] for x in d], dtype=torch.float32),
                                                scores=torch.tensor([x[1] for x in d]),
                                                labels=torch.tensor([x[2] for x in d]))))
    metric.process({}, samples)
    # Cat AP 1, Dog AP 1 (the group-of box counts once), Animal AP 5/6 (see the v6 test): mAP 17/18.
    assert metric.compute_metrics(metric.results)['mAP'] == pytest.approx(17 / 18, abs=1e-3)


def test_bad_files_name_file_and_line(tmp_path):
    write(tmp_path)
    with pytest.raises(DatasetError, match='.txt file'):
        build(tmp_path, ann_file='boxes.csv')
    with pytest.raises(DatasetError, match='meta_file is required'):
        build(tmp_path, meta_file=None)
    write(tmp_path, boxes=BOXES[:3] + ['2 0.1 0.1 0.3'] + BOXES[4:])
    with pytest.raises(DatasetError, match=r'boxes.txt:4: expected "label x1 y1 x2 y2 is_group_of"'):
        build(tmp_path)
    write(tmp_path, boxes=BOXES[:3] + ['9 0.1 0.1 0.3 0.3 0'] + BOXES[4:])
    with pytest.raises(DatasetError, match=r'boxes.txt:4: label 9 outside 1..3'):
        build(tmp_path)
    write(tmp_path, labels='/m/animal,Animal\n')
    with pytest.raises(DatasetError, match=r'labels.csv:1: expected "MID,name,id"'):
        build(tmp_path)
    write(tmp_path, tree=np.eye(3))
    with pytest.raises(DatasetError, match=r'class tree of shape \(3, 3\), expected \(4, 4\)'):
        build(tmp_path)
    write(tmp_path, metas=[dict(filename='images/img2.jpg', ori_shape=(80, 100, 3)),
                           dict(filename='images/img1.jpg', ori_shape=(80, 100, 3))])
    with pytest.raises(DatasetError, match='same order needed'):
        build(tmp_path)
