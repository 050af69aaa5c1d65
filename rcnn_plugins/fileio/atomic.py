"""Crash-safe file writes: a reader sees the old file or the whole new one, never a partial one.

Every file rcnn_plugins writes for later reading (checkpoints and ``last_checkpoint``, proposal
files, alternating-training stage weights, inference outputs, exports) goes through
:func:`atomic_write` (or, where another library writes the file by path, :func:`temp_path_for` +
:func:`commit`):

1. the bytes go to a hidden temporary file in the same directory, ``.NAME.tmpPID`` (same
   directory: ``os.replace`` is atomic only within one file system);
2. the file is ``fsync``ed, renamed onto ``NAME`` with ``os.replace`` and the directory is
   ``fsync``ed (so the rename itself survives a power cut);
3. on an exception the temporary file is removed.

A process killed mid-write (``kill -9``, out of memory) cannot remove its temporary file; the
next :func:`atomic_write` of the same name, and :func:`remove_stale_partials` on a folder,
remove ``.NAME.tmpPID`` files whose process is gone (files of a running process are kept: a
concurrent writer).
"""
import contextlib
import os
import os.path as osp
import re
from typing import IO, Iterator, List, Optional

_TMP_NAME = re.compile(r'^\.(?P<name>.+)\.tmp(?P<pid>\d+)$')


def temp_path_for(path: str) -> str:
    """The temporary name this process writes ``path`` under: ``DIR/.NAME.tmpPID``."""
    return osp.join(osp.dirname(path), f'.{osp.basename(path)}.tmp{os.getpid()}')


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_stale_partials(folder: str, name: Optional[str] = None) -> List[str]:
    """Remove the temporary files (``.NAME.tmpPID``) that killed writers left in ``folder`` (only
    those of ``name`` when given); files of processes still running are kept. Returns the
    removed paths."""
    removed: List[str] = []
    if not osp.isdir(folder):
        return removed
    for entry in os.listdir(folder):
        match = _TMP_NAME.match(entry)
        if match is None or (name is not None and match['name'] != name):
            continue
        pid = int(match['pid'])
        if pid != os.getpid() and not _process_alive(pid):
            path = osp.join(folder, entry)
            if osp.isfile(path):
                os.remove(path)
                removed.append(path)
    return removed


def fsync_dir(path: str) -> None:
    """Persist a rename: fsync the directory entry (a no-op where the OS does not allow it)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def commit(tmp_path: str, final_path: str) -> None:
    """fsync ``tmp_path``, rename it onto ``final_path`` and fsync the directory."""
    with open(tmp_path, 'rb+') as f:
        os.fsync(f.fileno())
    os.replace(tmp_path, final_path)
    fsync_dir(osp.dirname(osp.abspath(final_path)))


@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Yield the temporary path to write ``path`` under (for writers that take a path, such as
    ``onnx.save`` or ``torch.export.save``); committed onto ``path`` when the block ends without
    an exception, removed otherwise. Creates the parent folder; removes stale partials first."""
    path = osp.abspath(osp.expanduser(path))
    folder = osp.dirname(path)
    os.makedirs(folder, exist_ok=True)
    remove_stale_partials(folder, osp.basename(path))
    tmp_path = temp_path_for(path)
    try:
        yield tmp_path
        commit(tmp_path, path)
    finally:
        if osp.exists(tmp_path):
            os.remove(tmp_path)


@contextlib.contextmanager
def atomic_write(path: str, mode: str = 'wb', **open_kwargs) -> Iterator[IO]:
    """``open(path, mode)`` that replaces ``path`` only once the block finished (module docstring).

    Args:
        path: the final file name.
        mode: ``'wb'`` or ``'w'`` (text; ``open_kwargs`` such as ``encoding`` pass through).
    """
    if mode not in ('w', 'wb', 'wt'):
        raise ValueError(f'atomic_write writes whole files: mode must be "w" or "wb", not {mode!r}')
    with atomic_path(path) as tmp_path:
        with open(tmp_path, mode, **open_kwargs) as f:
            yield f
            f.flush()


def write_text_atomically(path: str, text: str) -> None:
    """Write ``text`` to ``path`` so that ``path`` always holds either the old or the new text."""
    with atomic_write(path, 'w') as f:
        f.write(text)
