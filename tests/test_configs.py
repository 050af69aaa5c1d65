"""Configs load and build; command-line options reach the built model; an MMDetection 3.x user
config works once its default_scope says rcnn_plugins."""
import copy
import glob
import os.path as osp
import sys
import textwrap

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from rcnn_plugins import cli
from rcnn_plugins.cli.errors import UsageError
from rcnn_plugins.registry import check_config_types
from repo_paths import REPO_ROOT

REPO = REPO_ROOT
CONFIGS = sorted(c for c in glob.glob(osp.join(REPO, 'configs', '*', '*.py')) if '_base_' not in c)
DEMO = osp.join(REPO, 'configs', 'faster_rcnn', 'faster-rcnn_r18_fpn_demo.py')
sys.path.insert(0, osp.join(REPO, 'tools'))
import make_demo_data  # noqa: E402


# Configs whose training step needs more than one image: ResNeSt's split attention normalises a
# pooled (1x1) map with BatchNorm in train mode (norm_eval=False), which needs > 1 value per channel
# (in MMDetection too, where SyncBN over GPUs provides them).
TINY_BATCH = {'faster-rcnn_s50_fpn_syncbn-backbone+head_ms-range-1x_coco.py': 2}
# Config changes for the tiny step of randomly initialised models. DetectoRS's ConvAWS convs
# standardise every filter to unit variance, so with eval-mode BatchNorm at its initial statistics
# (mean 0, var 1) activations grow by about the fan-in per layer and overflow within the two
# backbone passes; train-mode BN renormalises them. (With the pretrained weights a config names,
# the BN statistics fit and eval mode is right.)
_AWS_TINY = {'model.backbone.norm_eval': False, 'model.neck.rfp_backbone.norm_eval': False}
TINY_CFG_OPTIONS = {'cascade-rcnn_r50-rfp_1x_coco.py': _AWS_TINY, 'detectors_cascade-rcnn_r50_1x_coco.py': _AWS_TINY}


def build_model(cfg):
    from rcnn_plugins.registry import MODELS
    init_default_scope(cfg.get('default_scope', 'rcnn_plugins'))
    cfg.model.backbone.init_cfg = None  # no download of pretrained weights in tests
    if cfg.model.backbone.get('pretrained') is True:  # TIMMBackbone: timm's weights, read from the hub cache
        cfg.model.backbone.pretrained = False
    return MODELS.build(cfg.model)


def test_all_configs_found():
    names = {osp.basename(c) for c in CONFIGS}
    assert {'faster-rcnn_r50_fpn_1x_coco.py', 'faster-rcnn_r50_fpn_1x_voc0712.py',
            'faster-rcnn_r18_fpn_demo.py'} <= names


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_config_builds(path):
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'rcnn_plugins'
    cfg.merge_from_dict(TINY_CFG_OPTIONS.get(osp.basename(path), {}))
    # The runner's early check of every `type` (tools/train.py runs it before building) passes too:
    # non-registry types (nms, Cascade RPN's adapt_cfg, FPG's transitions) are not mistaken for typos.
    check_config_types(cfg)
    model = build_model(cfg)
    assert type(model).__name__ == cfg.model.type  # FasterRCNN, FastRCNN on given proposals, or an RPN
    assert type(model).__module__.startswith('rcnn_plugins.')
    if 'roi_head' in cfg.model:
        # The bbox head predicts num_classes + 1 (background) scores (Cascade R-CNN: one head per stage).
        heads, head_cfgs = model.roi_head.bbox_head, cfg.model.roi_head.bbox_head
        if isinstance(head_cfgs, dict):
            heads, head_cfgs = [heads], [head_cfgs]
        assert [h.num_classes for h in heads] == [c.num_classes for c in head_cfgs]
    tiny_loss_and_predict(model, TINY_BATCH.get(osp.basename(path), 1))


def tiny_loss_and_predict(model, batch=1):
    """One 128x128 image with one box through ``loss`` and ``predict`` (precomputed proposals for
    detectors without an RPN)."""
    from mmengine.structures import InstanceData

    from rcnn_plugins.structures import DetDataSample

    def samples():
        s = DetDataSample(metainfo=dict(img_shape=(128, 128), ori_shape=(128, 128), scale_factor=(1., 1.),
                                        pad_shape=(128, 128), batch_input_shape=(128, 128)))
        s.gt_instances = InstanceData(bboxes=torch.tensor([[8., 10., 40., 50.]]), labels=torch.tensor([0]))
        if not getattr(model, 'with_rpn', True):
            s.proposals = InstanceData(bboxes=torch.tensor([[6., 8., 42., 48.], [0., 0., 30., 30.]]),
                                       scores=torch.tensor([0.9, 0.5]))
        return [s] + [copy.deepcopy(s) for _ in range(batch - 1)]

    # Few proposals: the step checks that every part runs, not the COCO-sized workload.
    for cfg in (model.train_cfg.get('rpn_proposal'), model.test_cfg.get('rpn')):
        if cfg is not None:
            cfg.update(nms_pre=64, max_per_img=16)
    if getattr(model, 'with_rpn', False) and model.rpn_head.train_cfg is not None:
        rpn_cfgs = model.rpn_head.train_cfg
        for rpn_cfg in (rpn_cfgs if isinstance(rpn_cfgs, list) else [rpn_cfgs]):  # a list: one per cascade stage
            rpn_cfg['allowed_border'] = -1  # VGG's 128-512 px anchors exceed a tiny image
    if model.test_cfg.get('rpn') is not None and hasattr(model, 'bbox_head'):  # an RPN detector
        model.bbox_head.test_cfg.update(nms_pre=64, max_per_img=16)
    torch.manual_seed(0)
    inputs = torch.randn(batch, 3, 128, 128)
    model.train()
    losses = model(inputs, samples(), mode='loss')
    total = sum(v.sum() for k, v in losses.items() if 'loss' in k for v in (v if isinstance(v, list) else [v]))
    assert torch.isfinite(total), losses
    model.eval()
    with torch.no_grad():
        pred = model(inputs, samples(), mode='predict')[0].pred_instances
    assert pred.bboxes.shape[1:] == (4,) and len(pred.scores) == len(pred.labels)


def test_voc_config():
    cfg = Config.fromfile(osp.join(REPO, 'configs/faster_rcnn/faster-rcnn_r50_fpn_1x_voc0712.py'))
    assert cfg.model.roi_head.bbox_head.num_classes == 20
    assert cfg.train_cfg.max_epochs == 4
    assert cfg.param_scheduler[0].milestones == [3]
    assert cfg.optim_wrapper.optimizer.lr == 0.01
    assert cfg.train_dataloader.dataset.type == 'RepeatDataset'
    assert cfg.train_dataloader.dataset.times == 3
    assert cfg.val_evaluator == dict(type='VOCMetric', metric='mAP', eval_mode='11points')


def test_coco_config_matches_mmdetection_defaults():
    cfg = Config.fromfile(osp.join(REPO, 'configs/faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'))
    assert cfg.train_cfg == dict(type='EpochBasedTrainLoop', max_epochs=12, val_interval=1)
    assert [s.type for s in cfg.param_scheduler] == ['LinearLR', 'MultiStepLR']
    assert cfg.param_scheduler[1].milestones == [8, 11]
    assert cfg.optim_wrapper.optimizer == dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=0.0001)
    assert cfg.auto_scale_lr == dict(enable=False, base_batch_size=16)
    assert cfg.train_dataloader.batch_sampler.type == 'AspectRatioBatchSampler'
    assert cfg.default_hooks.checkpoint.type == 'CheckpointHook'
    assert cfg.default_hooks.visualization.type == 'DetVisualizationHook'


def test_cfg_options_swap_components():
    # RoIPool takes no sampling_ratio: `_delete_` replaces the whole roi_layer dict.
    args = cli.train_parser().parse_args([
        DEMO, '--cfg-options',
        'model.roi_head.bbox_roi_extractor.roi_layer._delete_=True',
        'model.roi_head.bbox_roi_extractor.roi_layer.type=RoIPool',
        'model.roi_head.bbox_roi_extractor.roi_layer.output_size=7',
        'model.rpn_head.loss_bbox.type=SmoothL1Loss',
        'model.rpn_head.loss_bbox.beta=0.1111'])
    cfg = cli.train_config(args)
    model = build_model(cfg)
    roi_layers = model.roi_head.bbox_roi_extractor.roi_layers
    assert {type(layer).__name__ for layer in roi_layers} == {'RoIPool'}
    assert type(model.rpn_head.loss_bbox).__name__ == 'SmoothL1Loss'
    # ...and the swapped layer is the one that runs.
    feats = tuple(torch.rand(1, 64, 56 // 2 ** i, 56 // 2 ** i) for i in range(4))
    rois = torch.tensor([[0., 10., 10., 60., 70.]])
    out = model.roi_head.bbox_roi_extractor(feats, rois)
    expected = roi_layers[0](feats[0], rois)
    assert torch.equal(out, expected)


def test_train_flags(tmp_path):
    cfg = cli.train_config(cli.train_parser().parse_args([DEMO, '--auto-scale-lr', '--resume']))
    assert cfg.work_dir == osp.join('./work_dirs', 'faster-rcnn_r18_fpn_demo')
    assert cfg.auto_scale_lr.enable is True
    assert cfg.resume is True and cfg.load_from is None  # auto-resume from last_checkpoint

    ckpt = str(tmp_path / 'epoch_3.pth')
    cfg = cli.train_config(cli.train_parser().parse_args(
        [DEMO, '--work-dir', str(tmp_path), '--resume', ckpt,
         '--cfg-options', 'train_cfg.max_epochs=2', 'default_hooks.logger.interval=1']))
    assert cfg.work_dir == str(tmp_path)
    assert cfg.resume is True and cfg.load_from == ckpt
    assert cfg.train_cfg.max_epochs == 2 and cfg.default_hooks.logger.interval == 1

    cfg = cli.train_config(cli.train_parser().parse_args([DEMO, '--launcher', 'pytorch']))
    assert cfg.launcher == 'pytorch'
    if not torch.cuda.is_available():
        assert cfg.env_cfg.dist_cfg.backend == 'gloo'
        assert cfg.model_wrapper_cfg.type == 'MMDistributedDataParallel'


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the CPU-only behaviour of --amp')
def test_amp_on_cpu_is_bf16_or_fails_clearly(monkeypatch):
    from rcnn_plugins.engine import optimizers
    monkeypatch.setattr(optimizers, 'cpu_bf16_supported', lambda: True)
    cfg = cli.train_config(cli.train_parser().parse_args([DEMO, '--amp']))
    assert cfg.optim_wrapper.type == 'BF16OptimWrapper' and 'loss_scale' not in cfg.optim_wrapper
    assert cfg.val_cfg.fp16 is True
    cfg = cli.test_config(cli.test_parser().parse_args([DEMO, 'ckpt.pth', '--amp']))
    assert cfg.test_cfg.fp16 is True

    monkeypatch.setattr(optimizers, 'cpu_bf16_supported', lambda: False)
    for argv in ([DEMO, '--amp'], [DEMO, 'ckpt.pth', '--amp']):
        parse, config = ((cli.train_parser, cli.train_config) if len(argv) == 2 else
                         (cli.test_parser, cli.test_config))
        with pytest.raises(UsageError, match='no native bf16.*400x slower'):
            config(parse().parse_args(argv))


def test_fast_inference_flags_add_the_hook():
    cfg = cli.test_config(cli.test_parser().parse_args([DEMO, 'ckpt.pth', '--fuse-conv-bn', '--channels-last']))
    assert cfg.custom_hooks[-1] == dict(type='FastInferenceHook', fuse_conv_bn=True, channels_last=True,
                                       reason='as asked: --fuse-conv-bn=True, --channels-last=True')
    # The default (on a CPU) is the fast path too; --exact runs the model as built.
    cfg = cli.test_config(cli.test_parser().parse_args([DEMO, 'ckpt.pth']))
    assert cfg.custom_hooks[-1]['type'] == 'FastInferenceHook' and cfg.custom_hooks[-1]['reason'].startswith('default')
    cfg = cli.test_config(cli.test_parser().parse_args([DEMO, 'ckpt.pth', '--exact']))
    assert all(h['type'] != 'FastInferenceHook' for h in cfg.get('custom_hooks', None) or [])


def test_test_flags(tmp_path):
    cfg = cli.test_config(cli.test_parser().parse_args(
        [DEMO, 'ckpt.pth', '--show-dir', 'vis', '--out', str(tmp_path / 'r.pkl')]))
    assert cfg.load_from == 'ckpt.pth'
    assert cfg.default_hooks.visualization.draw is True
    assert cfg.default_hooks.visualization.test_out_dir == 'vis'
    assert [e['type'] for e in cfg.test_evaluator] == ['CocoMetric', 'DumpResults']
    assert cfg.test_evaluator[1]['out_file_path'] == str(tmp_path / 'r.pkl')


# An MMDetection 3.x user's config, written as in MMDetection (full model dict, dataset, schedule),
# with only default_scope changed.
MMDET_STYLE_CONFIG = '''
default_scope = 'rcnn_plugins'
model = dict(
    type='FasterRCNN',
    data_preprocessor=dict(type='DetDataPreprocessor', mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_size_divisor=32),
    backbone=dict(type='ResNet', depth=18, num_stages=4, out_indices=(0, 1, 2, 3), frozen_stages=1,
                  norm_cfg=dict(type='BN', requires_grad=True), norm_eval=True, style='pytorch',
                  init_cfg=None),
    neck=dict(type='FPN', in_channels=[64, 128, 256, 512], out_channels=256, num_outs=5),
    rpn_head=dict(
        type='RPNHead', in_channels=256, feat_channels=256,
        anchor_generator=dict(type='AnchorGenerator', scales=[8], ratios=[0.5, 1.0, 2.0],
                              strides=[4, 8, 16, 32, 64]),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[.0, .0, .0, .0],
                        target_stds=[1.0, 1.0, 1.0, 1.0]),
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
    roi_head=dict(
        type='StandardRoIHead',
        bbox_roi_extractor=dict(type='SingleRoIExtractor',
                                roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
                                out_channels=256, featmap_strides=[4, 8, 16, 32]),
        bbox_head=dict(
            type='Shared2FCBBoxHead', in_channels=256, fc_out_channels=1024, roi_feat_size=7,
            num_classes=4,
            bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.],
                            target_stds=[0.1, 0.1, 0.2, 0.2]),
            reg_class_agnostic=False,
            loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
            loss_bbox=dict(type='L1Loss', loss_weight=1.0))),
    train_cfg=dict(
        rpn=dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.7, neg_iou_thr=0.3,
                               min_pos_iou=0.3, match_low_quality=True, ignore_iof_thr=-1),
                 sampler=dict(type='RandomSampler', num=256, pos_fraction=0.5, neg_pos_ub=-1,
                              add_gt_as_proposals=False),
                 allowed_border=-1, pos_weight=-1, debug=False),
        rpn_proposal=dict(nms_pre=2000, max_per_img=1000, nms=dict(type='nms', iou_threshold=0.7),
                          min_bbox_size=0),
        rcnn=dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5,
                                min_pos_iou=0.5, match_low_quality=False, ignore_iof_thr=-1),
                  sampler=dict(type='RandomSampler', num=512, pos_fraction=0.25, neg_pos_ub=-1,
                               add_gt_as_proposals=True),
                  pos_weight=-1, debug=False)),
    test_cfg=dict(
        rpn=dict(nms_pre=1000, max_per_img=1000, nms=dict(type='nms', iou_threshold=0.7),
                 min_bbox_size=0),
        rcnn=dict(score_thr=0.05, nms=dict(type='nms', iou_threshold=0.5), max_per_img=100)))

dataset_type = 'CocoDataset'
data_root = '{data_root}/'
metainfo = dict(classes=('rectangle', 'ellipse', 'triangle', 'cross'))
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),  # the user's small images
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(type=dataset_type, data_root=data_root, metainfo=metainfo,
                 ann_file='annotations/train.json', data_prefix=dict(img='train/'),
                 filter_cfg=dict(filter_empty_gt=True, min_size=32), pipeline=train_pipeline,
                 backend_args=None))
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=12, val_interval=1)
optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=0.0001))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True, milestones=[8, 11], gamma=0.1),
]
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='DetVisualizationHook'))
env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               dist_cfg=dict(backend='nccl'))
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='DetLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=True)
log_level = 'INFO'
load_from = None
resume = False
'''


def test_mmdetection_style_config(tmp_path):
    data = tmp_path / 'data'
    make_demo_data.main(['--out', str(data), '--num-train', '6', '--num-val', '2',
                         '--min-size', '64', '--max-size', '96'])
    path = tmp_path / 'faster-rcnn_r18_fpn_user.py'
    path.write_text(textwrap.dedent(MMDET_STYLE_CONFIG).replace('{data_root}', str(data)))
    cfg = Config.fromfile(str(path))
    cfg.work_dir = str(tmp_path / 'work')
    cfg.experiment_name = 'mmdet_style_config'
    runner = Runner.from_cfg(cfg)

    model = runner.model
    assert type(model).__module__.startswith('rcnn_plugins.')
    assert type(model.roi_head.bbox_head).__name__ == 'Shared2FCBBoxHead'
    assert {type(h).__module__.split('.')[0] for h in runner.hooks} >= {'rcnn_plugins', 'mmengine'}
    assert any(type(h).__name__ == 'CheckpointHook' and type(h).__module__.startswith('rcnn_plugins')
               for h in runner.hooks)

    dataset = runner.train_dataloader.dataset
    assert type(dataset).__name__ == 'CocoDataset'
    assert dataset.metainfo['classes'] == ('rectangle', 'ellipse', 'triangle', 'cross')
    # A real batch goes through the model's loss.
    batch = next(iter(runner.train_dataloader))
    model.train()
    losses = model(**model.data_preprocessor(batch, True), mode='loss')
    assert {'loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls', 'loss_bbox'} <= set(losses)


def test_console_scripts_point_at_cli():
    import importlib
    import tomllib
    with open(osp.join(REPO, 'pyproject.toml'), 'rb') as f:
        scripts = tomllib.load(f)['project']['scripts']
    assert {'rcnn-train', 'rcnn-test', 'rcnn-infer'} <= set(scripts)
    for target in scripts.values():
        module, func = target.split(':')
        assert module.startswith('rcnn_plugins.cli.')  # every script is a command module's main
        assert callable(getattr(importlib.import_module(module), func))
