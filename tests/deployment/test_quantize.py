"""tools/deployment/quantize.py end to end on a tiny generated dataset: mAP before/after and the
speed-up are printed, the int8 file is written within --max-drop and refused beyond it, and the
int8 file runs through DetInferencer. (Random weights: this checks the tool; the accuracy cost on a
trained model is measured by tools/benchmark.py --cpu-table.)"""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from repo_paths import REPO_ROOT

REPO = REPO_ROOT
DEMO = osp.join(REPO, 'configs', 'faster_rcnn', 'faster-rcnn_r18_fpn_demo.py')


def _run(*args):
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1'))


@pytest.mark.slow
def test_quantize_tool(tmp_path):
    pytest.importorskip('onnxruntime')
    pytest.importorskip('onnx')
    from rcnn_plugins.apis import DetInferencer, init_detector
    data = str(tmp_path / 'data')
    assert _run('tools/make_demo_data.py', '--out', data, '--num-train', '8', '--num-val', '4').returncode == 0
    torch.manual_seed(0)
    model = init_detector(DEMO, exact=True)
    ckpt = str(tmp_path / 'w.pth')
    torch.save({'state_dict': model.state_dict()}, ckpt)
    opts = ['--cfg-options', *(f'{k}_dataloader.dataset.data_root={data}/' for k in ('train', 'val', 'test')),
            *(f'{k}_evaluator.ann_file={data}/annotations/val.json' for k in ('val', 'test')),
            'model.test_cfg.rcnn.score_thr=0.0']
    refused = _run('tools/deployment/quantize.py', DEMO, ckpt, '--calib-images', '4', '--max-drop', '-100',
                   '--out', str(tmp_path / 'refused.onnx'), *opts)
    assert refused.returncode == 1 and 'refused' in refused.stdout, refused.stdout + refused.stderr
    assert not osp.exists(tmp_path / 'refused.onnx')
    out = str(tmp_path / 'int8.onnx')
    done = _run('tools/deployment/quantize.py', DEMO, ckpt, '--calib-images', '4', '--out', out, *opts)
    assert done.returncode == 0, done.stdout + done.stderr
    assert 'speed-up' in done.stdout and 'coco/bbox_mAP ' in done.stdout
    import onnx
    ops = {n.op_type for n in onnx.load(out).graph.node}
    assert {'QuantizeLinear', 'DequantizeLinear'} <= ops
    inferencer = DetInferencer(DEMO, ckpt, backend='onnxruntime', onnx_path=out, show_progress=False)
    assert inferencer._backend.path == out
