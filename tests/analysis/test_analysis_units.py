"""rcnn_plugins.analysis on hand-made inputs: log curves and timing, the confusion matrix, FLOP
counts against a counter written here, and the results loader refusing a malicious pickle."""
import json
import os
import pickle

import numpy as np
import pytest
import torch

from rcnn_plugins.analysis import (cal_train_time, calculate_confusion_matrix, detector_flops, load_json_log,
                                   load_results, plot_curve, torchvision_flops)
from rcnn_plugins.analysis.results_io import UnsafePickleError
from repo_paths import REPO_ROOT


def write_log(path, epochs):
    """A json log as mmengine writes it: ``epochs`` = {epoch: [(iter, loss_cls, time), ...]}, a val
    line with coco/bbox_mAP after each epoch."""
    with open(path, 'w') as f:
        for epoch, lines in epochs.items():
            for it, loss, t in lines:
                f.write(json.dumps(dict(lr=0.01, loss=loss * 2, loss_cls=loss, time=t, data_time=0.01,
                                        epoch=epoch, iter=it, step=it)) + '\n')
            f.write(json.dumps({'coco/bbox_mAP': 0.1 * epoch, 'coco/bbox_mAP_50': 0.2 * epoch,
                                'data_time': 0.0, 'time': 0.05, 'step': epoch}) + '\n')
    return str(path)


EPOCHS = {1: [(1, 1.5, 1.0), (2, 1.2, 0.2), (3, 1.0, 0.4)], 2: [(4, 0.9, 0.9), (5, 0.8, 0.5), (6, 0.7, 0.7)]}


def test_load_log_and_plot_values(tmp_path):
    path = write_log(tmp_path / 'a.json', EPOCHS)
    log = load_json_log(path)
    assert len(log['train']) == 6 and len(log['val']) == 2
    fig = plot_curve([path], ['loss_cls', 'bbox_mAP'], out=str(tmp_path / 'c.png'))
    train_ax, val_ax = fig.axes   # one subplot per x axis: iterations, epochs
    np.testing.assert_allclose(train_ax.lines[0].get_xydata(),
                               [[it, loss] for lines in EPOCHS.values() for it, loss, _ in lines])
    # 'bbox_mAP' names coco/bbox_mAP (not coco/bbox_mAP_50), plotted against the epoch.
    np.testing.assert_allclose(val_ax.lines[0].get_xydata(), [[1, 0.1], [2, 0.2]])
    assert train_ax.get_xlabel() == 'iteration' and val_ax.get_xlabel() == 'epoch'
    with pytest.raises(KeyError, match="'loss_rpn' is not in the log; it has: .*loss_cls"):
        plot_curve([path], ['loss_rpn'])


def test_plot_curve_rejects_text_log(tmp_path):
    path = tmp_path / 'run.log'
    path.write_text('12/02 15:51:44 - mmengine - INFO - Epoch(train) [1][1/4]\n')
    with pytest.raises(ValueError, match=r'run.log:1: not a json line .*vis_data/<timestamp>.json'):
        load_json_log(str(path))


def test_cal_train_time_by_hand(tmp_path):
    path = write_log(tmp_path / 'a.json', EPOCHS)
    t = cal_train_time(path)
    # The first line of each epoch is left out: epoch 1 (0.2 + 0.4) / 2, epoch 2 (0.5 + 0.7) / 2.
    assert t['per_epoch'] == pytest.approx({1: 0.3, 2: 0.6})
    assert t['avg_iter_time'] == pytest.approx(0.45) and t['std_over_epochs'] == pytest.approx(0.15)
    assert (t['slowest_epoch'], t['fastest_epoch']) == (2, 1)
    t = cal_train_time(path, include_outliers=True)
    assert t['per_epoch'] == pytest.approx({1: 1.6 / 3, 2: 0.7})


class FakeDataset:
    """What the confusion matrix reads of a dataset: classes and per-image instances."""

    def __init__(self, images):
        self.metainfo = dict(classes=('a', 'b', 'c'))
        self.images = images

    def __len__(self):
        return len(self.images)

    def get_data_info(self, idx):
        return dict(img_path=f'{idx}.jpg', instances=[
            dict(bbox=box, bbox_label=label, ignore_flag=ignore) for box, label, ignore in self.images[idx]])


def result(boxes, scores, labels):
    return dict(pred_instances=dict(bboxes=torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
                                    scores=torch.tensor(scores), labels=torch.tensor(labels)))


def test_confusion_matrix_hand_case():
    dataset = FakeDataset([
        # image 0: a at [0,0,10,10], b at [20,0,30,10], c at [40,0,50,10] (ignored)
        [([0, 0, 10, 10], 0, 0), ([20, 0, 30, 10], 1, 0), ([40, 0, 50, 10], 2, 1)],
        # image 1: two overlapping a boxes and a lone c
        [([0, 0, 10, 10], 0, 0), ([1, 0, 11, 10], 0, 0), ([60, 60, 70, 70], 2, 0)],
    ])
    results = [
        # a on a (TP); b detected as c (confusion); a detection in empty space as b (FP);
        # a low-score c on the ignored box (below score_thr, dropped).
        result([[0, 0, 10, 10], [20, 0, 30, 10], [80, 80, 90, 90], [40, 0, 50, 10]],
               [0.9, 0.8, 0.7, 0.1], [0, 2, 1, 2]),
        # one a box overlapping both a's (IoU 1 and 9/11 >= 0.5): two TPs; c missed.
        result([[0, 0, 10, 10]], [0.9], [0]),
    ]
    matrix = calculate_confusion_matrix(dataset, results, score_thr=0.3, tp_iou_thr=0.5)
    expected = np.zeros((4, 4), dtype=np.int64)
    expected[0, 0] = 3          # a: TP in image 0, two TPs in image 1
    expected[1, 2] = 1          # b seen as c
    expected[1, 3] = 1          # ... so b counts as missed too (no b detection matched it)
    expected[3, 1] = 1          # background detected as b
    expected[2, 3] = 1          # the lone c of image 1 missed
    np.testing.assert_array_equal(matrix, expected)

    # Class-wise NMS first: a duplicate a detection is removed, so it is no FP.
    dup = [result([[0, 0, 10, 10], [0, 0, 10, 9]], [0.9, 0.8], [0, 0]), result([], [], [])]
    without_nms = calculate_confusion_matrix(dataset, dup, tp_iou_thr=0.5)
    with_nms = calculate_confusion_matrix(dataset, dup, nms_iou_thr=0.5, tp_iou_thr=0.5)
    assert without_nms[0, 0] == 2 and with_nms[0, 0] == 1
    with pytest.raises(ValueError, match='1 results for a dataset of 2 images'):
        calculate_confusion_matrix(dataset, results[:1])


def hand_count(model, inputs, modules):
    """Multiply-adds of every Conv2d / Linear inside ``modules`` on one forward pass (forward hooks)."""
    total = [0]

    def hook(m, args, out):
        if isinstance(m, torch.nn.Conv2d):
            total[0] += out.numel() * m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
        else:
            total[0] += out.numel() * m.in_features
    handles = [m.register_forward_hook(hook) for mod in modules for m in mod.modules()
               if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.no_grad():
        model(*inputs)
    for h in handles:
        h.remove()
    return total[0]


def test_flops_against_a_hand_counter():
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from rcnn_plugins.registry import MODELS
    cfg = Config.fromfile(os.path.join(REPO_ROOT, 'configs', 'faster_rcnn',
                                       'faster-rcnn_r18_fpn_demo.py'))
    init_default_scope('rcnn_plugins')
    model = MODELS.build(cfg.model).eval()
    counts = detector_flops(model, (96, 128))
    x = torch.randn(1, 3, 96, 128, generator=torch.Generator().manual_seed(0))
    # Conv MACs plus BatchNorm: 2 per element in eval (normalise, affine), as fvcore counts it.
    bn = [0]
    handles = [m.register_forward_hook(lambda m, a, out: bn.__setitem__(0, bn[0] + out.numel()))
               for m in model.backbone.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    expected_backbone = hand_count(model, (x,), [model.backbone])
    for h in handles:
        h.remove()
    assert counts['backbone_flops'] == expected_backbone + 2 * bn[0]
    # The neck: its convs plus the top-down nearest upsampling (fvcore: one per output element),
    # whose outputs have the shapes of the lateral outputs of every level but the top one.
    upsampled = [0]
    handles = [conv.register_forward_hook(lambda m, a, out: upsampled.__setitem__(0, upsampled[0] + out.numel()))
               for conv in model.neck.lateral_convs[:-1]]
    expected_neck = hand_count(model, (x,), [model.neck])
    for h in handles:
        h.remove()
    assert counts['neck_flops'] == expected_neck + upsampled[0]
    # The R-CNN head: its FCs over the RoIs the extractor pooled.
    head = model.roi_head.bbox_head
    per_roi = sum(fc.in_features * fc.out_features for fc in head.shared_fcs) + \
        head.fc_cls.in_features * head.fc_cls.out_features + head.fc_reg.in_features * head.fc_reg.out_features
    assert counts['num_rois'] > 0
    assert counts['roi_head_flops'] == counts['num_rois'] * per_roi
    assert counts['params'] == sum(p.numel() for p in model.parameters())

    tv = torchvision_flops((96, 128))
    from torchvision.models.detection import fasterrcnn_resnet50_fpn
    tv_model = fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None)
    assert tv['params'] == sum(p.numel() for p in tv_model.parameters())
    assert tv['backbone_params'] == sum(p.numel() for p in tv_model.backbone.body.parameters())
    assert tv['neck_flops'] > 0 and tv['backbone_flops'] > counts['backbone_flops']


def test_results_loader_refuses_malicious_pickle(tmp_path):
    victim = tmp_path / 'pwned'

    class Evil:
        def __reduce__(self):
            return (open, (str(victim), 'w'))
    path = tmp_path / 'results.pkl'
    with open(path, 'wb') as f:
        pickle.dump([dict(pred_instances=dict(), x=Evil())], f)
    with pytest.raises(UnsafePickleError, match=r'results.pkl: refusing to load: the pickle asks for .*open'):
        load_results(str(path))
    assert not victim.exists()
    # The same file with pickle.load really runs the code: the test above tests something.
    with open(path, 'rb') as f:
        pickle.load(f)
    assert victim.exists()


def test_results_loader_reads_tensors_and_arrays(tmp_path):
    data = [dict(img_id=3, ori_shape=(4, 5), pred_instances=dict(bboxes=torch.arange(8.).reshape(2, 4),
                                                                  scores=np.array([0.5, 0.25], np.float32),
                                                                  labels=torch.tensor([1, 0])))]
    for protocol in (2, pickle.HIGHEST_PROTOCOL):
        path = tmp_path / f'r{protocol}.pkl'
        with open(path, 'wb') as f:
            pickle.dump(data, f, protocol=protocol)
        loaded = load_results(str(path))
        assert torch.equal(loaded[0]['pred_instances']['bboxes'], data[0]['pred_instances']['bboxes'])
        np.testing.assert_array_equal(loaded[0]['pred_instances']['scores'], [0.5, 0.25])
        assert loaded[0]['img_id'] == 3 and loaded[0]['ori_shape'] == (4, 5)


def test_results_loader_refuses_build_on_an_allowed_callable(tmp_path):
    """GLOBAL torch.storage._load_from_bytes + BUILD with a state dict would set attributes on the
    allowed callable; it has no __dict__, so the load fails and nothing is changed."""
    from rcnn_plugins.fileio import safe_pickle
    payload = (b'\x80\x02ctorch.storage\n_load_from_bytes\n'   # PROTO 2, GLOBAL
               b'}X\x0c\x00\x00\x00__qualname__X\x03\x00\x00\x00haxs'  # EMPTY_DICT, key, value, SETITEM
               b'b.')                                           # BUILD, STOP
    path = tmp_path / 'build.pkl'
    path.write_bytes(payload)
    with pytest.raises(Exception):
        load_results(str(path))
    assert type(safe_pickle._load_storage_from_bytes).__qualname__ == '_LoadStorageFromBytes'
    assert not hasattr(safe_pickle._load_storage_from_bytes, '__dict__')


def test_tools_turn_bad_inputs_into_one_line(tmp_path):
    """A missing file, a bad log line or an unknown key ends a tool with its message, no traceback."""
    from rcnn_plugins.analysis import build_random_detector
    from rcnn_plugins.cli.analysis_tools import eval_metric_main
    from rcnn_plugins.cli.errors import command

    @command
    def fails(err):
        raise err

    with pytest.raises(SystemExit, match=r"error: key 'x' is not in the log$"):
        fails(KeyError("key 'x' is not in the log"))
    with pytest.raises(RuntimeError):  # a bug is not the user's: its traceback stays
        fails(RuntimeError('bug'))
    root = REPO_ROOT
    config = os.path.join(root, 'configs', 'faster_rcnn', 'faster-rcnn_r18_fpn_demo.py')
    with pytest.raises(SystemExit, match=r'error: .*none\.pkl: no such predictions file'):
        eval_metric_main([config, str(tmp_path / 'none.pkl')])
    from mmengine.config import Config
    cfg = Config.fromfile(config)
    model = build_random_detector(cfg)
    assert not model.training and cfg.model.backbone.get('init_cfg') == Config.fromfile(config).model.backbone.get(
        'init_cfg')  # the caller's config is left as it was
