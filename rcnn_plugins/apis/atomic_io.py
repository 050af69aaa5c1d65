"""Atomic file writes: a reader (or a resumed run) sees the old file or the complete new one, never
a partial one, even when the writer is killed (kill -9, power loss) mid-write.

The bytes go to a temporary file in the target's folder (same file system, so the rename is
atomic), which is flushed and fsync'ed before it is renamed over the target; the folder is
fsync'ed after the rename so the new name itself survives a crash.
"""
import os
import os.path as osp
import tempfile


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see module docstring); creates the folder."""
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix='.' + osp.basename(path) + '.', suffix='.tmp')
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:  # a platform without directory fds: the rename is still atomic
        return
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
