"""OpenImagesDataset on csv / json files written here and OpenImagesMetric on a hand case with a
group-of box, a parent class (Animal over Cat and Dog) and image-level labels."""
import json

import cv2
import numpy as np
import pytest
import torch

from rcnn_plugins.datasets import DatasetError, OpenImagesDataset
from rcnn_plugins.evaluation.metrics import OpenImagesMetric

HEADER = 'ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,IsOccluded,IsTruncated,IsGroupOf,IsDepiction,IsInside'
# img1: a cat [10,10,30,30]; a group of dogs [50,50,90,90]. img2: a dog [0,0,40,40]. Images 100 x 100.
ROWS = ['img1,xclick,/m/cat,1,0.1,0.3,0.1,0.3,0,0,0,0,0',
        'img1,xclick,/m/dog,1,0.5,0.9,0.5,0.9,0,0,1,0,0',
        'img2,xclick,/m/dog,1,0.0,0.4,0.0,0.4,1,0,0,0,0']
HIERARCHY = {'LabelName': '/m/root', 'Subcategory': [
    {'LabelName': '/m/animal', 'Subcategory': [{'LabelName': '/m/cat'}, {'LabelName': '/m/dog'}]}]}


@pytest.fixture
def oid(tmp_path):
    (tmp_path / 'images').mkdir()
    for name in ('img1', 'img2'):
        cv2.imwrite(str(tmp_path / 'images' / f'{name}.jpg'), np.zeros((100, 100, 3), np.uint8))
    (tmp_path / 'ann.csv').write_text('\n'.join([HEADER] + ROWS) + '\n')
    (tmp_path / 'labels.csv').write_text('/m/animal,Animal\n/m/cat,Cat\n/m/dog,Dog\n')
    (tmp_path / 'hierarchy.json').write_text(json.dumps(HIERARCHY))
    (tmp_path / 'image_labels.csv').write_text('ImageID,Source,LabelName,Confidence\nimg2,verification,/m/dog,1\n')
    return OpenImagesDataset(data_root=str(tmp_path), ann_file='ann.csv', label_file='labels.csv', meta_file=None,
                             hierarchy_file='hierarchy.json', image_level_ann_file='image_labels.csv',
                             data_prefix=dict(img='images/'), pipeline=[])


def test_dataset(oid, tmp_path):
    assert oid.metainfo['classes'] == ('Animal', 'Cat', 'Dog')
    # Cat and Dog have Animal as parent: rows cat / dog have a 1 in the Animal column.
    np.testing.assert_array_equal(oid.metainfo['RELATION_MATRIX'], [[1, 0, 0], [1, 1, 0], [1, 0, 1]])
    first = oid[0]
    assert first['instances'][0]['bbox'] == pytest.approx([10, 10, 30, 30])   # normalised x the image size
    assert [i['is_group_of'] for i in first['instances']] == [False, True]
    assert oid[1]['image_level_labels'].tolist() == [2] and oid[1]['instances'][0]['is_occluded']
    (tmp_path / 'bad.csv').write_text(HEADER + '\nimg1,xclick,/m/unicorn,1,0,1,0,1,0,0,0,0,0\n')
    with pytest.raises(DatasetError, match=r"bad.csv:2: label '/m/unicorn' is not in"):
        OpenImagesDataset(data_root=str(tmp_path), ann_file='bad.csv', label_file='labels.csv', meta_file=None,
                          hierarchy_file='hierarchy.json', data_prefix=dict(img='images/'))


DETS = {  # label: Animal 0, Cat 1, Dog 2
    'img1': [([10, 10, 30, 30], 0.9, 1),      # the cat
             ([55, 55, 70, 70], 0.8, 2),      # two dogs inside the group-of box
             ([60, 60, 85, 85], 0.7, 2),
             ([60, 60, 85, 85], 0.6, 1)],     # a 'cat' inside the dog group: a cat false positive
    'img2': [([0, 0, 40, 40], 0.95, 2),       # the dog
             ([0, 0, 40, 40], 0.92, 1)],      # a 'cat': img2 is not annotated with Cat -> dropped
}


def evaluate(oid, **kwargs):
    metric = OpenImagesMetric(**kwargs)
    metric.dataset_meta = oid.metainfo
    samples = []
    for i in range(len(oid)):
        info = oid[i]
        dets = DETS[info['img_id']]
        samples.append(dict(instances=info['instances'], image_level_labels=info.get('image_level_labels'),
                            pred_instances=dict(bboxes=torch.tensor([d[0] for d in dets], dtype=torch.float32),
                                                scores=torch.tensor([d[1] for d in dets]),
                                                labels=torch.tensor([d[2] for d in dets]))))
    metric.process({}, samples)
    return metric.compute_metrics(metric.results)


def test_group_of_and_hierarchy_by_hand(oid):
    # Cat: .9 TP, .6 FP -> AP 1. Dog: .95 TP; the .8 and .7 boxes inside the group-of box count as
    # one TP (score .8) -> AP 1. Animal (every box also an Animal box, every detection also an
    # Animal detection where the image has Animal): .95 TP, .92 FP (the dropped cat's Animal copy,
    # MMDetection's order of expansion then filtering), .9 TP, group TP .8 -> envelope 1, 3/4, 3/4
    # over recall thirds: AP 5/6. mAP (1 + 1 + 5/6) / 3 = 17/18.
    out = evaluate(oid)
    assert out['AP50'] == round(17 / 18, 3)
    assert out['mAP'] == pytest.approx(17 / 18)
    # Without group-of: the dog group box is an ordinary box the .8/.7 boxes miss (IoU .14 / .39):
    # Dog .95 TP, .8 FP, .7 FP -> 1/2; Animal .95 T, .92 F, .9 T, then 3 misses: 1/3 + 1/3 * 2/3 = 5/9.
    out = evaluate(oid, use_group_of=False)
    assert out['mAP'] == pytest.approx((1 + 0.5 + 5 / 9) / 3)


def test_metric_needs_the_hierarchy():
    metric = OpenImagesMetric()
    metric.dataset_meta = dict(classes=('a',))
    with pytest.raises(KeyError, match='RELATION_MATRIX'):
        metric.process({}, [dict(instances=[], pred_instances=dict(bboxes=torch.zeros(0, 4), scores=torch.zeros(0),
                                                                   labels=torch.zeros(0, dtype=torch.long)))])


def test_image_sizes_from_meta_file(oid, tmp_path):
    """With meta_file the sizes come from MMDetection's pickle (not the images): boxes scale by them;
    a meta naming another image, in the annotations' order, is an error naming both."""
    import pickle
    metas = [dict(filename='images/img1.jpg', ori_shape=(200, 400, 3)), dict(filename='images/img2.jpg',
                                                                              ori_shape=(100, 100, 3))]
    (tmp_path / 'metas.pkl').write_bytes(pickle.dumps(metas))
    kwargs = dict(data_root=str(tmp_path), ann_file='ann.csv', label_file='labels.csv', hierarchy_file='hierarchy.json',
                  data_prefix=dict(img='images/'), pipeline=[])
    first = OpenImagesDataset(meta_file='metas.pkl', **kwargs)[0]
    assert (first['height'], first['width']) == (200, 400)
    assert first['instances'][0]['bbox'] == pytest.approx([40, 20, 120, 60])  # 0.1-0.3 of 400 x 200
    (tmp_path / 'swapped.pkl').write_bytes(pickle.dumps(metas[::-1]))
    with pytest.raises(DatasetError, match=r'swapped.pkl: meta of images/img2.jpg where the annotations have image img1'):
        OpenImagesDataset(meta_file='swapped.pkl', **kwargs)
