"""The alternating-training stage table read by name: what initialises each stage, what is frozen,
where proposals come from, and which stage's weights land in the final checkpoint, checked with
hand-made stage checkpoints whose tensors say where they came from (no training)."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from rcnn_plugins.apis import alternating
from rcnn_plugins.apis.alternating import STAGE_TABLE, AlternatingError, get_stage

CONFIG = dict(
    model=dict(type='FasterRCNN', backbone=dict(type='ResNet', init_cfg=dict(type='Pretrained', checkpoint='x')),
               neck=dict(type='FPN'), rpn_head=dict(type='RPNHead'), roi_head=dict(type='StandardRoIHead'),
               train_cfg=dict(rpn={}, rpn_proposal={}, rcnn={}), test_cfg=dict(rpn={}, rcnn={})),
    train_dataloader=dict(dataset=dict(type='CocoDataset', pipeline=[dict(type='LoadImageFromFile'),
                                                                     dict(type='PackDetInputs')])))


def test_the_table_is_the_papers_four_steps():
    assert [(s.name, s.kind, s.frozen, s.proposals_from) for s in STAGE_TABLE] == [
        ('stage1_rpn', 'rpn', False, None), ('stage2_rcnn', 'rcnn', False, 'stage1_rpn'),
        ('stage3_rpn', 'rpn', True, None), ('stage4_rcnn', 'rcnn', True, 'stage3_rpn')]
    assert get_stage('stage3_rpn') is get_stage(2) is STAGE_TABLE[2]
    with pytest.raises(AlternatingError, match="no stage 'stage5'"):
        get_stage('stage5')


def test_stage_configs_follow_the_table(tmp_path):
    cfg = Config(CONFIG)
    work = str(tmp_path)
    for stage in STAGE_TABLE:
        config = alternating.stage_config(cfg, stage.name, work)
        assert config.model.type == ('RPN' if stage.kind == 'rpn' else 'FastRCNN')
        assert (config.model.backbone.init_cfg is None) == bool(stage.init)
        assert (dict(type='FreezeModulesHook', modules=['backbone', 'neck']) in (config.get('custom_hooks') or [])) \
            == stage.frozen
        leaf = config.train_dataloader.dataset
        if stage.proposals_from:
            assert leaf.proposal_file == osp.join(work, stage.proposals_from, 'proposals_train.pkl')
            assert [t['type'] for t in leaf.pipeline] == ['LoadImageFromFile', 'LoadProposals', 'PackDetInputs']
        else:
            assert 'proposal_file' not in leaf


def _fake_stage(work, name, tag):
    """A stage checkpoint whose every tensor holds ``tag`` (which stage it came from)."""
    keys = (['bbox_head.rpn_conv.weight'] if name.endswith('rpn') else ['roi_head.bbox_head.fc_cls.weight'])
    state = {k: torch.full((2, ), float(tag)) for k in ['backbone.conv1.weight', 'neck.lateral.weight'] + keys}
    path = osp.join(work, name, 'model_final.pth')
    alternating._save_atomic(dict(meta=dict(dataset_meta=dict(classes=('a', ))), state_dict=state), path)


def test_init_weights_and_final_checkpoint_come_from_the_named_stages(tmp_path):
    cfg = Config(CONFIG)
    work = str(tmp_path)
    for tag, stage in enumerate(STAGE_TABLE, 1):
        _fake_stage(work, stage.name, tag)
    assert alternating._init_weights_file(cfg, 'stage1_rpn', work) is None
    init3 = torch.load(alternating._init_weights_file(cfg, 'stage3_rpn', work))['state_dict']
    assert {k: v[0].item() for k, v in init3.items()} == {'backbone.conv1.weight': 2, 'neck.lateral.weight': 2}
    init4 = torch.load(alternating._init_weights_file(cfg, 'stage4_rcnn', work))['state_dict']
    assert {k: v[0].item() for k, v in init4.items()} == {
        'backbone.conv1.weight': 3, 'neck.lateral.weight': 3, 'roi_head.bbox_head.fc_cls.weight': 2}

    # Frozen stages that changed the shared layers are caught ...
    with pytest.raises(RuntimeError, match='stage3_rpn changed the shared layers'):
        alternating.assemble_final(cfg, work)
    # ... and with them identical the final checkpoint takes each part from FINAL_PARTS.
    for stage in STAGE_TABLE[2:]:
        path = osp.join(work, stage.name, 'model_final.pth')
        ckpt = torch.load(path)
        ckpt['state_dict'].update({k: torch.full((2, ), 2.) for k in ('backbone.conv1.weight', 'neck.lateral.weight')})
        torch.save(ckpt, path)
    final = torch.load(alternating.assemble_final(cfg, work))
    assert {k: v[0].item() for k, v in final['state_dict'].items()} == {
        'backbone.conv1.weight': 2, 'neck.lateral.weight': 2, 'rpn_head.rpn_conv.weight': 3,
        'roi_head.bbox_head.fc_cls.weight': 4}
    assert final['meta']['alternating'] == dict(shared='stage2_rcnn (= stage3_rpn = stage4_rcnn)',
                                                rpn_head='stage3_rpn', roi_head='stage4_rcnn')
