"""Proposal files and ``LoadProposals``: the dataset matches a proposal pickle to its images, the
pipeline rescales and flips the proposals with the image (checked against boxes worked out by
hand), ``PackDetInputs`` packs them, and a pickle that would run code is refused unread."""
import os.path as osp
import pickle

import numpy as np
import pytest
import torch

from rcnn_plugins.datasets import CocoDataset, DatasetError
from rcnn_plugins.datasets.proposal_file import dump_proposal_file

IMAGES = [(1, 'a.jpg', 64, 48), (2, 'b.jpg', 40, 60)]
CATEGORIES = [(1, 'dog')]
ANNOTATIONS = [dict(id=1, image_id=1, category_id=1, bbox=[4, 6, 20, 10]),
               dict(id=2, image_id=2, category_id=1, bbox=[1, 2, 10, 20])]
# a.jpg: one box inside, one reaching out of the 64 x 48 image; b.jpg: (N, 4) without scores.
PROPOSALS = [np.array([[4, 6, 24, 16, 0.9], [60, 40, 70, 50, 0.3]], np.float32),
             np.array([[0, 0, 10, 10]], np.float32)]


def pipeline(flip: bool, num_max=None):
    return [dict(type='LoadImageFromFile'),
            dict(type='LoadProposals', num_max_proposals=num_max),
            dict(type='LoadAnnotations', with_bbox=True),
            dict(type='Resize', scale=(128, 96), keep_ratio=False),  # a.jpg: x2 in both directions
            dict(type='RandomFlip', prob=1.0 if flip else 0.0),
            dict(type='PackDetInputs')]


def dataset(root, proposal_file, flip=True, num_max=None):
    return CocoDataset(data_root=root, ann_file='annotations/instances.json', data_prefix=dict(img='images/'),
                       metainfo=dict(classes=('dog',)), proposal_file=proposal_file,
                       pipeline=pipeline(flip, num_max))


@pytest.fixture
def root(tmp_path, coco_writer):
    coco_writer(str(tmp_path), IMAGES, ANNOTATIONS, CATEGORIES)
    return str(tmp_path)


def test_round_trip_resize_and_flip(root):
    dump_proposal_file(PROPOSALS, osp.join(root, 'proposals.pkl'))
    ds = dataset(root, 'proposals.pkl')  # relative to data_root, as MMDetection
    sample = ds[0]['data_samples']
    # x2 then a horizontal flip in the 128-px-wide image: x1' = 128 - 2 * x2, x2' = 128 - 2 * x1;
    # the second box is clipped to the 128 x 96 image before the flip.
    expected = torch.tensor([[128 - 48, 12, 128 - 8, 32], [0, 80, 128 - 120, 96]], dtype=torch.float32)
    torch.testing.assert_close(sample.proposals.bboxes, expected, rtol=0, atol=0)
    torch.testing.assert_close(sample.proposals.scores, torch.tensor([0.9, 0.3]))
    # The ground truth went through the same transforms: [4, 6, 24, 16] as the first proposal.
    torch.testing.assert_close(sample.gt_instances.bboxes, expected[:1], rtol=0, atol=0)

    unflipped = dataset(root, osp.join(root, 'proposals.pkl'), flip=False)[0]['data_samples']
    torch.testing.assert_close(unflipped.proposals.bboxes, torch.tensor([[8., 12, 48, 32], [120, 80, 128, 96]]))

    # b.jpg (40 x 60 -> 128 x 96: x3.2, x1.6), given without scores: scores are 0.
    second = ds[1]['data_samples']
    torch.testing.assert_close(second.proposals.bboxes, torch.tensor([[128 - 32, 0, 128, 16.]]))
    torch.testing.assert_close(second.proposals.scores, torch.zeros(1))


def test_num_max_proposals_and_dict_format(root):
    # MMDetection 3.x's dict keyed by '<folder>/<file name>', values dict(bboxes, scores).
    by_name = {'images/a.jpg': dict(bboxes=PROPOSALS[0][:, :4], scores=PROPOSALS[0][:, 4]),
               'images/b.jpg': PROPOSALS[1]}
    with open(osp.join(root, 'by_name.pkl'), 'wb') as f:
        pickle.dump(by_name, f)
    sample = dataset(root, 'by_name.pkl', flip=False, num_max=1)[0]['data_samples']
    torch.testing.assert_close(sample.proposals.bboxes, torch.tensor([[8., 12, 48, 32]]))
    torch.testing.assert_close(sample.proposals.scores, torch.tensor([0.9]))


def test_bad_files_name_the_problem(root):
    dump_proposal_file(PROPOSALS[:1], osp.join(root, 'short.pkl'))
    with pytest.raises(DatasetError, match=r'short.pkl has 1 entries but the annotation file lists 2 images'):
        dataset(root, 'short.pkl')
    dump_proposal_file([PROPOSALS[0], np.zeros((3, 6), np.float32)], osp.join(root, 'wide.pkl'))
    with pytest.raises(DatasetError, match=r'entry 1 .*b.jpg.*\(N, 4\) or \(N, 5\).*\(3, 6\)'):
        dataset(root, 'wide.pkl')
    with pytest.raises(DatasetError, match='does not exist'):
        dataset(root, 'missing.pkl')


class _CreatesFile:
    """A pickle payload: unpickling it calls ``open(path, 'w')``, creating the file."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return open, (self.path, 'w')


def test_malicious_pickle_is_refused_unrun(root, tmp_path):
    # The payload works: plain pickle creates its file.
    probe = str(tmp_path / 'probe')
    pickle.loads(pickle.dumps(_CreatesFile(probe))).close()
    assert osp.exists(probe)

    target = str(tmp_path / 'pwned')
    with open(osp.join(root, 'evil.pkl'), 'wb') as f:
        pickle.dump([PROPOSALS[0], _CreatesFile(target)], f)
    with pytest.raises(DatasetError, match=r'evil.pkl refers to (builtins|io)\.open.*not loaded'):
        dataset(root, 'evil.pkl')
    assert not osp.exists(target)


def test_mmdetection_fast_rcnn_pipeline_with_proposal_broadcaster(root):
    """MMDetection 3.x's Fast R-CNN pipeline (Resize / RandomFlip inside ProposalBroadcaster)
    gives the same sample as ours."""
    dump_proposal_file(PROPOSALS, osp.join(root, 'proposals.pkl'))
    mmdet_style = [dict(type='LoadImageFromFile'), dict(type='LoadProposals', num_max_proposals=2000),
                   dict(type='LoadAnnotations', with_bbox=True),
                   dict(type='ProposalBroadcaster', transforms=[dict(type='Resize', scale=(128, 96), keep_ratio=False),
                                                                dict(type='RandomFlip', prob=1.0)]),
                   dict(type='PackDetInputs')]
    ds = CocoDataset(data_root=root, ann_file='annotations/instances.json', data_prefix=dict(img='images/'),
                     metainfo=dict(classes=('dog',)), proposal_file='proposals.pkl', pipeline=mmdet_style)
    ours = dataset(root, 'proposals.pkl')
    for i in range(2):
        a, b = ds[i]['data_samples'], ours[i]['data_samples']
        torch.testing.assert_close(a.proposals.bboxes, b.proposals.bboxes, rtol=0, atol=0)
        torch.testing.assert_close(a.gt_instances.bboxes, b.gt_instances.bboxes, rtol=0, atol=0)
        assert a.flip and a.img_shape == b.img_shape
