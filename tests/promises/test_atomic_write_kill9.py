"""Promise: a file rcnn_plugins writes (checkpoint, proposal file, stage weights, inference json,
export) is never seen half-written, even when the writer is killed with SIGKILL mid-write
(rcnn_plugins.fileio.atomic)."""
import os
import os.path as osp
import signal
import subprocess
import sys
import textwrap
import time

from rcnn_plugins.fileio import atomic_write
from repo_paths import REPO_ROOT

REPO = REPO_ROOT


def test_kill_9_mid_write_leaves_the_old_file_and_the_next_write_cleans_up(tmp_path):
    """A writer killed with SIGKILL between its first and last byte: the final name still holds the
    old complete file, the partial is removed by the next writer of that name."""
    path = tmp_path / 'proposals.pkl'
    path.write_bytes(b'old complete file')
    script = textwrap.dedent(f'''
        import sys, time
        sys.path.insert(0, {REPO!r})
        from rcnn_plugins.fileio import atomic_write
        with atomic_write({str(path)!r}) as f:
            f.write(b'new, partial')
            f.flush()
            print('written', flush=True)
            time.sleep(60)
            f.write(b' ... never reached')
    ''')
    proc = subprocess.Popen([sys.executable, '-c', script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == 'written'
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    partial = tmp_path / f'.proposals.pkl.tmp{proc.pid}'
    assert path.read_bytes() == b'old complete file' and partial.read_bytes() == b'new, partial'
    time.sleep(0.05)
    with atomic_write(str(path)) as f:
        f.write(b'next')
    assert path.read_bytes() == b'next' and not partial.exists()
