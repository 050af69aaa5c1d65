"""``DetInferencer`` and ``tools/infer.py``: inputs of every kind, unreadable files, predictions equal
to ``inference_detector``'s, batching that never changes a detection, videos, COCO results, and
sliced inference with a real (randomly initialised) model."""
import contextlib
import io
import json
import os
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from pycocotools.coco import COCO

from rcnn_plugins.apis import DetInferencer, inference_detector
from rcnn_plugins.apis.batching import batch_by_shape
from rcnn_plugins.apis.inputs import collect_inputs
from rcnn_plugins.apis.results import CocoResultsWriter
from rcnn_plugins.apis.slicing import merge_predictions, slice_grid
from rcnn_plugins.cli.infer import infer_main
from repo_paths import REPO_ROOT

REPO = REPO_ROOT
CONFIG = osp.join(REPO, 'configs', 'faster_rcnn', 'faster-rcnn_r18_fpn_demo.py')
CLASSES = ('rectangle', 'ellipse', 'triangle', 'cross')


def scene(rng, h, w):
    img = rng.integers(0, 60, (h, w, 3), dtype=np.uint8)
    for _ in range(4):
        s = int(rng.integers(16, 40))
        x, y = int(rng.integers(0, w - s)), int(rng.integers(0, h - s))
        img[y:y + s, x:x + s] = rng.integers(150, 255, 3)
    return img


def perturb_norms(model, seed=1):
    """Non-trivial BN statistics, as trained weights have: freshly initialised BN (mean 0, var 1,
    weight 1, bias 0) keeps zero padding zero, which would hide what padding does."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.2)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.2)


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    """Random but non-trivial weights saved as the Runner does (with class names)."""
    torch.manual_seed(0)
    inferencer = DetInferencer(CONFIG, device='cpu', show_progress=False, exact=True)  # its state_dict is saved
    perturb_norms(inferencer.model)
    path = str(tmp_path_factory.mktemp('ckpt') / 'model.pth')
    torch.save({'state_dict': inferencer.model.state_dict(), 'meta': {'dataset_meta': {'classes': CLASSES}}}, path)
    return path


@pytest.fixture(scope='module')
def inferencer(checkpoint):
    return DetInferencer(CONFIG, checkpoint, device='cpu', show_progress=False)


@pytest.fixture(scope='module')
def folder(tmp_path_factory):
    """Colour JPEG/PNG images of different sizes, a grayscale PNG, an RGBA PNG, a corrupt JPEG and a note."""
    root = tmp_path_factory.mktemp('inputs')
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate([(160, 160), (120, 170), (176, 100), (160, 160), (140, 150)]):
        cv2.imwrite(str(root / f'{i + 1:03d}.{"png" if i % 2 else "jpg"}'), scene(rng, h, w))
    cv2.imwrite(str(root / 'gray.png'), scene(rng, 150, 130)[..., 0])
    rgba = np.concatenate([scene(rng, 130, 150), np.full((130, 150, 1), 128, np.uint8)], axis=2)
    cv2.imwrite(str(root / 'alpha.png'), rgba)
    (root / 'corrupt.jpg').write_bytes(b'\xff\xd8 this is not a JPEG')
    (root / 'notes.txt').write_text('not an input')
    return root


def run_tool(*args, timeout=300):
    proc = subprocess.run([sys.executable, 'tools/infer.py', *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1'))
    assert proc.returncode == 0, f'infer.py failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}'
    return proc.stderr


def write_ann_file(folder, path):
    """A COCO annotation file for the folder's images, categories in a different order than the classes."""
    images = [dict(id=100 + i, file_name=name, height=cv2.imread(str(folder / name)).shape[0],
                   width=cv2.imread(str(folder / name)).shape[1])
              for i, name in enumerate(sorted(os.listdir(folder))) if name.endswith(('.jpg', '.png'))
              and name != 'corrupt.jpg']
    cats = [dict(id=7 + i, name=name) for i, name in enumerate(reversed(CLASSES))]
    anns = [dict(id=1, image_id=images[0]['id'], category_id=7, bbox=[10, 10, 30, 30], area=900, iscrowd=0)]
    with open(path, 'w') as f:
        json.dump(dict(images=images, categories=cats, annotations=anns), f)
    return {img['file_name']: img['id'] for img in images}


def test_tool_on_a_folder_with_corrupt_gray_and_alpha(folder, checkpoint, tmp_path, inferencer):
    out = tmp_path / 'out'
    ann = tmp_path / 'ann.json'
    ids = write_ann_file(folder, ann)
    log = run_tool(str(folder), CONFIG, checkpoint, '--out-dir', str(out), '--batch-size', '4',
                   '--coco-json', str(tmp_path / 'results.json'), '--ann-file', str(ann), '--device', 'cpu')
    names = ['001.jpg', '002.png', '003.jpg', '004.png', '005.jpg', 'alpha.png', 'gray.png']
    assert sorted(os.listdir(out / 'vis')) == names
    assert sorted(os.listdir(out / 'preds')) == sorted(osp.splitext(n)[0] + '.json' for n in names)
    # The corrupt file: one warning line naming it, and the summary at the end.
    warnings = [line for line in log.splitlines() if 'corrupt.jpg' in line]
    assert len(warnings) == 2, log
    assert warnings[0].lstrip().startswith('WARNING: skipped') and 'corrupt' in warnings[0]
    assert '1 input(s) could not be read and were skipped' in warnings[1]
    assert 'img/s' in log  # the progress bar

    # Predictions in the json files equal inference_detector's on the same files (its own pipeline).
    for name in ('001.jpg', 'gray.png', 'alpha.png'):
        with open(out / 'preds' / (osp.splitext(name)[0] + '.json')) as f:
            saved = json.load(f)
        ref = inference_detector(inferencer.model, str(folder / name)).pred_instances
        assert len(ref) > 0 and saved['labels'] == ref.labels.tolist()
        np.testing.assert_allclose(saved['bboxes'], ref.bboxes.numpy(), atol=1e-4)
        np.testing.assert_allclose(saved['scores'], ref.scores.numpy(), atol=1e-5)
        assert saved['classes'] == list(CLASSES)
        assert saved['label_names'] == [CLASSES[i] for i in saved['labels']]
    drawn = cv2.imread(str(out / 'vis' / 'gray.png'))
    assert drawn.shape == (150, 130, 3)

    # One COCO results file for the folder, ids from the annotation file, loadable by pycocotools.
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(ann))
        results = coco.loadRes(str(tmp_path / 'results.json'))
    assert set(results.getImgIds()) == set(ids.values())
    per_image = {img_id: len(results.getAnnIds(imgIds=[img_id])) for img_id in ids.values()}
    with open(out / 'preds' / '001.json') as f:
        assert per_image[ids['001.jpg']] == len(json.load(f)['labels'])
    # Category ids by class name: the file lists the classes reversed, from id 7.
    cat_of_label = {0: 10, 1: 9, 2: 8, 3: 7}
    with open(out / 'preds' / '001.json') as f:
        p = json.load(f)
    got = sorted((round(a['score'], 5), a['category_id']) for a in results.loadAnns(
        results.getAnnIds(imgIds=[ids['001.jpg']])))
    assert got == sorted((round(s, 5), cat_of_label[lab]) for s, lab in zip(p['scores'], p['labels']))


def test_batched_equals_one_at_a_time(folder, inferencer):
    """Mixed sizes in a folder: batch 4 gives batch 1's detections (images are grouped by padded shape)."""
    one = inferencer(str(folder), batch_size=1)['predictions']
    four = inferencer(str(folder), batch_size=4)['predictions']
    assert len(one) == len(four) == 7
    for a, b in zip(one, four):
        assert a['labels'] == b['labels']
        np.testing.assert_allclose(a['bboxes'], b['bboxes'], atol=1e-4)
        np.testing.assert_allclose(a['scores'], b['scores'], atol=1e-4)
    # Why the grouping: padding an image to a bigger one's size in one batch does change its
    # detections (the padded border feeds the convolutions), with weights like these.
    imgs = [scene(np.random.default_rng(3), 160, 160), scene(np.random.default_rng(4), 100, 170)]
    packed = [inferencer._pack(img) for img in imgs]
    alone = inferencer._forward(packed[1:])[0].pred_instances
    # One padded batch through predict directly (test_step itself groups by padded shape too).
    model = inferencer.model
    with torch.no_grad():
        data = model.data_preprocessor(pseudo_collate(packed), False)
        padded = model.predict(data['inputs'], data['data_samples'])[1].pred_instances
    assert packed[0]['inputs'].shape[-2:] != packed[1]['inputs'].shape[-2:]
    assert not torch.allclose(alone.scores[:5], padded.scores[:5], atol=1e-3)


def test_inputs_glob_list_array_recursive(folder, tmp_path, inferencer):
    sub = tmp_path / 'tree' / 'sub'
    sub.mkdir(parents=True)
    img = scene(np.random.default_rng(5), 120, 120)
    cv2.imwrite(str(tmp_path / 'tree' / 'a.jpg'), img)
    cv2.imwrite(str(sub / 'a.jpg'), img)
    assert [i.name for i in collect_inputs(str(tmp_path / 'tree'))] == ['a.jpg']
    assert [i.name for i in collect_inputs(str(tmp_path / 'tree'), recursive=True)] == ['a.jpg', 'sub/a.jpg']
    assert [i.name for i in collect_inputs(str(folder / '00[12].*'))] == ['001.jpg', '002.png']
    listing = tmp_path / 'list.txt'
    listing.write_text(f'{folder / "003.jpg"}\n\n# a comment\n{sub / "a.jpg"}\n{tmp_path / "tree" / "a.jpg"}\n')
    assert [i.name for i in collect_inputs(str(listing))] == ['003.jpg', 'a.jpg', 'a_1.jpg']
    with pytest.raises(FileNotFoundError, match='no-such'):
        collect_inputs(str(tmp_path / 'no-such.jpg'))
    empty_list = tmp_path / 'empty.txt'
    empty_list.write_text('# nothing yet\n\n')
    with pytest.raises(FileNotFoundError, match='empty.txt names no images'):
        collect_inputs(str(empty_list))
    with pytest.raises(ValueError, match='no inputs given'):
        collect_inputs([])

    # Arrays: MMDetection's names, same predictions as the file.
    out = inferencer([img, str(tmp_path / 'tree' / 'a.jpg')], out_dir=str(tmp_path / 'o'), no_save_pred=False,
                     return_vis=True, return_datasamples=True)
    assert sorted(os.listdir(tmp_path / 'o' / 'vis')) == ['00000000.jpg', 'a.jpg']
    file_pred = inference_detector(inferencer.model, str(tmp_path / 'tree' / 'a.jpg')).pred_instances
    decoded = cv2.imread(str(tmp_path / 'tree' / 'a.jpg'))
    arr_pred = inference_detector(inferencer.model, decoded).pred_instances
    torch.testing.assert_close(out['predictions'][1].pred_instances.bboxes, file_pred.bboxes)
    torch.testing.assert_close(out['predictions'][0].pred_instances.bboxes,
                               inference_detector(inferencer.model, img).pred_instances.bboxes)
    assert arr_pred.bboxes.shape == file_pred.bboxes.shape
    assert out['visualization'][0].shape == (120, 120, 3)


def test_video_round_trip(tmp_path, inferencer):
    src = str(tmp_path / 'clip.avi')
    writer = cv2.VideoWriter(src, cv2.VideoWriter_fourcc(*'MJPG'), 12.0, (160, 120))
    rng = np.random.default_rng(6)
    for _ in range(9):
        writer.write(scene(rng, 120, 160))
    writer.release()
    out = tmp_path / 'out'
    result = inferencer(src, out_dir=str(out), batch_size=4, no_save_pred=False)
    assert len(result['predictions']) == 9
    cap = cv2.VideoCapture(str(out / 'vis' / 'clip.avi'))
    frames = 0
    while cap.read()[0]:
        frames += 1
    assert frames == 9
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(12.0)
    assert (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (160, 120)
    cap.release()
    with open(out / 'preds' / 'clip.jsonl') as f:
        lines = [json.loads(line) for line in f]
    assert [line['frame'] for line in lines] == list(range(9))
    assert lines[3]['scores'] == result['predictions'][3]['scores']


def test_sliced_inference_with_the_real_model(tmp_path, inferencer, checkpoint):
    img = scene(np.random.default_rng(7), 300, 400)
    path = str(tmp_path / 'large.png')
    cv2.imwrite(path, img)
    slice_cfg = dict(slice_hw=(176, 176), overlap=0.25, merge='nms', nms_iou_thr=0.5)
    pred = inferencer(path, batch_size=4, slice_cfg=slice_cfg)['predictions'][0]
    # The same by hand: inference_detector on every tile, boxes shifted, one class-wise NMS.
    tiles = slice_grid(300, 400, (176, 176), 0.25)  # 2 x 3 tiles
    boxes, scores, labels, tile_ids = [], [], [], []
    for t, (x1, y1, x2, y2) in enumerate(tiles.tolist()):
        p = inference_detector(inferencer.model, np.ascontiguousarray(img[y1:y2, x1:x2])).pred_instances
        boxes.append(p.bboxes + torch.tensor([x1, y1, x1, y1]))
        scores.append(p.scores)
        labels.append(p.labels)
        tile_ids.append(torch.full((len(p),), t))
    ref_boxes, ref_scores, ref_labels = merge_predictions(torch.cat(boxes), torch.cat(scores), torch.cat(labels),
                                                          torch.cat(tile_ids), merge='nms')
    assert len(ref_boxes) > len(tiles)
    np.testing.assert_allclose(pred['bboxes'], ref_boxes.numpy(), atol=1e-3)
    np.testing.assert_allclose(pred['scores'], ref_scores.numpy(), atol=1e-5)
    assert pred['labels'] == ref_labels.tolist()

    # And through the tool's code (in-process: a subprocess spends ~10 s importing here), with the
    # default matching-based merge and the full-image pass.
    out = tmp_path / 'out'
    infer_main([path, CONFIG, checkpoint, '--out-dir', str(out), '--slice', '176', '176', '--overlap', '0.25',
                '--slice-full-image', '--batch-size', '4', '--device', 'cpu'])
    with open(out / 'preds' / 'large.json') as f:
        saved = json.load(f)
    bboxes = np.array(saved['bboxes'])
    assert len(bboxes) > 0 and bboxes[:, 0::2].max() <= 400 and bboxes[:, 1::2].max() <= 300
    assert cv2.imread(str(out / 'vis' / 'large.png')).shape == (300, 400, 3)


def test_classes_override_and_errors(checkpoint):
    inf = DetInferencer(Config.fromfile(CONFIG), checkpoint, device='cpu', show_progress=False,
                        classes=['a', 'b', 'c', 'd'])
    assert inf.classes == ('a', 'b', 'c', 'd')
    with pytest.raises(ValueError, match='2 class names from --classes .* 4 classes'):
        DetInferencer(CONFIG, checkpoint, device='cpu', classes=['a', 'b'])
    with pytest.raises(ValueError, match='slice_hw'):
        inf(np.zeros((10, 10, 3), np.uint8), slice_cfg=dict(overlap=0.2))
    # An empty or wrongly shaped array is skipped with its reason, like an unreadable file.
    out = inf([np.zeros((0, 0, 3), np.uint8), np.zeros((8, 8, 5), np.uint8)])
    assert out['predictions'] == [] and inf.skipped == ['array input 00000000.jpg', 'array input 00000001.jpg']
    with pytest.raises(SystemExit, match='^error: input .*no-such.jpg'):
        infer_main(['no-such.jpg', CONFIG, checkpoint])


def test_batch_by_shape_keeps_order_and_bounds_waiting():
    """Pure logic: each run gets one padded shape and at most batch_size inputs; output in input order."""
    shapes = [(64, 64), (32, 64), (64, 64), (64, 64), (32, 64), (64, 64), (60, 64), (64, 64), (64, 64)]
    stream = [(i, dict(inputs=torch.zeros(3, *hw))) for i, hw in enumerate(shapes)]
    calls = []

    def run(packed):
        calls.append([tuple(p['inputs'].shape[-2:]) for p in packed])
        return [f'r{len(calls)}'] * len(packed)

    out = list(batch_by_shape(iter(stream), run, batch_size=3, divisor=32, max_waiting=4))
    assert [payload for payload, _ in out] == list(range(9))
    for call in calls:
        assert len(call) <= 3 and len({(-(-h // 32) * 32, -(-w // 32) * 32) for h, w in call}) == 1
    assert sum(map(len, calls)) == 9
    # 60 px pads to 64 and joins the 64 x 64 images. The (32, 64) ones run as a partial batch once
    # more than 4 inputs are held (finished ones queue behind the first unfinished, for the order).
    assert calls[0] == [(64, 64)] * 3 and calls[1] == [(32, 64), (32, 64)]


def test_coco_ids_without_annotation_file(tmp_path):
    writer = CocoResultsWriter(CLASSES)
    pred = dict(labels=[2], scores=[0.5], bboxes=[[1.0, 2.0, 11.0, 22.0]])
    writer.add('000000397133.jpg', pred)
    writer.add('sub/000000000042.png', pred)
    writer.dump(str(tmp_path / 'a.json'))
    with open(tmp_path / 'a.json') as f:
        records = json.load(f)
    assert [r['image_id'] for r in records] == [397133, 42]
    assert records[0]['category_id'] == 2 and records[0]['bbox'] == [1.0, 2.0, 10.0, 20.0]
    writer.add('cat.jpg', pred)  # not all stems are numbers: ids are the input order
    writer.dump(str(tmp_path / 'b.json'))
    with open(tmp_path / 'b.json') as f:
        assert [r['image_id'] for r in json.load(f)] == [0, 1, 2]


def test_gray_array_and_unreadable_video(tmp_path, inferencer, capsys):
    gray = scene(np.random.default_rng(8), 100, 140)[..., 1]
    (tmp_path / 'broken.mp4').write_bytes(b'\x00\x00\x00\x18ftypmp42 truncated')
    out = inferencer([gray, str(tmp_path / 'broken.mp4'), np.zeros((4, 4, 3), np.float32)],
                     return_vis=True)
    # The gray array is drawn upright (replicated to 3 channels, not flipped); the float array and
    # the broken video are reported by name and skipped.
    assert len(out['predictions']) == 1
    assert out['visualization'][0].shape == (100, 140, 3)
    ref = inference_detector(inferencer.model, np.repeat(gray[..., None], 3, axis=2)).pred_instances
    np.testing.assert_allclose(out['predictions'][0]['bboxes'], ref.bboxes.numpy(), atol=1e-4)
    assert inferencer.skipped == [str(tmp_path / 'broken.mp4'), 'array input 00000001.jpg']
    err = capsys.readouterr().err
    assert 'WARNING: skipped ' + str(tmp_path / 'broken.mp4') in err and 'float32' in err


@pytest.mark.parametrize('argv, inputs, config, ckpt', [
    (['a.jpg', 'b/', 'cfg.py'], ['a.jpg', 'b/'], 'cfg.py', None),
    (['a.jpg', 'cfg.py', 'm.pth', '--batch-size', '2'], ['a.jpg'], 'cfg.py', 'm.pth'),
    (['v.mp4', 'list.txt', 'cfg.py', 'm.pth'], ['v.mp4', 'list.txt'], 'cfg.py', 'm.pth'),
])
def test_tool_positionals(argv, inputs, config, ckpt):
    from rcnn_plugins.cli.infer import _split_positionals, infer_parser
    args = infer_parser().parse_args(argv)
    _split_positionals(args)
    assert (args.inputs, args.config, args.checkpoint) == (inputs, config, ckpt)
