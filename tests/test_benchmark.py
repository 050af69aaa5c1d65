"""Keeps the benchmarks from rotting: one tiny iteration of every mode through the CLI's functions.

Sizes and proposal counts are cut down (64x96 images, 50 proposals, 64 sampled RoIs) through the
same ``cfg_options`` route the CLI offers; both models read them, so the comparison stays equal.
"""
import importlib.util
import os

import pytest
import torch
from repo_paths import REPO_ROOT

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
    # Eager and one fast variant (bf16 where the CPU has it): every code path of the rows, in few steps.
    variants = ['fp32', 'amp-fast' if torch.ops.mkldnn._is_mkldnn_bf16_supported() else 'fp32-fast']
    args = bench.build_parser().parse_args(
        ['--size', '64x96', '--batch', '1', '--iters', '1', '--warmup', '0', '--variants', *variants,
         '--memory-variants', variants[1]])
    args.cfg_options = dict(TINY_CFG)
    args.memory_modes = ('infer',)   # one child pair keeps the test short; train uses the same code
    args.memory_parallel = True      # peaks are per process; side by side only saves wall time
    result = bench.run_benchmark(args, log=lambda *a: None, models=tiny_models)

    # Both models got the same weights (every tensor of ours has a torchvision counterpart).
    assert result['meta']['weights_copied'] > 250
    assert result['meta']['weights_not_shared'] == []
    assert result['meta']['cpu']

    for kind in ('infer', 'train'):
        for variant in variants:
            row = result[f'{kind}_b1_{variant}']
            for name in ('ours', 'torchvision'):
                assert _positive(row[name]['median_s']) and _positive(row[name]['imgs_per_s'])
                assert len(row[name]['times_s']) == 1
            assert _positive(row['ratio']) and _positive(row['ratio_vs_tv_fp32'])

    mem = result['memory'][f'infer_b1_{variants[1]}']
    for name in ('ours', 'torchvision'):
        assert _positive(mem[name]['peak_rss_mb'])
    assert _positive(mem['ratio'])
    table = bench.format_table(result)
    label = variants[1].replace('amp', 'bf16')
    assert f'inference s/batch, b1, {label}' in table and f'peak RSS MiB, infer b1, {label}' in table


def test_fast_variants_keep_the_models_outputs(bench, tiny_models):
    """The fast-path copies (BN folded, channels-last) compute what the eager models compute, so
    the rows time the same work; the originals are left untouched."""
    from benchmarks.inputs import make_batch, ours_data, tv_data
    from benchmarks.variants import apply_variant
    ours, tv, _ = tiny_models
    batch = make_batch(1, (64, 96))
    fast_ours = apply_variant('ours', ours, 'fp32-fast', 'infer')
    fast_tv = apply_variant('torchvision', tv, 'fp32-fast', 'infer')
    assert fast_ours is not ours and fast_tv is not tv
    with torch.no_grad():
        x = ours.data_preprocessor(ours_data(batch), False)['inputs']
        for a, b in zip(ours.eval().extract_feat(x), fast_ours.extract_feat(x)):
            torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4)
        images = [im.float() / 255 for im in tv_data(batch)['images']]
        tv.eval()
        imgs, _ = tv.transform(images)
        # Folding rounds per layer; the error grows with the activations, so the tolerance is
        # relative to each map's scale (seen on an AVX2 CPU: 1.3e-4 absolute on maps of ~1).
        for a, b in zip(tv.backbone(imgs.tensors).values(), fast_tv.backbone(imgs.tensors).values()):
            torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4 * max(1.0, float(a.abs().max())))
    assert any(type(m).__name__ == 'FrozenBatchNorm2d' for m in tv.modules())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) or type(m).__name__ == 'FrozenBatchNorm2d'
                   for m in fast_tv.backbone.modules())


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


def test_configs_benchmark_tiny(tmp_path):
    """Two demo configs on the same generated batches: one row each, the first the ratios' reference,
    the ratios the quotients of the medians."""
    from demo_data import make_tiny_demo_data

    from benchmarks import configs as bench_configs
    data = make_tiny_demo_data(tmp_path / 'data', num_train=4, num_val=4)
    paths = [os.path.join(REPO_ROOT, 'configs', 'faster_rcnn', 'faster-rcnn_r18_fpn_demo.py'),
             os.path.join(REPO_ROOT, 'configs', 'rpn', 'rpn_r18_fpn_demo.py')]
    result = bench_configs.run_configs(paths, str(data), rounds=1, warmup=0, amp=False, log=lambda *a: None)
    first, second = result['rows']
    assert [r['config'] for r in result['rows']] == paths
    assert first['train_ratio'] == first['infer_ratio'] == 1.0
    assert second['train_ratio'] == pytest.approx(second['train_s'] / first['train_s'])
    assert second['infer_ratio'] == pytest.approx(second['infer_s'] / first['infer_s'])
    assert result['train_batch'] == 2 and result['infer_batch'] == 4
    table = bench_configs.format_table(result)
    assert 'rpn_r18_fpn_demo.py' in table and result['cpu'] in table
