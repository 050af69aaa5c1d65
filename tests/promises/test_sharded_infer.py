"""Folder inference over torchrun processes, killed with SIGKILL and resumed: the outputs equal an
uninterrupted one-process run's, one complete prediction file per image, none missing, no
temporary file left; and the list-file / nothing-predicted reports of ``tools/infer.py``."""
import json
import os
import os.path as osp
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from rcnn_plugins.apis.inputs import collect_inputs
from rcnn_plugins.apis.sharded import read_pred, shard
from rcnn_plugins.cli.infer import infer_main
from serving_utils import REPO, make_tiny_model, write_images

SIZES = [(120, 160), (100, 100), (160, 90), (128, 128), (90, 140), (150, 150)] * 3  # 18 images


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp('sharded')
    config, checkpoint = make_tiny_model(root)
    write_images(root / 'images', SIZES, 'jpg')
    write_images(root / 'images' / 'sub', SIZES[:4], 'png', seed=3)  # names mirror sub-folders
    ref = root / 'ref'
    # The uninterrupted one-process run, through the ordinary (unsharded) path.
    infer_main([str(root / 'images'), config, checkpoint, '--out-dir', str(ref), '--recursive', '--device', 'cpu',
                '--coco-json', str(ref / 'coco.json'), '--no-save-vis'])
    return dict(root=root, config=config, checkpoint=checkpoint, ref=ref)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def torchrun(setup, out, *extra) -> subprocess.Popen:
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc-per-node', '2', '--master-addr', '127.0.0.1',
           '--master-port', str(free_port()), osp.join(REPO, 'tools', 'infer.py'), str(setup['root'] / 'images'),
           setup['config'], setup['checkpoint'], '--out-dir', str(out), '--recursive', '--device', 'cpu',
           '--coco-json', str(out / 'coco.json'), '--launcher', 'pytorch', *extra]
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)  # its own process group: one SIGKILL reaches every rank


def pred_files(folder):
    return sorted(osp.relpath(osp.join(d, f), folder) for d, _, fs in os.walk(folder) for f in fs)


def assert_same_outputs(out, ref):
    names = pred_files(ref / 'preds')
    assert len(names) == len(SIZES) + 4
    assert pred_files(out / 'preds') == names  # one per image: none missing, none extra, no temp file
    for name in names:
        got, want = read_pred(str(out / 'preds' / name)), read_pred(str(ref / 'preds' / name))
        assert got['labels'] == want['labels'] and got['classes'] == want['classes']
        np.testing.assert_allclose(got['scores'], want['scores'], rtol=0, atol=1e-5)
        np.testing.assert_allclose(np.reshape(got['bboxes'], (-1, 4)), np.reshape(want['bboxes'], (-1, 4)),
                                   rtol=0, atol=1e-3)
    got, want = json.load(open(out / 'coco.json')), json.load(open(ref / 'coco.json'))
    assert len(got) == len(want) > 0
    assert [(r['image_id'], r['category_id']) for r in got] == [(r['image_id'], r['category_id']) for r in want]
    np.testing.assert_allclose([r['bbox'] + [r['score']] for r in got], [r['bbox'] + [r['score']] for r in want],
                               rtol=0, atol=1e-3)


def test_shards_are_disjoint_and_cover_every_input(setup):
    items = collect_inputs(str(setup['root'] / 'images'), recursive=True)
    for world in (1, 2, 3, 7):
        parts = [[item.name for item in shard(items, rank, world)] for rank in range(world)]
        flat = [name for part in parts for name in part]
        assert sorted(flat) == sorted(item.name for item in items) and len(set(flat)) == len(flat)
        assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_shards_in_process_and_resume_after_a_crash(setup, tmp_path):
    """The quick version of the torchrun test below: the two ranks' shards run one after the other
    in this process; then a crash is imitated (a missing, a truncated and a temporary file) and
    ``--resume`` redoes exactly the images without a complete prediction."""
    from rcnn_plugins.apis import DetInferencer
    from rcnn_plugins.apis.sharded import merge_coco, predict_shard
    out = tmp_path / 'out'
    inferencer = DetInferencer(setup['config'], setup['checkpoint'], device='cpu', show_progress=False)
    images = str(setup['root'] / 'images')
    counts = [predict_shard(inferencer, images, str(out), rank=r, world=2, save_vis=False, recursive=True)
              for r in (0, 1)]
    assert [c[1] for c in counts] == [11, 11] and [c[2] for c in counts] == [11, 11]
    merge_coco(counts[0][0], str(out), inferencer.classes, str(out / 'coco.json'))
    assert_same_outputs(out, setup['ref'])
    # The crash: one file gone, one cut short (a writer without atomic renames), one temp file left.
    os.remove(out / 'preds' / '001.json')
    (out / 'preds' / '002.json').write_text((out / 'preds' / '002.json').read_text()[:20])
    (out / 'preds' / '.003.json.tmp999999999').write_text('{"labels": [')  # its writer (pid) is gone
    before = os.stat(out / 'preds' / '004.json').st_mtime_ns
    redone = [predict_shard(inferencer, images, str(out), rank=r, world=2, resume=True, save_vis=False,
                            recursive=True)[1] for r in (0, 1)]
    assert sum(redone) == 2 and os.stat(out / 'preds' / '004.json').st_mtime_ns == before
    merge_coco(counts[0][0], str(out), inferencer.classes, str(out / 'coco.json'))
    assert_same_outputs(out, setup['ref'])


@pytest.mark.slow
def test_two_processes_killed_with_sigkill_then_resumed_equal_one_process(setup, tmp_path):
    out = tmp_path / 'out'
    proc = torchrun(setup, out)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        done = [n for n in pred_files(out / 'preds') if n.endswith('.json')] if (out / 'preds').exists() else []
        if len(done) >= 4:
            break
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # kill -9, every rank at once
    proc.wait(30)
    done = [n for n in pred_files(out / 'preds') if not n.startswith('.') and '/.' not in n]
    assert 4 <= len(done) < len(SIZES) + 4, 'the run was not killed mid-way'
    assert all(read_pred(str(out / 'preds' / n)) is not None for n in done)  # no partial prediction file
    assert not (out / 'coco.json').exists()
    before = {n: os.stat(out / 'preds' / n).st_mtime_ns for n in done}

    proc = torchrun(setup, out, '--resume')
    log, _ = proc.communicate(timeout=180)
    assert proc.returncode == 0, log[-3000:]
    assert 'already have predictions' in log and '(2 process(es))' in log
    assert {n: os.stat(out / 'preds' / n).st_mtime_ns for n in done} == before  # skipped, not redone
    assert_same_outputs(out, setup['ref'])


def test_list_file_missing_entry_and_nothing_predicted(setup, tmp_path, capsys):
    images = setup['root'] / 'images'
    listing = tmp_path / 'list.txt'
    listing.write_text(f'# two images\n{images / "000.jpg"}\n\n{images / "gone.jpg"}\n')
    infer_main([str(listing), setup['config'], setup['checkpoint'], '--out-dir', str(tmp_path / 'o'),
                '--device', 'cpu', '--no-save-vis'])
    err = capsys.readouterr().err
    assert f'gone.jpg: no such file (named in {listing}, line 4' in err
    assert 'data_root' not in err  # not the training loader's hint
    only_missing = tmp_path / 'missing.txt'
    only_missing.write_text(f'{images / "gone.jpg"}\n')
    for extra in ([], ['--resume']):
        with pytest.raises(SystemExit, match='nothing was predicted'):
            infer_main([str(only_missing), setup['config'], setup['checkpoint'], '--out-dir',
                        str(tmp_path / 'o2'), '--device', 'cpu', *extra])
