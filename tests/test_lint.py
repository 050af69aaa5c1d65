"""The package passes ruff with the configuration in pyproject.toml ([tool.ruff]: pyflakes,
pycodestyle, import sorting, 120 columns). Skipped when ruff is not installed (``pip install -e
'.[test]'`` installs it). After a merge, ``ruff check --fix rcnn_plugins`` sorts the imports."""
import os.path as osp
import shutil
import subprocess
import sys

import pytest
from repo_paths import REPO_ROOT

REPO = REPO_ROOT


def _ruff():
    exe = shutil.which('ruff') or osp.join(osp.dirname(sys.executable), 'ruff')
    return exe if osp.isfile(exe) else None


@pytest.mark.skipif(_ruff() is None, reason='ruff is not installed (it is in the test extra)')
def test_package_is_ruff_clean():
    proc = subprocess.run([_ruff(), 'check', '--output-format', 'concise', 'rcnn_plugins'], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
