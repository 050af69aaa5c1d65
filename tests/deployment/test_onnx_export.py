"""Export for deployment: the export wrapper computes what ``predict`` computes; its ONNX graph
on onnxruntime gives the eager detections on the same preprocessed tensor (fixed and dynamic
sizes); ``tools/deployment/run_onnx.py`` on an image gives ``inference_detector``'s detections;
the ``torch.export`` program gives the eager ones."""
import json
import os
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from repo_paths import REPO_ROOT

pytest.importorskip('onnx', reason="ONNX export needs the 'export' extra: pip install -e '.[export]'")
pytest.importorskip('onnxruntime', reason="running ONNX files needs the 'export' extra: pip install -e '.[export]'")

REPO = REPO_ROOT
DEMO = osp.join(REPO, 'configs', 'faster_rcnn', 'faster-rcnn_r18_fpn_demo.py')
# Random weights score every class about equally: keep every detection (score_thr 0).
# The test pipeline resizes to 160, a multiple of 32, so a square image needs no padding and the
# exported graph (which clips to its input) and predict (which clips to the image) agree exactly.
OPTIONS = {'model.test_cfg.rcnn.score_thr': 0.0, 'model.test_cfg.rcnn.max_per_img': 100}
PIPELINE_SCALE = (160, 160)


def run_tool(*args):
    proc = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1'))
    assert proc.returncode == 0, f'{args[0]} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}'
    return proc.stdout


def assert_same_detections(got, expected):
    """(boxes, scores, labels) pairs: same labels, boxes within 0.01 px, scores within 1e-4."""
    boxes, scores, labels = (torch.as_tensor(np.asarray(a)) for a in got)
    e_boxes, e_scores, e_labels = (torch.as_tensor(np.asarray(a)) for a in expected)
    assert len(e_scores) > 0, 'no detections: the comparison would be empty'
    assert torch.equal(labels.long(), e_labels.long())
    assert (boxes - e_boxes).abs().max().item() < 0.01
    assert (scores - e_scores).abs().max().item() < 1e-4
    return (boxes - e_boxes).abs().max().item(), (scores - e_scores).abs().max().item()


@pytest.fixture(scope='module')
def demo(tmp_path_factory):
    from mmengine.config import Config

    from rcnn_plugins.apis import init_detector
    tmp = tmp_path_factory.mktemp('export')
    torch.manual_seed(0)
    cfg = Config.fromfile(DEMO)
    cfg.merge_from_dict(OPTIONS)
    cfg.test_dataloader.dataset.pipeline[1].scale = PIPELINE_SCALE
    model = init_detector(cfg, exact=True)  # the plain model: its state_dict is saved below
    with torch.no_grad():  # spread the random scores and boxes so detections differ
        model.rpn_head.rpn_cls.weight.normal_(0, 0.1)
        model.roi_head.bbox_head.fc_cls.weight.mul_(50)
        model.roi_head.bbox_head.fc_reg.weight.normal_(0, 0.05)
    ckpt = str(tmp / 'demo.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict(dataset_meta=dict(classes=cfg.classes))), ckpt)
    model.dataset_meta = dict(classes=cfg.classes)
    cfg_path = str(tmp / 'demo_cfg.py')
    cfg.dump(cfg_path)
    rng = np.random.RandomState(0)
    img = (cv2.resize(rng.rand(6, 6, 3), (128, 128)) * 200 + rng.rand(128, 128, 3) * 55).astype(np.uint8)
    img_path = str(tmp / 'img.png')
    cv2.imwrite(img_path, img)
    return dict(model=model, cfg=cfg, cfg_path=cfg_path, ckpt=ckpt, img=img_path, tmp=tmp)


def test_wrapper_equals_predict_and_onnx_equals_eager(demo):
    """Fixed 320 x 320 export through the tool; the wrapper is checked against ``predict``."""
    from rcnn_plugins.deployment.export import ONNXDetector
    from rcnn_plugins.deployment.export_wrapper import DetectorExportWrapper
    from rcnn_plugins.deployment.preprocess import preprocess
    from rcnn_plugins.structures import DetDataSample
    out = str(demo['tmp'] / 'static.onnx')
    run_tool('tools/deployment/export.py', demo['cfg_path'], demo['ckpt'], '--format', 'onnx', '--shape', '320', '320',
             '--out', out, '--cfg-options', 'model.test_cfg.rcnn.score_thr=0.0')
    detector = ONNXDetector(out)
    x, meta = preprocess(demo['img'], detector.meta['preprocess'])
    assert x.shape == (1, 3, 320, 320) and meta['img_shape'] == (320, 320)
    model = demo['model']
    with torch.no_grad():
        eager = DetectorExportWrapper(model)(x)
        pred = model.predict(x, [DetDataSample(metainfo=dict(img_shape=(320, 320), scale_factor=(1., 1.)))])
    pred = pred[0].pred_instances
    assert_same_detections(eager, (pred.bboxes, pred.scores, pred.labels))
    box_diff, score_diff = assert_same_detections(detector.run_tensor(x), eager)
    print(f'ONNX vs eager (fixed 320x320): max |box diff| {box_diff:.1e} px, max |score diff| {score_diff:.1e}')
    assert len(eager[2].unique()) > 1


def test_dynamic_onnx_and_run_onnx_tool(demo):
    """Dynamic export: other sizes than the traced one; run_onnx.py on an image file gives
    inference_detector's detections in the image's pixels, and draws them."""
    from rcnn_plugins.apis import inference_detector
    from rcnn_plugins.deployment.export import ONNXDetector, export_onnx
    from rcnn_plugins.deployment.export_wrapper import DetectorExportWrapper
    from rcnn_plugins.deployment.preprocess import preprocess
    model = demo['model']
    out = export_onnx(model, str(demo['tmp'] / 'dynamic.onnx'), (320, 320), dynamic=True)
    detector = ONNXDetector(out)
    torch.manual_seed(1)
    x = torch.randn(1, 3, 256, 416)
    with torch.no_grad():
        eager = DetectorExportWrapper(model)(x)
    assert_same_detections(detector.run_tensor(x), eager)

    # The preprocessing equals the model's own pipeline + data preprocessor.
    from mmengine.dataset import pseudo_collate

    from rcnn_plugins.apis.inference import _test_pipeline
    data = model.data_preprocessor(pseudo_collate([_test_pipeline(demo['cfg'], False)(dict(img_path=demo['img']))]))
    tensor, meta = preprocess(demo['img'], detector.meta['preprocess'])
    assert tensor.shape == data['inputs'].shape == (1, 3, 160, 160)
    assert (tensor - data['inputs']).abs().max().item() < 1e-5

    dets = str(demo['tmp'] / 'dets.json')
    vis = str(demo['tmp'] / 'vis.jpg')
    stdout = run_tool('tools/deployment/run_onnx.py', out, demo['img'], '--score-thr', '0', '--out', dets,
                      '--show', vis)
    records = json.load(open(dets))
    assert len(stdout.strip().splitlines()) == len(records)
    assert records[0]['class'] in demo['cfg'].classes
    expected = inference_detector(model, demo['img']).pred_instances
    assert_same_detections(([r['bbox'] for r in records], [r['score'] for r in records],
                            [r['label'] for r in records]),
                           (expected.bboxes, expected.scores, expected.labels))
    drawn = cv2.imread(vis)
    assert drawn.shape == (128, 128, 3) and (drawn != cv2.imread(demo['img'])).any()


def test_torch_export_program(demo):
    from rcnn_plugins.deployment.export import export_torch
    from rcnn_plugins.deployment.export_wrapper import DetectorExportWrapper
    out = export_torch(demo['model'], str(demo['tmp'] / 'model.pt2'), (320, 320), dynamic=True)
    extra = {'rcnn_plugins.json': ''}
    program = torch.export.load(out, extra_files=extra)
    assert json.loads(extra['rcnn_plugins.json'])['preprocess']['shape'] is None  # dynamic
    torch.manual_seed(2)
    for size in ((320, 320), (256, 416)):
        x = torch.randn(1, 3, *size)
        with torch.no_grad():
            assert_same_detections(program.module()(x), DetectorExportWrapper(demo['model'])(x))


def test_errors_are_clear(demo, tmp_path):
    from rcnn_plugins.deployment.export import ONNXDetector, export_onnx
    with pytest.raises(ValueError, match='multiples of 32'):
        export_onnx(demo['model'], str(tmp_path / 'x.onnx'), (300, 320))
    with pytest.raises(FileNotFoundError, match='no such ONNX file'):
        ONNXDetector(str(tmp_path / 'missing.onnx'))
