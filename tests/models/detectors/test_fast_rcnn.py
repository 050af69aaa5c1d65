"""Fast R-CNN on given proposals and proposal generation: ``FastRCNN`` trains through the real data
path (proposal file -> dataset -> LoadProposals -> Resize/RandomFlip -> PackDetInputs) until it
fits one image, and predicts on it in original pixels; ``gen_proposals`` writes, for every image
of a dataset in annotation-file order, the RPN's own predictions in original pixels."""
import copy
import os
import os.path as osp
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
from demo_data import make_tiny_demo_data
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope
from repo_paths import REPO_ROOT

from rcnn_plugins.apis.proposals import generate_proposal_files
from rcnn_plugins.datasets.proposal_file import dump_proposal_file
from rcnn_plugins.registry import DATASETS, MODELS
from rcnn_plugins.structures import bbox_overlaps

REPO = REPO_ROOT
DEMO = osp.join(REPO, 'configs', 'faster_rcnn', 'faster-rcnn_r18_fpn_demo.py')


@pytest.fixture(scope='module')
def demo_data(tmp_path_factory):
    """4 train + 2 val generated demo images of 64-96 px."""
    return make_tiny_demo_data(tmp_path_factory.mktemp('demo'), num_train=4, num_val=2)


def demo_cfg(root):
    cfg = Config.fromfile(DEMO)
    for split in ('train', 'val', 'test'):
        cfg[f'{split}_dataloader'].dataset.data_root = root + '/'
    init_default_scope('rcnn_plugins')
    return cfg


def fast_rcnn_model(cfg):
    model = cfg.model
    return dict(type='FastRCNN', data_preprocessor=model.data_preprocessor, backbone=model.backbone,
                neck=model.neck, roi_head=model.roi_head, train_cfg=dict(rcnn=model.train_cfg.rcnn),
                test_cfg=dict(rcnn=model.test_cfg.rcnn))


def test_fast_rcnn_fits_one_image_on_given_proposals(demo_data, tmp_path):
    cfg = demo_cfg(demo_data)
    train = copy.deepcopy(cfg.train_dataloader.dataset)
    probe = DATASETS.build(dict(train, pipeline=[]))
    # The first image with objects; proposals: its boxes jittered, plus random boxes (background).
    idx = next(i for i in range(len(probe)) if probe.get_data_info(i)['instances'])
    info = probe.get_data_info(idx)
    gts = np.array([inst['bbox'] for inst in info['instances']], np.float32)
    rng = np.random.default_rng(0)
    jitter = np.concatenate([gts + rng.normal(0, 2, gts.shape) for _ in range(8)])
    xy = rng.uniform(0, min(info['width'], info['height']) - 16, (40, 2))
    background = np.concatenate([xy, xy + rng.uniform(8, 32, (40, 2))], axis=1)
    proposals = np.concatenate([jitter, background]).astype(np.float32)
    # The proposal list is aligned with the annotation file: every image gets an entry.
    raw = DATASETS.build(dict(train, pipeline=[], test_mode=True))
    entries = [proposals if raw.get_data_info(i)['img_path'] == info['img_path'] else np.zeros((0, 4), np.float32)
               for i in range(len(raw))]
    dump_proposal_file(entries, str(tmp_path / 'props.pkl'))

    proposal_file = str(tmp_path / 'props.pkl')
    train_set = DATASETS.build(dict(train, proposal_file=proposal_file, pipeline=[
        dict(type='LoadImageFromFile'), dict(type='LoadProposals'), dict(type='LoadAnnotations', with_bbox=True),
        dict(type='Resize', scale=(176, 176), keep_ratio=True), dict(type='RandomFlip', prob=0.5),
        dict(type='PackDetInputs')]))
    test_set = DATASETS.build(dict(train, proposal_file=proposal_file, test_mode=True, pipeline=[
        dict(type='LoadImageFromFile'), dict(type='LoadProposals'),
        dict(type='Resize', scale=(176, 176), keep_ratio=True), dict(type='PackDetInputs')]))
    k = next(i for i in range(len(train_set)) if train_set.get_data_info(i)['img_path'] == info['img_path'])

    torch.manual_seed(0)
    model = MODELS.build(fast_rcnn_model(cfg))
    model.init_weights()
    assert not hasattr(model, 'rpn_head')
    optim = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-3))
    history = []
    for it in range(40):
        losses = model.train_step(pseudo_collate([train_set[k]]), optim)
        history.append(float(losses['loss_cls'].detach() + losses['loss_bbox'].detach()))
    assert np.mean(history[-5:]) < 0.3 * np.mean(history[:5]), history

    model.eval()
    with torch.no_grad():
        pred = model.test_step(pseudo_collate([test_set[k]]))[0].pred_instances
    # Original pixels: each object is found with its class at IoU > 0.5 among the top detections.
    labels = torch.tensor([inst['bbox_label'] for inst in info['instances']])
    iou = bbox_overlaps(torch.from_numpy(gts), pred.bboxes)
    hit = (iou > 0.5) & (labels[:, None] == pred.labels[None])
    assert hit.any(dim=1).all(), (gts, pred.bboxes[:5], pred.labels[:5])


def test_fast_rcnn_without_proposals_says_what_is_missing(demo_data):
    cfg = demo_cfg(demo_data)
    model = MODELS.build(fast_rcnn_model(cfg)).eval()
    data = DATASETS.build(dict(cfg.val_dataloader.dataset))[0]
    with pytest.raises(ValueError, match='no rpn_head.*proposal_file and LoadProposals'):
        model.test_step(pseudo_collate([data]))


def test_gen_proposals_rpn_matches_its_predictions(demo_data, tmp_path):
    """Python API with an RPN detector: the file equals RPN.predict (rescaled) image by image."""
    cfg = demo_cfg(demo_data)
    m = cfg.model
    torch.manual_seed(0)
    rpn = MODELS.build(dict(type='RPN', data_preprocessor=m.data_preprocessor, backbone=m.backbone, neck=m.neck,
                            rpn_head=m.rpn_head, train_cfg=dict(rpn=m.train_cfg.rpn),
                            test_cfg=dict(rpn=m.test_cfg.rpn)))
    rpn.init_weights()
    rpn.eval()
    paths = generate_proposal_files(rpn, cfg, str(tmp_path / 'rpn.pkl'), split='train')
    assert paths == [str(tmp_path / 'rpn.pkl')]
    with open(paths[0], 'rb') as f:
        written = pickle.load(f)

    # Every image of the annotation file (filter_cfg would drop empty ones), in its order.
    dataset = DATASETS.build(dict(cfg.train_dataloader.dataset, test_mode=True,
                                  pipeline=cfg.test_dataloader.dataset.pipeline))
    assert len(written) == len(dataset) == 4
    for i, props in enumerate(written):
        data = pseudo_collate([dataset[i]])
        with torch.no_grad():
            ref = rpn.test_step(data)[0].pred_instances
            resized = rpn.predict(rpn.data_preprocessor(data)['inputs'], data['data_samples'], rescale=False)
        assert props.dtype == np.float32 and props.shape == (len(ref.bboxes), 5)
        np.testing.assert_allclose(props[:, :4], ref.bboxes.numpy(), rtol=0, atol=1e-4)
        np.testing.assert_allclose(props[:, 4], ref.scores.numpy(), rtol=0, atol=1e-6)
        assert (np.diff(props[:, 4]) <= 0).all()  # sorted by score
        # Original pixels: the resized-image proposals divided by the resize factors.
        w_scale, h_scale = dataset[i]['data_samples'].scale_factor
        assert w_scale > 1  # the images really were resized
        unscaled = resized[0].pred_instances.bboxes.numpy() / np.array([w_scale, h_scale] * 2)
        np.testing.assert_allclose(props[:, :4], unscaled, rtol=1e-5, atol=1e-3)


def test_gen_proposals_tool_with_faster_rcnn(demo_data, tmp_path):
    """The command line on a Faster R-CNN checkpoint: its RPN part's proposals of the val split."""
    cfg = demo_cfg(demo_data)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.eval()
    ckpt = str(tmp_path / 'frcnn.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), ckpt)
    out = str(tmp_path / 'val.pkl')
    proc = subprocess.run(
        [sys.executable, 'tools/misc/gen_proposals.py', DEMO, ckpt, '--out', out, '--split', 'val', '--device', 'cpu',
         '--cfg-options', f'val_dataloader.dataset.data_root={demo_data}/',
         f'test_dataloader.dataset.data_root={demo_data}/', 'model.test_cfg.rpn.max_per_img=50'],
        cwd=REPO, capture_output=True, text=True, timeout=120,
        env=dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1'))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f'wrote {out}' in proc.stdout
    with open(out, 'rb') as f:
        written = pickle.load(f)
    dataset = DATASETS.build(dict(cfg.val_dataloader.dataset))
    assert len(written) == len(dataset) == 2
    for i, props in enumerate(written):
        data = model.data_preprocessor(pseudo_collate([dataset[i]]))
        with torch.no_grad():
            ref = model.rpn_head.predict(model.extract_feat(data['inputs']), data['data_samples'], rescale=True)[0]
        # --cfg-options reached the RPN: 50 instead of the config's 100, the top 50 of greedy NMS.
        assert props.shape == (50, 5) and len(ref) == 100
        np.testing.assert_allclose(props, torch.cat([ref.bboxes, ref.scores[:, None]], 1)[:50].numpy(), atol=1e-4)
        h, w = dataset[i]['data_samples'].ori_shape
        assert props[:, [0, 2]].max() <= w and props[:, [1, 3]].max() <= h


def test_fast_rcnn_coco_config():
    """The MMDetection-style config: FastRCNN without rpn_head, proposals loaded before Resize in
    both pipelines, MMDetection's proposal file names."""
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'fast_rcnn', 'fast-rcnn_r50_fpn_1x_coco.py'))
    assert cfg.model.type == 'FastRCNN' and 'rpn_head' not in cfg.model and 'rpn' not in cfg.model.train_cfg
    for loader, num_max, split in ((cfg.train_dataloader, 2000, 'train'), (cfg.test_dataloader, None, 'val')):
        types = [t['type'] for t in loader.dataset.pipeline]
        assert types.index('LoadProposals') < types.index('Resize')
        assert loader.dataset.pipeline[types.index('LoadProposals')].num_max_proposals == num_max
        assert loader.dataset.proposal_file == f'proposals/rpn_r50_fpn_1x_{split}2017.pkl'
