"""Extending rcnn_plugins without touching it: a user's sampler registered from their own module and
selected from a config (``custom_imports``), the registry tree under mmengine's roots, and lazy
registration (building from mmengine's root registry in a fresh interpreter)."""
import os
import subprocess
import sys
import textwrap

import mmengine.registry
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

from rcnn_plugins import registry
from rcnn_plugins.structures import DetDataSample
from repo_paths import REPO_ROOT

ROOT = REPO_ROOT
CFG_PATH = os.path.join(ROOT, 'configs', '_base_', 'models', 'faster-rcnn_r50_fpn.py')

PLUGIN = '''
"""A user's sampler: RandomSampler that keeps at most `max_pos` positives and records every call."""
from rcnn_plugins.models.task_modules.samplers import RandomSampler
from rcnn_plugins.registry import TASK_UTILS


@TASK_UTILS.register_module()
class {name}(RandomSampler):
    calls = []

    def __init__(self, max_pos=1, **kwargs):
        super().__init__(**kwargs)
        self.max_pos = max_pos

    def sample(self, assign_result, pred_instances, gt_instances, **kwargs):
        result = super().sample(assign_result, pred_instances, gt_instances, **kwargs)
        # Distinct behaviour: truncate the positives (negatives are kept).
        result.pos_inds = result.pos_inds[:self.max_pos]
        result.pos_assigned_gt_inds = result.pos_assigned_gt_inds[:self.max_pos]
        result.pos_priors = result.pos_priors[:self.max_pos]
        result.pos_gt_bboxes = result.pos_gt_bboxes[:self.max_pos]
        result.pos_gt_labels = result.pos_gt_labels[:self.max_pos]
        result.pos_is_gt = result.pos_is_gt[:self.max_pos]
        type(self).calls.append((result.pos_priors.size(0), result.neg_priors.size(0)))
        return result
'''


def test_registries_are_scoped_children_of_mmengine_roots():
    assert registry.MODELS.parent is mmengine.registry.MODELS
    assert registry.TASK_UTILS.parent is mmengine.registry.TASK_UTILS
    assert registry.MODELS.scope == 'rcnn_plugins' and registry.TASK_UTILS.scope == 'rcnn_plugins'
    assert mmengine.registry.MODELS.children['rcnn_plugins'] is registry.MODELS


def test_plugin_sampler_from_custom_imports(tmp_path, monkeypatch):
    name = 'MaxOnePositiveSampler'
    (tmp_path / 'my_sampler_plugin.py').write_text(PLUGIN.format(name=name))
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / 'user_cfg.py').write_text(textwrap.dedent(f'''
        _base_ = [{CFG_PATH!r}]
        default_scope = 'rcnn_plugins'
        custom_imports = dict(imports=['my_sampler_plugin'], allow_failed_imports=False)
        model = dict(
            backbone=dict(depth=18, init_cfg=None),
            neck=dict(in_channels=[64, 128, 256, 512]),
            roi_head=dict(bbox_head=dict(num_classes=2, fc_out_channels=64)),
            train_cfg=dict(rcnn=dict(sampler=dict(type='{name}', max_pos=1, num=64))))
    '''))
    # Config.fromfile processes custom_imports (as tools/train.py and Runner.from_cfg do).
    cfg = Config.fromfile(str(tmp_path / 'user_cfg.py'))
    assert 'my_sampler_plugin' in sys.modules
    plugin_cls = sys.modules['my_sampler_plugin'].MaxOnePositiveSampler
    init_default_scope(cfg.default_scope)
    model = registry.MODELS.build(cfg.model)
    assert isinstance(model.roi_head.bbox_sampler, plugin_cls)
    assert model.roi_head.bbox_sampler.num == 64
    # The RPN still uses the stock sampler.
    assert type(model.rpn_head.sampler).__name__ == 'RandomSampler'

    img = torch.randint(0, 256, (3, 96, 128), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    s = DetDataSample(metainfo=dict(img_shape=(96, 128), ori_shape=(96, 128), scale_factor=(1.0, 1.0)))
    # Two gt boxes: RandomSampler with add_gt_as_proposals would give >= 2 positives.
    s.gt_instances = InstanceData(bboxes=torch.tensor([[10., 10., 60., 50.], [60., 40., 120., 90.]]),
                                  labels=torch.tensor([0, 1]))
    data = model.data_preprocessor(dict(inputs=[img], data_samples=[s]), True)
    model.train()
    plugin_cls.calls.clear()
    losses = model(**data, mode='loss')
    assert len(plugin_cls.calls) == 1
    num_pos, num_neg = plugin_cls.calls[0]
    assert num_pos == 1 and num_neg > 0
    # The truncated sample reached the loss: 1 positive + negatives RoIs were scored; the box loss
    # is averaged over exactly those RoIs.
    assert torch.isfinite(losses['loss_cls']) and torch.isfinite(losses['loss_bbox'])


def _fresh_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-c', textwrap.dedent(code)], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)


FRESH_PRELUDE = f'''
import sys
from mmengine.config import Config
from mmengine.registry import MODELS, DefaultScope
cfg = Config.fromfile({CFG_PATH!r}).model
cfg.backbone.update(depth=18, init_cfg=None)
cfg.neck.in_channels = [64, 128, 256, 512]
assert 'rcnn_plugins.registry' not in sys.modules and 'rcnn_plugins.models' not in sys.modules
'''


def test_scoped_type_from_mmengine_root_in_fresh_interpreter():
    """``type='rcnn_plugins.FasterRCNN'`` through mmengine's root MODELS, nothing imported beforehand and
    no default scope: mmengine imports ``rcnn_plugins.registry`` for the scope, then the registry's
    ``locations`` import ``rcnn_plugins.models``."""
    proc = _fresh_python(FRESH_PRELUDE + '''
assert DefaultScope.get_current_instance() is None
cfg.type = 'rcnn_plugins.FasterRCNN'
model = MODELS.build(cfg)
print(type(model).__module__, type(model).__name__, type(model.data_preprocessor).__name__,
      type(model.rpn_head).__name__, type(model.roi_head.bbox_head).__name__)
''')
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ['rcnn_plugins.models.detectors.faster_rcnn', 'FasterRCNN', 'DetDataPreprocessor',
                                   'RPNHead', 'Shared2FCBBoxHead']


def test_default_scope_build_in_fresh_interpreter():
    """``type='FasterRCNN'`` with the default scope 'rcnn_plugins' (what ``default_scope`` in a config
    does in Runner), again with nothing imported beforehand."""
    proc = _fresh_python(FRESH_PRELUDE + '''
DefaultScope.get_instance('test', scope_name='rcnn_plugins')
model = MODELS.build(cfg)
print(type(model).__module__, type(model.data_preprocessor).__name__)
''')
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ['rcnn_plugins.models.detectors.faster_rcnn', 'DetDataPreprocessor']
