"""tools/analysis_tools/*.py as a user runs them, after a real (tiny) training and test run that
also logs to TensorBoard and MLflow. Each tool's image is read back and checked, and its numbers
are compared with an independent computation (COCOeval run here, the log's own lines)."""
import contextlib
import glob
import io
import json
import os
import os.path as osp
import pickle
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from repo_paths import REPO_ROOT

REPO = REPO_ROOT
DEMO = osp.join(REPO, 'configs', 'faster_rcnn', 'faster-rcnn_r18_fpn_demo.py')


def run_tool(*args, timeout=300):
    # MLflow >= 3.x refuses its plain-file store unless asked; a file store needs no server or
    # database, which is what a test (and a quick local run) wants.
    proc = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, PYTHONUNBUFFERED='1', OMP_NUM_THREADS='1',
                                   MLFLOW_ALLOW_FILE_STORE='true'))
    assert proc.returncode == 0, f'{args[0]} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}'
    return proc.stdout + proc.stderr


def data_options(root):
    return [f'train_dataloader.dataset.data_root={root}/', f'val_dataloader.dataset.data_root={root}/',
            f'test_dataloader.dataset.data_root={root}/', f'val_evaluator.ann_file={root}/annotations/val.json',
            f'test_evaluator.ann_file={root}/annotations/val.json']


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    """Tiny data; 2 epochs of the demo config logging to TensorBoard and MLflow; test --out."""
    tmp = tmp_path_factory.mktemp('analysis')
    root = str(tmp / 'data')
    run_tool('tools/make_demo_data.py', '--out', root, '--num-train', '8', '--num-val', '4',
             '--min-size', '64', '--max-size', '128')
    config = tmp / 'tracked.py'
    config.write_text(f"_base_ = '{DEMO}'\n"
                      "visualizer = dict(vis_backends=[dict(type='LocalVisBackend'),\n"
                      "                                dict(type='TensorboardVisBackend'),\n"
                      f"                                dict(type='MLflowVisBackend', tracking_uri='file://{tmp}/mlruns',\n"
                      "                                     exp_name='demo', run_name='tiny')])\n")
    work = str(tmp / 'work')
    run_tool('tools/train.py', str(config), '--work-dir', work, '--cfg-options', 'train_cfg.max_epochs=2',
             'train_cfg.val_interval=1', 'default_hooks.logger.interval=1', *data_options(root))
    results = str(tmp / 'results.pkl')
    run_tool('tools/test.py', DEMO, osp.join(work, 'epoch_2.pth'), '--work-dir', work, '--out', results,
             '--cfg-options', *data_options(root))
    log = sorted(glob.glob(osp.join(work, '*', 'vis_data', '2*.json')))[0]
    return dict(tmp=tmp, root=root, work=work, results=results, log=log)


def log_lines(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def read_png(path):
    img = cv2.imread(path)
    assert img is not None, f'{path} is not a readable image'
    assert img.std() > 5, f'{path} is blank'
    return img


def test_plot_curve_tool(run):
    out = str(run['tmp'] / 'curves.png')
    run_tool('tools/analysis_tools/analyze_logs.py', 'plot_curve', run['log'], '--keys', 'loss_cls', 'loss_bbox',
             '--out', out)
    img = read_png(out)
    assert img.shape == (480, 640, 3)   # one subplot (both keys are per-iteration), 6.4 x 4.8 in at 100 dpi
    from rcnn_plugins.analysis import plot_curve
    fig = plot_curve([run['log']], ['loss_cls', 'loss_bbox'])
    lines = [r for r in log_lines(run['log']) if 'loss_cls' in r]
    for line, key in zip(fig.axes[0].lines, ['loss_cls', 'loss_bbox']):
        np.testing.assert_allclose(line.get_xydata(), [[r['iter'], r[key]] for r in lines])
    out = run_tool('tools/analysis_tools/analyze_logs.py', 'cal_train_time', run['log'])
    times = [r['time'] for r in lines]
    expected = np.mean([np.mean(times[1:4]), np.mean(times[5:8])])   # 4 iterations per epoch, first left out
    assert f'average iter time: {expected:.4f} s/iter' in out


def coco_eval_direct(ann_file, results, classes):
    """COCO AP straight from pycocotools on the results file's detections (independent of our code)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(ann_file)
        ids = {c['name']: c['id'] for c in gt.dataset['categories']}
        dets = [dict(image_id=r['img_id'], category_id=ids[classes[int(label)]], score=float(score),
                     bbox=[float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])])
                for r in results for b, score, label in zip(r['pred_instances']['bboxes'].tolist(),
                                                            r['pred_instances']['scores'].tolist(),
                                                            r['pred_instances']['labels'].tolist())]
        ev = COCOeval(gt, gt.loadRes(dets), 'bbox')
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


def fake_results(run, tmp):
    """A results.pkl in tools/test.py's format whose detections are the ground truth, jittered, with
    a few shuffled scores and false positives: an AP well between 0 and 1."""
    with open(run['results'], 'rb') as f:
        template = pickle.load(f)
    gt = json.load(open(osp.join(run['root'], 'annotations', 'val.json')))
    rng = np.random.default_rng(0)
    results = []
    for sample in template:
        anns = [a for a in gt['annotations'] if a['image_id'] == sample['img_id']]
        boxes = np.array([[a['bbox'][0], a['bbox'][1], a['bbox'][0] + a['bbox'][2], a['bbox'][1] + a['bbox'][3]]
                          for a in anns]).reshape(-1, 4)
        boxes = np.concatenate([boxes + rng.normal(0, 3, boxes.shape), rng.uniform(0, 60, (3, 2)).repeat(2, 1)
                                + [0, 0, 20, 20]])
        labels = np.array([a['category_id'] - 1 for a in anns] + list(rng.integers(0, 4, 3)))
        labels[rng.random(len(labels)) < 0.2] = rng.integers(0, 4)
        sample = dict(sample, pred_instances=dict(bboxes=torch.tensor(boxes, dtype=torch.float32),
                                                  scores=torch.tensor(rng.random(len(boxes)), dtype=torch.float32),
                                                  labels=torch.tensor(labels)))
        results.append(sample)
    path = str(tmp / 'fake_results.pkl')
    with open(path, 'wb') as f:
        pickle.dump(results, f)
    return path, results


def test_eval_metric_and_pr_curve_tools(run, tmp_path):
    classes = ('rectangle', 'ellipse', 'triangle', 'cross')
    path, results = fake_results(run, tmp_path)
    ev = coco_eval_direct(osp.join(run['root'], 'annotations', 'val.json'), results, classes)
    assert 0.05 < ev.stats[1] < 0.95, 'the made-up detections should give a middling AP50'

    out = run_tool('tools/analysis_tools/eval_metric.py', DEMO, path, '--cfg-options', *data_options(run['root']))
    metrics = json.loads(out[out.index('{'):out.rindex('}') + 1])
    assert metrics['coco/bbox_mAP'] == round(float(ev.stats[0]), 3)
    assert metrics['coco/bbox_mAP_50'] == round(float(ev.stats[1]), 3)

    png = str(tmp_path / 'pr.png')
    run_tool('tools/analysis_tools/pr_curve.py', DEMO, path, '--out', png, '--cfg-options', *data_options(run['root']))
    assert read_png(png).shape == (600, 750, 3)
    numbers = json.load(open(str(tmp_path / 'pr.json')))
    cat_index = {c: i for i, c in enumerate(sorted(ev.params.catIds))}
    for k, name in enumerate(classes):
        p = ev.eval['precision'][0, :, cat_index[k + 1], 0, 2]
        if (p > -1).any():
            np.testing.assert_allclose(numbers['precision'][name], p)
            assert numbers['ap'][name] == pytest.approx(p.mean())
    present = [v for v in numbers['ap'].values() if v == v]
    assert np.mean(present) == pytest.approx(ev.stats[1])   # mean of the curves' areas is AP50

    # The real results file from tools/test.py loads through the safe loader unchanged.
    from rcnn_plugins.analysis import load_results
    real = load_results(run['results'])
    with open(run['results'], 'rb') as f:
        expected = pickle.load(f)
    assert torch.equal(real[0]['pred_instances']['bboxes'], expected[0]['pred_instances']['bboxes'])


def test_confusion_matrix_tool(run, tmp_path):
    path, results = fake_results(run, tmp_path)
    out_dir = str(tmp_path / 'cm')
    run_tool('tools/analysis_tools/confusion_matrix.py', DEMO, path, out_dir, '--score-thr', '0',
             '--cfg-options', *data_options(run['root']))
    numbers = json.load(open(osp.join(out_dir, 'confusion_matrix.json')))
    matrix = np.array(numbers['matrix'])
    assert matrix.shape == (5, 5) and numbers['classes'][-1] == 'background'
    # Every ground-truth box lands once in its row unless matched by several detections: the row
    # sums are at least the class counts of the annotation file.
    gt = json.load(open(osp.join(run['root'], 'annotations', 'val.json')))
    per_class = np.bincount([a['category_id'] - 1 for a in gt['annotations']], minlength=4)
    assert (matrix[:4].sum(axis=1) >= per_class).all()
    assert matrix.trace() > 0 and matrix[4, :4].sum() >= 3 * len(results) - matrix[:4, :4].sum()
    img = read_png(osp.join(out_dir, 'confusion_matrix.png'))
    assert img.shape[0] > 300 and img.shape[1] > 300


def test_browse_dataset_draws_augmented_ground_truth(run, tmp_path, coco_writer):
    # One 200x100 image with one box; the pipeline resizes to 176x88 and always flips.
    root = str(tmp_path / 'one')
    coco_writer(root, [(1, 'a.png', 200, 100)], [dict(id=1, image_id=1, category_id=1, bbox=[20, 30, 40, 40])],
                [(1, 'rectangle'), (2, 'ellipse'), (3, 'triangle'), (4, 'cross')], ann_name='annotations/train.json',
                img_dir='train')
    out_dir = str(tmp_path / 'browse')
    run_tool('tools/analysis_tools/browse_dataset.py', DEMO, '--output-dir', out_dir, '--not-show',
             '--cfg-options', f'train_dataloader.dataset.data_root={root}/',
             'train_dataloader.dataset.pipeline.3.prob=1.0')
    drawn = cv2.imread(osp.join(out_dir, 'a.png'))
    assert drawn.shape == (88, 176, 3)
    raw = cv2.resize(cv2.imread(osp.join(root, 'train', 'a.png')), (176, 88), interpolation=cv2.INTER_LINEAR)
    flipped = raw[:, ::-1]
    changed = np.abs(drawn.astype(int) - flipped.astype(int)).sum(axis=2) > 40
    # Box [20, 30, 60, 70] x 0.88 flipped: x in [123.2, 158.4], y in [26.4, 61.6]; its edges are drawn.
    assert changed[40:55, 122:125].any() and changed[40:55, 157:160].any()
    # Where the box was before flipping nothing is drawn: the flip reached the drawing.
    assert not changed[35:60, 15:20].any()


def test_tensorboard_and_mlflow_logged_the_losses(run):
    tensorboard = pytest.importorskip('tensorboard', reason='needs the track extra: pip install -e .[track]')
    del tensorboard
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    lines = [r for r in log_lines(run['log']) if 'loss' in r]
    events = glob.glob(osp.join(run['work'], '*', 'vis_data', 'events.out.tfevents.*'))
    assert events, 'TensorboardVisBackend wrote no event file'
    acc = EventAccumulator(osp.dirname(events[0]))
    acc.Reload()
    logged = {e.step: e.value for e in acc.Scalars('loss')}
    assert logged == pytest.approx({r['step']: r['loss'] for r in lines}, rel=1e-6)

    pytest.importorskip('mlflow', reason='needs the track extra: pip install -e .[track]')
    metric_files = glob.glob(str(run['tmp'] / 'mlruns' / '*' / '*' / 'metrics' / 'loss'))
    assert len(metric_files) == 1, 'MLflowVisBackend wrote no loss metric'
    rows = [line.split() for line in open(metric_files[0]).read().splitlines()]
    assert {int(step): float(value) for _, value, step in rows} == pytest.approx(
        {r['step']: r['loss'] for r in lines}, rel=1e-6)
