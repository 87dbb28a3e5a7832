"""Atomic file writes: a file appears whole or not at all, however the writer dies.

The one home for this helper (checkpoints, exported weights, the manifest, ONNX exports, result
PNGs and JSONs). Torch-free, so writing an image does not load torch.
"""
import os
import tempfile
from typing import BinaryIO, Callable

# Every temporary file ends with this; training start-up deletes such leftovers of killed saves.
TMP_SUFFIX = '.tmp'


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write(binary file)`` on a new temporary file beside ``path``, flush it to disk, then
    rename it over ``path``.

    The temporary name is unique (``.<name>.<random>.tmp``), so processes writing the same path at
    once never write into each other's file: the last rename wins, and each is whole. ``os.replace``
    is atomic on POSIX and Windows: a process killed at any moment leaves the old file or the new
    one, and at worst a ``*.tmp`` leftover. The file gets mode 0666 minus the umask, as any new
    file would; the folder is created if needed.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix='.' + os.path.basename(path) + '.', suffix=TMP_SUFFIX, dir=folder)
    try:
        with os.fdopen(fd, 'wb') as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600
        os.replace(tmp, path)
    except BaseException:  # e.g. disk full: do not leave the partial file behind
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable (best effort; not possible on every platform)
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)
