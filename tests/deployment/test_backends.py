"""Exported backends: onnxruntime's and OpenVINO's detections equal eager ``test_step``'s on the
same data (boxes within 0.05 px, scores within 1e-3), the export is cached next to the checkpoint
and rebuilt when a weight changes, and a missing runtime names its extra."""
import os
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate
from repo_paths import REPO_ROOT

REPO = REPO_ROOT
DEMO = osp.join(REPO, 'configs', 'faster_rcnn', 'faster-rcnn_r18_fpn_demo.py')
OPTIONS = {'model.test_cfg.rcnn.score_thr': 0.0, 'model.test_cfg.rcnn.max_per_img': 100}


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    pytest.importorskip('onnx')
    from rcnn_plugins.apis import init_detector
    from rcnn_plugins.apis.inference import _test_pipeline
    tmp = tmp_path_factory.mktemp('backends')
    torch.manual_seed(0)
    model = init_detector(DEMO, cfg_options=OPTIONS, exact=True)
    with torch.no_grad():  # spread the random scores and boxes so detections differ
        model.rpn_head.rpn_cls.weight.normal_(0, 0.1)
        model.roi_head.bbox_head.fc_cls.weight.mul_(50)
        model.roi_head.bbox_head.fc_reg.weight.normal_(0, 0.05)
    ckpt = str(tmp / 'demo.pth')
    torch.save(dict(state_dict=model.state_dict()), ckpt)
    rng = np.random.RandomState(0)
    # 150 x 200: resized to 120 x 160 by the demo pipeline, padded to 128 x 160 (clipping matters)
    imgs = [(cv2.resize(rng.rand(6, 6, 3), (200, 150)) * 255).astype(np.uint8),
            (cv2.resize(rng.rand(5, 7, 3), (140, 180)) * 255).astype(np.uint8)]
    pipeline = _test_pipeline(model.cfg, True)
    data = [pipeline(dict(img=img, img_id=i)) for i, img in enumerate(imgs)]
    return dict(model=model, ckpt=ckpt, data=data, tmp=tmp)


def _eager(model, item):
    with torch.no_grad():
        return model.test_step(pseudo_collate([item]))[0].pred_instances


@pytest.mark.parametrize('backend', ['onnxruntime', 'openvino'])
def test_backend_equals_eager(setup, backend):
    pytest.importorskip(backend)
    from rcnn_plugins.deployment.backends import BackendPredictor
    predictor = BackendPredictor(setup['model'], backend, setup['ckpt'])
    assert predictor.path.startswith(setup['ckpt'] + '.exports' + os.sep)
    for item in setup['data']:
        expected = _eager(setup['model'], item)
        got = predictor.test_step(pseudo_collate([item]))[0].pred_instances
        assert len(expected) > 10 and len(expected.labels.unique()) > 1
        assert len(got) == len(expected)
        assert torch.equal(got.labels, expected.labels)
        assert (got.bboxes - expected.bboxes).abs().max() < 0.05
        assert (got.scores - expected.scores).abs().max() < 1e-3


def test_cache_follows_the_checkpoint(setup, tmp_path):
    from rcnn_plugins.deployment.backends import BackendPredictor, cache_path
    model = setup['model']
    ckpt = str(tmp_path / 'w.pth')
    state = {k: v.clone() for k, v in model.state_dict().items()}
    torch.save(dict(state_dict=state), ckpt)
    first = BackendPredictor(model, 'onnxruntime', ckpt)
    mtime = os.path.getmtime(first.path)
    assert BackendPredictor(model, 'onnxruntime', ckpt).path == first.path  # reused, not rewritten
    assert os.path.getmtime(first.path) == mtime
    state['roi_head.bbox_head.fc_cls.bias'][0] += 1.0  # a real change of one weight
    torch.save(dict(state_dict=state), ckpt)
    assert cache_path(model.cfg, ckpt) != first.path


def test_missing_extra_names_it(tmp_path):
    # A site directory whose openvino / onnxruntime cannot be imported.
    for name in ('openvino', 'onnxruntime'):
        (tmp_path / name).mkdir()
        (tmp_path / name / '__init__.py').write_text(f"raise ImportError('No module named {name}')\n")
    code = ('from rcnn_plugins.deployment.backends import require_backend\n'
            'for b in ("openvino", "onnxruntime"):\n'
            '    try:\n        require_backend(b)\n'
            '    except ImportError as e:\n        print(e)\n')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, PYTHONPATH=f'{tmp_path}{os.pathsep}{REPO}')).stdout
    assert "pip install 'rcnn_plugins[openvino]'" in out
    assert "pip install 'rcnn_plugins[export]'" in out


def test_test_step_batch_equals_batch_of_one(setup):
    """Images of different padded sizes in one batch get their batch-of-one predictions."""
    model, data = setup['model'], setup['data']
    assert data[0]['inputs'].shape[-2:] != data[1]['inputs'].shape[-2:]
    with torch.no_grad():
        batch = model.test_step(pseudo_collate(data))
    for item, got in zip(data, batch):
        alone = _eager(model, item)
        assert torch.equal(got.pred_instances.labels, alone.labels)
        torch.testing.assert_close(got.pred_instances.scores, alone.scores)
        torch.testing.assert_close(got.pred_instances.bboxes, alone.bboxes)


@pytest.mark.slow
def test_tools_test_backend_gives_eager_results(setup, tmp_path):
    """tools/test.py --backend onnxruntime on a generated dataset: the dumped detections of every
    image equal the eager run's, and so do the metrics."""
    import pickle
    pytest.importorskip('onnxruntime')
    data = str(tmp_path / 'data')
    run = dict(cwd=REPO, capture_output=True, text=True, timeout=900, env=dict(os.environ, PYTHONPATH=REPO))
    assert subprocess.run([sys.executable, 'tools/make_demo_data.py', '--out', data, '--num-train', '2',
                           '--num-val', '6'], **run).returncode == 0
    opts = ['--cfg-options', *(f'{k}_dataloader.dataset.data_root={data}/' for k in ('val', 'test')),
            *(f'{k}_evaluator.ann_file={data}/annotations/val.json' for k in ('val', 'test')),
            *(f'{k}={v}' for k, v in OPTIONS.items())]
    results = {}
    for backend in ('pytorch', 'onnxruntime'):
        out = str(tmp_path / f'{backend}.pkl')
        proc = subprocess.run([sys.executable, 'tools/test.py', DEMO, setup['ckpt'], '--backend', backend, '--exact',
                               '--work-dir', str(tmp_path / backend), '--out', out, *opts], **run)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        with open(out, 'rb') as f:
            results[backend] = pickle.load(f)
    assert len(results['pytorch']) == 6
    for a, b in zip(results['pytorch'], results['onnxruntime']):
        pa, pb = a['pred_instances'], b['pred_instances']
        assert len(pa['scores']) == len(pb['scores']) > 0
        assert torch.equal(pa['labels'], pb['labels'])
        assert (pa['bboxes'] - pb['bboxes']).abs().max() < 0.05
        assert (pa['scores'] - pb['scores']).abs().max() < 1e-3
