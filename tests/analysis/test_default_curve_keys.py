"""analyze_logs plot_curve without --keys plots what the log has over iterations: the loss terms of
the training lines (a run that validates once would otherwise be one dot of bbox_mAP)."""
import json

from rcnn_plugins.analysis import default_curve_keys, load_json_log
from rcnn_plugins.analysis.logs import curve


def write_log(path, lines):
    path.write_text('\n'.join(json.dumps(line) for line in lines) + '\n')
    return str(path)


def test_loss_terms_in_first_seen_order(tmp_path):
    log = load_json_log(write_log(tmp_path / 'a.json', [
        dict(lr=0.02, loss=1.5, loss_rpn_cls=0.5, loss_cls=1.0, time=0.3, epoch=1, iter=10, step=10),
        dict(lr=0.02, loss=1.2, loss_rpn_cls=0.4, loss_cls=0.7, loss_bbox=0.1, time=0.3, epoch=1, iter=20, step=20),
        {'coco/bbox_mAP': 0.1, 'step': 1}]))
    keys = default_curve_keys(log)
    assert keys == ['loss', 'loss_rpn_cls', 'loss_cls', 'loss_bbox']
    x, y, x_label, _ = curve(log, keys[0])
    assert list(x) == [10, 20] and list(y) == [1.5, 1.2] and x_label == 'iteration'  # a line, not a dot


def test_validation_only_log_falls_back_to_its_metrics(tmp_path):
    log = load_json_log(write_log(tmp_path / 'v.json', [{'coco/bbox_mAP': 0.1, 'coco/bbox_mAP_50': 0.3, 'step': 1}]))
    assert default_curve_keys(log) == ['coco/bbox_mAP', 'coco/bbox_mAP_50']
