"""engine.runner: safe loading is installed by the explicit setup_runtime() call (not by importing
anything), once; the replaced-names log is true of the registries and printed once."""
import subprocess
import sys

from rcnn_plugins import registry
from rcnn_plugins.engine import REPLACED_NAMES, runner


def test_importing_installs_nothing_and_setup_runtime_does():
    script = '''
import rcnn_plugins, rcnn_plugins.engine, rcnn_plugins.fileio, rcnn_plugins.apis, rcnn_plugins.cli
from mmengine.runner.checkpoint import CheckpointLoader
def owner():
    return CheckpointLoader._schemes[''].__module__
assert not owner().startswith('rcnn_plugins'), owner()
from rcnn_plugins.engine import setup_runtime
from rcnn_plugins.fileio import install_safe_loading
setup_runtime()
assert owner() == 'rcnn_plugins.fileio.checkpoint_schemes', owner()
assert install_safe_loading() is False  # idempotent: already installed
print('ok')
'''
    proc = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip().endswith('ok'), proc.stderr[-3000:]


def test_replaced_names_are_exactly_ours_that_shadow_mmengine_or_mmcv():
    """Every name of ours that also exists in mmengine's parent registry (where mmcv registers its
    transforms) is in REPLACED_NAMES, and every entry there really is such a name."""
    from mmengine.registry import init_default_scope
    init_default_scope('rcnn_plugins')
    wanted = {'HOOKS': registry.HOOKS, 'LOOPS': registry.LOOPS, 'TRANSFORMS': registry.TRANSFORMS,
              'DATASETS': registry.DATASETS}
    shadowing = set()
    for reg in registry._ALL:
        reg.import_from_location()
        parent = reg.parent
        if parent is not None:
            parent.import_from_location()
        for name in reg.module_dict:
            # A class registered in both under one name (DCN for mmcv's build_conv_layer) replaces nothing.
            if parent is not None and name in parent.module_dict and parent.module_dict[name] is not reg.module_dict[name]:
                shadowing.add((reg, name))
    declared = {(wanted[r], n) for r, n, _ in REPLACED_NAMES}
    assert shadowing == declared


def test_setup_runtime_logs_once(monkeypatch):
    lines = []
    monkeypatch.setattr(runner, '_logged', False)
    monkeypatch.setattr(runner, 'print_log', lambda msg, **kw: lines.append(msg))
    runner.setup_runtime()
    runner.setup_runtime()
    assert len(lines) == 1
    for reg, name, _ in REPLACED_NAMES:
        assert f'{reg}.{name}' in lines[0]


def test_release_process_group_destroys_the_group_and_is_a_no_op_without_one(tmp_path):
    """A finished distributed run's group is destroyed (tools/train.py and tools/test.py call it)."""
    import torch.distributed as dist

    from rcnn_plugins.engine import release_process_group
    assert release_process_group() is False  # no group: nothing happens
    assert not dist.is_initialized()
    dist.init_process_group('gloo', init_method=f'file://{tmp_path / "store"}', rank=0, world_size=1)
    assert dist.is_initialized()
    assert release_process_group() is True
    assert not dist.is_initialized()
    assert release_process_group() is False  # twice: still fine
