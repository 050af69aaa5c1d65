"""The refusal path of every command: real bad input (an unknown registry type, a pickle checkpoint
that would run code, a typo in --cfg-options, a missing file, a refused flag combination) ends the
command with exactly one ``error:`` line naming the problem and the fix, exit status 2, no
traceback, and nothing of the bad file executed.

Three commands run as real subprocesses (``tools/train.py``, ``tools/test.py``, ``tools/infer.py``:
the exit status and the whole output as a user sees them); the others in-process through their
``*_main(argv)`` (the same code below the one-line ``tools/`` wrappers), to stay fast.
"""
import os
import os.path as osp
import pickle
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from rcnn_plugins.cli import analysis_tools, converters, deployment, gen_proposals, quantize, serve, train_alternating
from repo_paths import REPO_ROOT

REPO = REPO_ROOT
DEMO = osp.join(REPO, 'configs', 'faster_rcnn', 'faster-rcnn_r18_fpn_demo.py')


class _RunsCode:
    """Unpickling this calls ``open(marker, 'w')``: what a malicious checkpoint would do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, 'w'))


@pytest.fixture
def evil(tmp_path):
    """(checkpoint path, marker path): a torch checkpoint whose unpickling creates the marker."""
    marker = tmp_path / 'ran'
    path = tmp_path / 'evil.pth'
    torch.save(dict(state_dict={'w': torch.zeros(1)}, meta=_RunsCode(marker)), str(path))
    return str(path), marker


@pytest.fixture
def image(tmp_path):
    path = str(tmp_path / 'img.jpg')
    cv2.imwrite(path, np.full((48, 64, 3), 127, np.uint8))
    return path


def run_tool(*args, cwd):
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=300, env=env)


def assert_one_error_line(stderr: str, pattern: str) -> None:
    assert 'Traceback' not in stderr, stderr[-3000:]
    errors = [line for line in stderr.splitlines() if line.startswith('error:')]
    assert len(errors) == 1, stderr[-3000:]
    assert re.search(pattern, errors[0]), errors[0]


def refused(main, argv, capsys, pattern, code=2):
    """Run a command in-process; it must end with ``code`` and one matching ``error:`` line."""
    with pytest.raises(SystemExit) as err:
        main(argv)
    assert err.value.code == code
    assert_one_error_line(capsys.readouterr().err, pattern)


# ---- subprocesses --------------------------------------------------------------------------------
def test_train_unknown_type_is_one_line_before_any_config_dump(tmp_path):
    proc = run_tool(osp.join(REPO, 'tools', 'train.py'), DEMO, '--work-dir', str(tmp_path / 'w'),
                    '--cfg-options', 'model.neck.type=FPNN', cwd=str(tmp_path))
    assert proc.returncode == 2
    assert_one_error_line(proc.stderr, r"model\.neck: type='FPNN' is not a registered model .*did you mean 'FPN'")
    assert len(proc.stdout.splitlines()) <= 2, proc.stdout[:2000]  # no Runner config dump


def test_test_typo_in_cfg_options(tmp_path):
    proc = run_tool(osp.join(REPO, 'tools', 'test.py'), DEMO, str(tmp_path / 'none.pth'),
                    '--cfg-options', 'model.test_cfg.rcnn.score_th=0.5', cwd=str(tmp_path))
    assert proc.returncode == 2
    assert_one_error_line(proc.stderr, r'score_th: the config has no model\.test_cfg\.rcnn\.score_th; did you '
                                       r'mean model\.test_cfg\.rcnn\.score_thr\?')


def test_infer_refuses_a_pickle_checkpoint_and_unsafe_load_opts_in(tmp_path, evil, image):
    path, marker = evil
    args = [osp.join(REPO, 'tools', 'infer.py'), image, DEMO, path, '--out-dir', str(tmp_path / 'out')]
    proc = run_tool(*args, cwd=str(tmp_path))
    assert proc.returncode == 2
    assert_one_error_line(proc.stderr, r'Refusing to load checkpoint .*evil\.pth.*io\.open')
    assert not marker.exists()
    # --unsafe-load (new for infer) loads it: the marker proves the pickle ran.
    run_tool(*args, '--unsafe-load', cwd=str(tmp_path))
    assert marker.exists()


# ---- in-process ----------------------------------------------------------------------------------
def test_train_alternating_typo(capsys, tmp_path):
    refused(train_alternating.train_alternating_main,
            [DEMO, '--work-dir', str(tmp_path), '--cfg-options', 'train_cfg.max_epoch=1'], capsys,
            r'did you mean train_cfg\.max_epochs\?')


def test_gen_proposals_refuses_a_pickle_checkpoint(capsys, tmp_path, evil):
    path, marker = evil
    refused(gen_proposals.gen_proposals_main, [DEMO, path, '--out', str(tmp_path / 'p.pkl'), '--device', 'cpu'],
            capsys, r'Refusing to load checkpoint')
    assert not marker.exists()


def test_analysis_tools(capsys, tmp_path):
    results = tmp_path / 'results.pkl'
    with open(results, 'wb') as f:
        pickle.dump(_RunsCode(tmp_path / 'ran'), f)
    refused(analysis_tools.eval_metric_main, [DEMO, str(results)], capsys, r'results\.pkl.*io\.open')
    assert not (tmp_path / 'ran').exists()
    refused(analysis_tools.confusion_matrix_main, [DEMO, str(tmp_path / 'none.pkl'), str(tmp_path)], capsys,
            r'none\.pkl: no such predictions file')
    refused(analysis_tools.analyze_logs_main, ['plot_curve', str(tmp_path / 'none.json')], capsys,
            r'none\.json: no such log')
    refused(analysis_tools.browse_dataset_main, [DEMO, '--not-show'], capsys, r'--not-show without --output-dir')
    refused(analysis_tools.get_flops_main, [DEMO, '--shape', '1', '2', '3'], capsys, r'--shape takes H W')
    refused(analysis_tools.pr_curve_main, [DEMO, str(results), '--out', str(tmp_path / 'pr.png'),
                                           '--cfg-options', 'test_evaluator.metrik=bbox'], capsys,
            r'did you mean test_evaluator\.metric\?')


def test_deployment(capsys, tmp_path, evil, image):
    path, marker = evil
    refused(deployment.export_main, [DEMO, path, '--out', str(tmp_path / 'm.onnx')], capsys,
            r'Refusing to load checkpoint')
    assert not marker.exists() and not (tmp_path / 'm.onnx').exists()
    refused(deployment.run_onnx_main, [str(tmp_path / 'none.onnx'), image], capsys, r'none\.onnx')
    refused(deployment.benchmark_onnx_main, [DEMO, '--cfg-options', 'model.backbone.dept=50'], capsys,
            r'did you mean model\.backbone\.depth\?')


def test_quantize(capsys, tmp_path, evil):
    pytest.importorskip('onnxruntime')  # the quantizer: without it the command refuses earlier
    path, marker = evil
    refused(quantize.quantize_main, [DEMO, path, '--work-dir', str(tmp_path / 'q')], capsys,
            r'Refusing to load checkpoint')
    assert not marker.exists()
    refused(quantize.quantize_main, [DEMO, path, '--cfg-options', 'model.backbone.dept=50'], capsys,
            r'did you mean model\.backbone\.depth\?')


def test_serve(capsys, tmp_path, evil):
    pytest.importorskip('fastapi')
    pytest.importorskip('uvicorn')
    pytest.importorskip('multipart')
    path, marker = evil
    refused(serve.serve_main, [DEMO, path, '--device', 'cpu', '--port', '0'], capsys, r'Refusing to load checkpoint')
    assert not marker.exists()
    refused(serve.serve_main, [DEMO, '--max-batch', '0'], capsys, r'--max-batch and --max-queue must be >= 1')


def test_converters(capsys, tmp_path, evil):
    path, marker = evil
    refused(converters.torchvision2rcnn_main, [path, str(tmp_path / 'out.pth')], capsys,
            r'evil\.pth: cannot be read.*io\.open')
    assert not marker.exists() and not (tmp_path / 'out.pth').exists()
    refused(converters.rcnn2torchvision_main, [str(tmp_path / 'none.pth'), str(tmp_path / 'out.pth')], capsys,
            r'none\.pth: no such file')


def test_a_bug_keeps_its_traceback():
    """Only bad input and failures become one line: an unexpected exception is re-raised as is."""
    from rcnn_plugins.cli.errors import command

    @command
    def buggy(argv=None):
        return {}['missing']

    with pytest.raises(KeyError):
        buggy()


def test_exit_distributed_worker_flushes_and_exits_zero(tmp_path):
    """A finished torchrun worker leaves with status 0 after its output and log file are flushed,
    skipping the interpreter's teardown (atexit handlers do not run)."""
    import subprocess
    import sys
    log = tmp_path / 'worker.log'
    code = ("import atexit, logging, sys\n"
            f"logging.basicConfig(filename={str(log)!r}, level=logging.INFO)\n"
            "logging.info('run done')\n"
            "atexit.register(lambda: print('teardown ran'))\n"
            "print('metrics printed', end='')\n"
            "from rcnn_plugins.cli.common import exit_distributed_worker\n"
            "exit_distributed_worker()\n"
            "print('not reached')\n")
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0
    assert proc.stdout == 'metrics printed'
    assert 'run done' in log.read_text()
