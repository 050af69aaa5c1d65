"""fileio.atomic: whole files or nothing, leftovers of killed writers removed, and the writers
that use it (proposal files, converters, inference json) leave no partial file on an error."""
import os
import os.path as osp
import subprocess
import sys

import pytest

from rcnn_plugins.fileio.atomic import atomic_path, atomic_write, remove_stale_partials, temp_path_for


def test_replaces_only_when_the_block_completes(tmp_path):
    path = tmp_path / 'out.json'
    path.write_text('old')
    with pytest.raises(RuntimeError):
        with atomic_write(str(path), 'w') as f:
            f.write('half of the new')
            assert path.read_text() == 'old'  # readers see the old file meanwhile
            raise RuntimeError('writer failed')
    assert path.read_text() == 'old'
    assert os.listdir(tmp_path) == ['out.json']  # the temporary file is gone
    with atomic_write(str(path), 'w') as f:
        f.write('new')
    assert path.read_text() == 'new' and os.listdir(tmp_path) == ['out.json']


def test_creates_the_folder_and_names_the_temp_file_in_it(tmp_path):
    path = str(tmp_path / 'a' / 'b' / 'x.bin')
    with atomic_path(path) as tmp:
        assert tmp == temp_path_for(path) == str(tmp_path / 'a' / 'b' / f'.x.bin.tmp{os.getpid()}')
        with open(tmp, 'wb') as f:
            f.write(b'\x00\x01')
    assert open(path, 'rb').read() == b'\x00\x01'
    with pytest.raises(ValueError, match='mode must be'):
        with atomic_write(path, 'a'):
            pass


def _dead_pid():
    proc = subprocess.Popen([sys.executable, '-c', 'pass'])
    proc.wait()
    return proc.pid


def test_stale_partials_of_dead_writers_are_removed_live_ones_kept(tmp_path):
    dead, live = _dead_pid(), os.getppid()
    for name in (f'.a.pth.tmp{dead}', f'.b.pth.tmp{dead}', f'.a.pth.tmp{live}', 'a.pth', '.hidden'):
        (tmp_path / name).write_text('x')
    # Writing a.pth removes a.pth's stale partial only.
    with atomic_write(str(tmp_path / 'a.pth'), 'w') as f:
        f.write('new')
    assert sorted(os.listdir(tmp_path)) == sorted([f'.b.pth.tmp{dead}', f'.a.pth.tmp{live}', 'a.pth', '.hidden'])
    # The folder-wide sweep (CheckpointHook.before_train) removes every dead writer's partial.
    assert remove_stale_partials(str(tmp_path)) == [str(tmp_path / f'.b.pth.tmp{dead}')]
    assert sorted(os.listdir(tmp_path)) == sorted([f'.a.pth.tmp{live}', 'a.pth', '.hidden'])


def test_proposal_file_writer_is_atomic(tmp_path, monkeypatch):
    import numpy as np

    from rcnn_plugins.datasets import proposal_file
    path = tmp_path / 'p.pkl'
    path.write_bytes(b'previous')

    def failing_dump(obj, f, protocol):
        f.write(b'partial')
        raise OSError('disk full')

    monkeypatch.setattr(proposal_file.pickle, 'dump', failing_dump)
    with pytest.raises(OSError, match='disk full'):
        proposal_file.dump_proposal_file([np.zeros((1, 5), np.float32)], str(path))
    assert path.read_bytes() == b'previous' and os.listdir(tmp_path) == ['p.pkl']
