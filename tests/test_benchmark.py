"""Keeps the benchmarks from rotting: one tiny iteration of every mode through the CLI's functions.

Sizes and proposal counts are cut down (64x96 images, 50 proposals, 64 sampled RoIs) through the
same ``cfg_options`` route the CLI offers; both models read them, so the comparison stays equal.
"""
import importlib.util
import os

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Small proposal / RoI counts: at 64x96 the box head's two FC layers over 1000 RoIs would
# otherwise dominate the run time.
TINY_CFG = {
    'model.train_cfg.rpn_proposal.max_per_img': 50,
    'model.train_cfg.rpn_proposal.nms_pre': 100,
    'model.train_cfg.rcnn.sampler.num': 64,
    'model.test_cfg.rpn.max_per_img': 50,
    'model.test_cfg.rpn.nms_pre': 100,
}


def _load(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(REPO_ROOT, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def bench():
    return _load('benchmark')


@pytest.fixture(scope='module')
def tiny_models(bench):
    """Both models built once at the tiny settings and shared by the tests below."""
    cfg = bench.load_config(cfg_options=TINY_CFG)
    return bench.build_models(cfg, (64, 96))


@pytest.fixture(scope='module')
def components():
    return _load('benchmark_components')


def _positive(x):
    return isinstance(x, (int, float)) and x > 0


def test_tv_settings_follow_config(bench):
    cfg = bench.load_config()
    kw = bench.tv_kwargs_from_config(cfg, (800, 1333))
    assert kw['num_classes'] == 81
    assert (kw['min_size'], kw['max_size']) == (800, 1333)
    assert (kw['rpn_pre_nms_top_n_train'], kw['rpn_post_nms_top_n_train']) == (2000, 1000)
    assert (kw['rpn_pre_nms_top_n_test'], kw['rpn_post_nms_top_n_test']) == (1000, 1000)
    assert (kw['box_batch_size_per_image'], kw['box_positive_fraction']) == (512, 0.25)
    assert (kw['rpn_batch_size_per_image'], kw['rpn_positive_fraction']) == (256, 0.5)
    assert kw['box_detections_per_img'] == 100 and kw['box_score_thresh'] == 0.05
    assert (kw['box_nms_thresh'], kw['rpn_nms_thresh']) == (0.5, 0.7)


def test_benchmark_all_modes_tiny(bench, tiny_models):
    args = bench.build_parser().parse_args(
        ['--size', '64x96', '--batch', '1', '--iters', '1', '--warmup', '0'])
    args.cfg_options = dict(TINY_CFG)
    args.memory_modes = ('infer',)   # one child pair keeps the test short; train uses the same code
    args.memory_parallel = True      # peaks are per process; side by side only saves wall time
    result = bench.run_benchmark(args, log=lambda *a: None, models=tiny_models)

    # Both models got the same weights (every tensor of ours has a torchvision counterpart).
    assert result['meta']['weights_copied'] > 250
    assert result['meta']['weights_not_shared'] == []

    inf = result['infer_b1']
    for name in ('ours', 'torchvision'):
        assert _positive(inf[name]['median_s']) and _positive(inf[name]['imgs_per_s'])
        assert len(inf[name]['times_s']) == 1
    assert _positive(inf['ratio'])

    tr = result['train_b1']
    assert _positive(tr['ours']['median_s']) and _positive(tr['torchvision']['median_s'])
    assert _positive(tr['speedup'])

    mem = result['memory']['infer_b1']
    for name in ('ours', 'torchvision'):
        assert _positive(mem[name]['peak_rss_mb'])
    assert _positive(mem['ratio'])
    assert bench.format_table(result)


def test_benchmark_profile_tiny(bench, tiny_models):
    args = bench.build_parser().parse_args(
        ['--size', '64x96', '--batch', '1', '--profile', '--profile-iters', '1', '--only', 'infer'])
    args.cfg_options = dict(TINY_CFG)
    result = bench.run_benchmark(args, log=lambda *a: None, models=tiny_models)
    for key in ('ours_infer', 'torchvision_infer'):
        prof = result['profile'][key]
        assert prof['ops'] and _positive(prof['total_self_cpu_ms'])
        assert any(k.startswith('STAGE backbone') for k in prof['stages'])


def test_components_tiny(components):
    args = components.build_parser().parse_args(
        ['--size', '64x96', '--batch', '2', '--num-gts', '5', '--iters', '1', '--warmup', '0'])
    result = components.run_components(args, log=lambda *a: None)
    for row in result['targets_check']:
        assert row['assign_mismatches'] == 0
        assert row['pos']['ours'] == row['pos']['plain'] and row['neg']['ours'] == row['neg']['plain']
    for key in ('targets', 'proposals_train', 'proposals_test'):
        meds = result[key]['median_ms']
        assert all(_positive(v) for v in meds.values())
        assert all(_positive(v) for v in result[key]['ratio_peer_over_ours'].values())
    assert components.format_table(result)
