"""tools/demo.py sizes its schedule to a training budget: the arithmetic by hand, the bounds, and the
timing path on a tiny generated dataset."""
import importlib.util
import os.path as osp

import pytest
from demo_data import make_tiny_demo_data
from repo_paths import REPO_ROOT


def _demo():
    spec = importlib.util.spec_from_file_location('demo_tool', osp.join(REPO_ROOT, 'tools', 'demo.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize('step_s,expected', [
    (0.175, 10),  # 0.175 s x 149 steps x 1.05 = 27.4 s an epoch: 8 fit 240 s, the fewest is 10
    (0.107, 14),  # 16.7 s an epoch: 240 / 16.7 = 14.3
    (0.050, 16),  # 7.8 s an epoch: 30 would fit, the most is 16
])
def test_epochs_for_budget_by_hand(step_s, expected):
    demo = _demo()
    assert demo.epochs_for_budget(step_s, 149, 240, (10, 16)) == expected


def test_sized_epochs_times_the_demo_batches(tmp_path, monkeypatch, capsys):
    demo = _demo()
    data = make_tiny_demo_data(tmp_path / 'data', num_train=4, num_val=2)
    opts = [f'train_dataloader.dataset.data_root={data}/']
    config = osp.join(REPO_ROOT, 'configs', 'faster_rcnn', 'faster-rcnn_r18_fpn_demo.py')
    # bf16 has one schedule: nothing is timed.
    monkeypatch.setattr(demo, 'median_train_step', lambda *a, **k: pytest.fail('bf16 must not be timed'))
    assert demo.sized_epochs(config, opts, bf16=True, budget_s=240) == 16
    # fp32: 4 images in batches of 2 = 2 steps an epoch; at 0.5 s a step an epoch is 1.05 s: 11 fit 12 s.
    monkeypatch.setattr(demo, 'median_train_step', lambda cfg, amp, steps, warmup: 0.5)
    assert demo.sized_epochs(config, opts, bf16=False, budget_s=12) == 11
    assert '11 epochs for the 12 s training budget' in capsys.readouterr().out


def test_median_train_step_runs_the_real_step(tmp_path):
    """The timer trains the config's own model on its own batches and gives a positive median."""
    from mmengine.config import Config

    from rcnn_plugins.engine.step_timer import median_train_step
    data = make_tiny_demo_data(tmp_path / 'data', num_train=6, num_val=2)
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs', 'faster_rcnn', 'faster-rcnn_r18_fpn_demo.py'))
    cfg.merge_from_dict({'train_dataloader.dataset.data_root': f'{data}/'})
    assert median_train_step(cfg, amp=False, steps=2, warmup=1) > 0
    with pytest.raises(ValueError, match='gives 3 batches, need more than 3'):
        median_train_step(cfg, amp=False, steps=2, warmup=3)
