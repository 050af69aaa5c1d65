"""Proposal files from the RPN variants: a two-stage detector whose rpn_head is a dense head other
than RPNHead (FCOSHead, GARPNHead) writes, per image, its head's rescaled proposals."""
import os.path as osp
import pickle

import numpy as np
import pytest
import torch
from demo_data import make_tiny_demo_data
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from repo_paths import REPO_ROOT

from rcnn_plugins.apis.proposals import generate_proposal_files
from rcnn_plugins.registry import DATASETS, MODELS

REPO = REPO_ROOT
DEMO = osp.join(REPO, 'configs', 'faster_rcnn', 'faster-rcnn_r18_fpn_demo.py')


@pytest.fixture(scope='module')
def demo_data(tmp_path_factory):
    """2 val generated demo images of 64-96 px."""
    return make_tiny_demo_data(tmp_path_factory.mktemp('demo'), num_train=1, num_val=2)


HEADS = {
    'fcos': dict(type='FCOSHead', num_classes=1, in_channels=64, feat_channels=16, stacked_convs=1,
                 strides=[4, 8, 16, 32, 64], norm_cfg=dict(type='GN', num_groups=4)),
    'ga': dict(type='GARPNHead', in_channels=64, feat_channels=64,
               approx_anchor_generator=dict(type='AnchorGenerator', octave_base_scale=4, scales_per_octave=3,
                                            ratios=[0.5, 1.0, 2.0], strides=[4, 8, 16, 32, 64]),
               square_anchor_generator=dict(type='AnchorGenerator', ratios=[1.0], scales=[4],
                                            strides=[4, 8, 16, 32, 64])),
}


@pytest.mark.parametrize('head', list(HEADS))
def test_rpn_variant_proposal_file(demo_data, tmp_path, head):
    cfg = Config.fromfile(DEMO)
    for split in ('train', 'val', 'test'):
        cfg[f'{split}_dataloader'].dataset.data_root = demo_data + '/'
        cfg[f'{split}_dataloader'].batch_size = 1  # batch padding would change the features
    init_default_scope('rcnn_plugins')
    cfg.model.rpn_head = HEADS[head]
    cfg.model.test_cfg.rpn.nms_post = 100  # GARPNHead's per-level budget
    cfg.model.train_cfg = None  # inference only (the demo's train_cfg is RPNHead's)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.eval()
    path, = generate_proposal_files(model, cfg, str(tmp_path / f'{head}.pkl'), split='val')
    with open(path, 'rb') as f:
        written = pickle.load(f)
    dataset = DATASETS.build(dict(cfg.val_dataloader.dataset))
    assert len(written) == len(dataset) == 2
    for i, props in enumerate(written):
        data = model.data_preprocessor(pseudo_collate([dataset[i]]))
        with torch.no_grad():
            ref = model.rpn_head.predict(model.extract_feat(data['inputs']), data['data_samples'], rescale=True)[0]
        assert props.shape == (len(ref), 5) and 0 < len(ref) <= cfg.model.test_cfg.rpn.max_per_img
        np.testing.assert_allclose(props[:, :4], ref.bboxes.numpy(), rtol=1e-5, atol=1e-3)
        np.testing.assert_allclose(props[:, 4], ref.scores.numpy(), atol=1e-6)
