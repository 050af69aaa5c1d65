"""4-step alternating training (``tools/train_alternating.py``) on tiny generated data: all four
stages run, for the ResNet-FPN demo config and for a single-level config without a neck (the
paper's layout); the final checkpoint's weights come from the right stages (shared layers
bit-identical in stages 2, 3, 4 and the final model, rpn_head = stage 3's, roi_head = stage 4's)
and it evaluates with ``tools/test.py``; a run killed (SIGKILL) in stage 3 resumes there."""
import copy
import glob
import os
import os.path as osp
import pickle
import signal
import subprocess
import sys
import time

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

from rcnn_plugins.apis.alternating import AlternatingError, stage_config, train_alternating
from rcnn_plugins.registry import DATASETS, MODELS
from repo_paths import REPO_ROOT

REPO = REPO_ROOT
DEMO = osp.join(REPO, 'configs', 'faster_rcnn', 'faster-rcnn_r18_fpn_demo.py')
ENV = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1')

#: the demo config on tiny images, 1 epoch per stage, a checkpoint every epoch
TINY = '''
_base_ = {demo!r}
data_root = {root!r}
train_pipeline = [
    dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(96, 96), keep_ratio=True), dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')]
test_pipeline = [
    dict(type='LoadImageFromFile'), dict(type='Resize', scale=(96, 96), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))]
train_dataloader = dict(dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/val.json')
test_evaluator = val_evaluator
train_cfg = dict(max_epochs=1)
default_hooks = dict(checkpoint=dict(interval=1), logger=dict(interval=1))
'''

#: the paper's layout: one feature map at stride 16 (ResNet-18 stage 3), no neck
SINGLE_LEVEL = '''
model = dict(
    backbone=dict(out_indices=(2, )),
    neck=None,
    rpn_head=dict(in_channels=128, feat_channels=64,
                  anchor_generator=dict(scales=[2, 4], strides=[16])),
    roi_head=dict(bbox_roi_extractor=dict(out_channels=128, featmap_strides=[16]),
                  bbox_head=dict(in_channels=128)))
'''


@pytest.fixture(scope='module')
def tiny_data(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('alt_data'))
    subprocess.run([sys.executable, 'tools/make_demo_data.py', '--out', root, '--num-train', '4', '--num-val', '2',
                    '--min-size', '64', '--max-size', '96'], cwd=REPO, check=True, capture_output=True, env=ENV)
    return root


def write_config(tmp_path, root, extra=''):
    path = str(tmp_path / 'alt_config.py')
    with open(path, 'w') as f:
        f.write(TINY.format(demo=DEMO, root=root + '/') + extra)
    return path


def state(path):
    return torch.load(path, map_location='cpu', weights_only=False)['state_dict']


def part(sd, prefix):
    return {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}


def assert_same(a, b):
    assert a.keys() == b.keys() and a
    bad = [k for k in a if not torch.equal(a[k], b[k])]
    assert not bad, bad[:5]


def assert_differs(a, b):
    assert any(not torch.equal(a[k], b[k]) for k in a)


def check_provenance(work, cfg, shared):
    stages = [state(osp.join(work, s, 'model_final.pth'))
              for s in ('stage1_rpn', 'stage2_rcnn', 'stage3_rpn', 'stage4_rcnn')]
    final = state(osp.join(work, 'faster_rcnn_final.pth'))
    # The final checkpoint is a complete Faster R-CNN of the config.
    assert final.keys() == MODELS.build(cfg.model).state_dict().keys()
    for prefix in shared:
        assert_same(part(stages[1], prefix), part(final, prefix))
        assert_same(part(stages[2], prefix), part(final, prefix))
        assert_same(part(stages[3], prefix), part(final, prefix))
        assert_differs(part(stages[0], prefix), part(stages[1], prefix))  # stage 2 trained its own
    assert_same(part(stages[2], 'bbox_head.'), part(final, 'rpn_head.'))
    assert_differs(part(stages[0], 'bbox_head.'), part(stages[2], 'bbox_head.'))
    assert_same(part(stages[3], 'roi_head.'), part(final, 'roi_head.'))
    assert_differs(part(stages[1], 'roi_head.'), part(stages[3], 'roi_head.'))  # stage 4 fine-tuned it
    # Stage 2 and 4 trained on the proposals of stages 1 and 3, one (N, 5) array per train image.
    for rpn, rcnn in (('stage1_rpn', 'stage2_rcnn'), ('stage3_rpn', 'stage4_rcnn')):
        with open(osp.join(work, rpn, 'proposals_train.pkl'), 'rb') as f:
            proposals = pickle.load(f)
        assert len(proposals) == 4 and all(p.ndim == 2 and p.shape[1] == 5 for p in proposals)
        dumped = open(glob.glob(osp.join(work, rcnn, '*.py'))[0]).read()
        assert 'LoadProposals' in dumped and osp.join(work, rpn, 'proposals_train.pkl') in dumped


def test_alternating_fpn_end_to_end(tiny_data, tmp_path):
    """The tool with the ResNet-FPN demo config, then tools/test.py on its result."""
    config = write_config(tmp_path, tiny_data)
    work = str(tmp_path / 'work')
    proc = subprocess.run([sys.executable, 'tools/train_alternating.py', config, '--work-dir', work],
                          cwd=REPO, capture_output=True, text=True, timeout=600, env=ENV)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert f'wrote {work}/faster_rcnn_final.pth' in proc.stdout
    check_provenance(work, Config.fromfile(config), ('backbone.', 'neck.'))

    proc = subprocess.run([sys.executable, 'tools/test.py', config, osp.join(work, 'faster_rcnn_final.pth'),
                           '--work-dir', str(tmp_path / 'test')], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env=ENV)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert 'coco/bbox_mAP_50' in proc.stdout + proc.stderr



def test_single_level_stage_models(tiny_data, tmp_path):
    """Without a neck every stage model builds on the single feature map and trains (one loss)."""
    cfg = Config.fromfile(write_config(tmp_path, tiny_data, SINGLE_LEVEL))
    assert cfg.model.neck is None
    init_default_scope('rcnn_plugins')
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    data = pseudo_collate([dataset[0], dataset[1]])
    for k, expected in enumerate(('loss_rpn_cls', 'loss_cls', 'loss_rpn_cls', 'loss_cls')):
        stage = stage_config(cfg, k, str(tmp_path / 'work'))
        model = MODELS.build(stage.model)
        assert not model.with_neck
        if k >= 2:
            assert stage.custom_hooks[-1] == dict(type='FreezeModulesHook', modules=['backbone'])
        batch = copy.deepcopy(data)
        if k % 2:  # Fast R-CNN: proposals as LoadProposals would give them
            for sample in batch['data_samples']:
                sample.proposals = InstanceData(bboxes=sample.gt_instances.bboxes + 1.0,
                                                scores=torch.ones(len(sample.gt_instances)))
        losses = model(**model.data_preprocessor(batch, True), mode='loss')
        # RPN losses are per-level lists (MMDetection); a single level here.
        assert all(torch.isfinite(v).all() for v in (losses[expected] if isinstance(losses[expected], list)
                                                      else [losses[expected]]))


@pytest.mark.slow
def test_alternating_single_level_without_neck(tiny_data, tmp_path):
    """The paper's layout (one stride-16 map, no neck) through the Python API, all four stages."""
    cfg = Config.fromfile(write_config(tmp_path, tiny_data, SINGLE_LEVEL))
    work = str(tmp_path / 'work')
    final = train_alternating(cfg, work)
    assert final == osp.join(work, 'faster_rcnn_final.pth')
    check_provenance(work, cfg, ('backbone.',))

    # Without resume an existing run is not overwritten; with it, finished stages are not rerun.
    with pytest.raises(AlternatingError, match='already holds stage1_rpn, stage2_rcnn, stage3_rpn, stage4_rcnn'):
        train_alternating(cfg, work)
    mtimes = [os.stat(p).st_mtime_ns for p in glob.glob(osp.join(work, 'stage*', '*'))]
    assert train_alternating(cfg, work, resume=True) == final
    assert [os.stat(p).st_mtime_ns for p in glob.glob(osp.join(work, 'stage*', '*'))] == mtimes


def test_stage_configs_and_schedules(tiny_data, tmp_path):
    """alternating_cfg overrides one stage's schedule; the others keep the config's own."""
    cfg = Config.fromfile(write_config(tmp_path, tiny_data, '''
alternating_cfg = dict(stages=[dict(), dict(train_cfg=dict(max_epochs=3)), dict(),
                               {'optim_wrapper.optimizer.lr': 0.01}])
'''))
    stages = [stage_config(cfg, k, str(tmp_path)) for k in range(4)]
    assert [s.model.type for s in stages] == ['RPN', 'FastRCNN', 'RPN', 'FastRCNN']
    assert [s.train_cfg.max_epochs for s in stages] == [1, 3, 1, 1]
    assert [s.optim_wrapper.optimizer.lr for s in stages] == [1e-3, 1e-3, 1e-3, 0.01]
    assert stages[0].model.backbone.init_cfg == cfg.model.backbone.init_cfg  # ImageNet init (none in the demo)
    assert stages[1].train_dataloader.dataset.proposal_file == osp.join(str(tmp_path), 'stage1_rpn',
                                                                        'proposals_train.pkl')
    assert stages[1].train_dataloader.dataset.pipeline[1] == dict(type='LoadProposals', num_max_proposals=None)
    assert all(s.val_dataloader is None and 'alternating_cfg' not in s for s in stages)

    # A wrapped training set (VOC07+12: RepeatDataset of a ConcatDataset): one proposal file each.
    leaf = cfg.train_dataloader.dataset.to_dict()
    cfg.train_dataloader.dataset = dict(type='RepeatDataset', times=2,
                                        dataset=dict(type='ConcatDataset', datasets=[leaf, leaf]))
    wrapped = stage_config(cfg, 3, str(tmp_path)).train_dataloader.dataset.dataset.datasets
    assert [d.proposal_file for d in wrapped] == [osp.join(str(tmp_path), 'stage3_rpn', f'proposals_train_{k}.pkl')
                                                  for k in (0, 1)]
    assert all(d.pipeline[1].type == 'LoadProposals' for d in wrapped)
    with pytest.raises(ValueError, match="needs a Faster R-CNN config"):
        bad = Config(dict(cfg.to_dict(), model=stages[0].model.to_dict()))
        train_alternating(bad, str(tmp_path / 'bad'))


@pytest.mark.slow
def test_kill_in_stage3_and_resume(tiny_data, tmp_path):
    """SIGKILL the tool while stage 3 trains; --resume skips stages 1-2 and finishes the run."""
    config = write_config(tmp_path, tiny_data, '''
alternating_cfg = dict(stages=[dict(), dict(), dict(train_cfg=dict(max_epochs=4)), dict()])
''')
    work = str(tmp_path / 'work')
    cmd = [sys.executable, 'tools/train_alternating.py', config, '--work-dir', work]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    deadline = time.time() + 600
    while not osp.exists(osp.join(work, 'stage3_rpn', 'last_checkpoint')):
        assert proc.poll() is None and time.time() < deadline, 'the run ended before stage 3 saved a checkpoint'
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not osp.exists(osp.join(work, 'stage3_rpn', 'model_final.pth')), 'killed too late: stage 3 had finished'
    before = {s: (os.stat(osp.join(work, s, 'model_final.pth')).st_mtime_ns, sorted(os.listdir(osp.join(work, s))))
              for s in ('stage1_rpn', 'stage2_rcnn')}

    done = subprocess.run(cmd + ['--resume'], cwd=REPO, capture_output=True, text=True, timeout=600, env=ENV)
    assert done.returncode == 0, done.stderr[-4000:]
    assert 'stage1_rpn: done' in done.stdout and 'stage2_rcnn: done' in done.stdout
    after = {s: (os.stat(osp.join(work, s, 'model_final.pth')).st_mtime_ns, sorted(os.listdir(osp.join(work, s))))
             for s in ('stage1_rpn', 'stage2_rcnn')}
    assert after == before  # not retrained: same checkpoint, no new log folders
    assert 'resumed epoch: ' in done.stdout + done.stderr and 'Epoch(train) [4]' in done.stdout + done.stderr
    check_provenance(work, Config.fromfile(config), ('backbone.', 'neck.'))
