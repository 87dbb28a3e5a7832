"""Build a BasicSR-readable LMDB from a flat folder of images.

The LMDB is written by ``basicsr.utils.lmdb_util.make_lmdb_from_imgs``, so it
has exactly the layout BasicSR's ``FileClient('lmdb')`` and ``paths_from_lmdb``
expect: ``data.mdb``/``lock.mdb`` plus ``meta_info.txt`` with one
``<key>.png (h,w,c) <compress_level>`` line per image. Every image is stored
re-encoded as lossless PNG, so decoding a value gives exactly the pixels
``cv2.imread(src, cv2.IMREAD_UNCHANGED)`` gives for the source file.

We validate everything *before* calling BasicSR, because BasicSR's function
asserts, calls ``sys.exit`` or fails halfway through on bad input, and would
leave a partial LMDB behind.

Usage::

    python scripts/make_lmdb.py datasets/Train400 datasets/Train400.lmdb
"""
import argparse
import contextlib
import io
import os
import shutil
import sys
import tempfile
from os import path as osp
from typing import List, Optional, Sequence, Tuple

import cv2
import lmdb
import numpy as np

from vheatir.torchvision_alias import install_torchvision_alias

install_torchvision_alias()  # basicsr 1.4.2's package import fails on current torchvision without it

from basicsr.utils.lmdb_util import make_lmdb_from_imgs  # noqa: E402

from vheatir.imageio import IMAGE_EXTENSIONS, list_images  # noqa: E402

# Map-size budget: raw pixel bytes x 1.5 (PNG at level >= 1 never exceeds the raw size by
# more than a few bytes per row plus headers), plus a fixed reserve for LMDB's B-tree pages.
MAP_SIZE_FACTOR = 1.5
MAP_SIZE_RESERVE = 10 * 1024 ** 2  # bytes
# Each value lives in whole 4 KiB overflow pages and PNG adds ~100 bytes of headers; for many
# tiny images that rounding is larger than 1.5x the raw bytes, so reserve one page per image.
MAP_SIZE_PER_IMAGE = 4096  # bytes


def _check_key(name: str, folder: str) -> str:
    """Return the LMDB key (file stem) for image ``name``, or raise ValueError if it is unusable."""
    stem = osp.splitext(name)[0]
    where = osp.join(folder, name)
    if '.' in stem:
        # paths_from_lmdb() recovers keys with line.split('.')[0], so "a.b.png" would come back as "a".
        raise ValueError(f"image file name has a '.' in its stem (BasicSR would read the key as "
                         f"{stem.split('.')[0]!r}); rename it: {where}")
    if not stem.isascii():
        # BasicSR encodes keys with str.encode('ascii').
        raise ValueError(f'image file name is not ASCII (LMDB keys must be ASCII); rename it: {where}')
    if any(ch.isspace() for ch in stem):
        # meta_info.txt is space-separated and read line by line.
        raise ValueError(f'image file name contains whitespace (meta_info.txt is space-separated); '
                         f'rename it: {where}')
    return stem


def _read_checked(path: str) -> np.ndarray:
    """Read ``path`` exactly as BasicSR will (IMREAD_UNCHANGED) and check PNG can store it."""
    try:
        img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    except cv2.error as err:  # e.g. absurd header dimensions
        raise ValueError(f'cannot read image ({str(err).strip().splitlines()[-1]}): {path}') from None
    if img is None:
        raise ValueError(f'cannot read image (corrupt or unsupported file): {path}')
    # PNG holds 8/16-bit gray, gray+alpha, BGR or BGRA; anything else would fail inside BasicSR.
    if img.dtype not in (np.uint8, np.uint16):
        raise ValueError(f'image has pixel type {img.dtype}, PNG can store only uint8/uint16: {path}')
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] not in (1, 2, 3, 4)):
        raise ValueError(f'image has unsupported shape {img.shape} for PNG: {path}')
    return img


def _validate(folder: str, lmdb_path: str, compress_level: int) -> Tuple[List[str], List[str], int]:
    """Check all inputs; return (image names, keys, raw pixel bytes summed over all images)."""
    if not isinstance(compress_level, int) or isinstance(compress_level, bool) or not 0 <= compress_level <= 9:
        raise ValueError(f'compress level must be an integer 0..9, got {compress_level!r}')
    if not lmdb_path.endswith('.lmdb'):
        raise ValueError(f"output path must end with '.lmdb': {lmdb_path}")
    # lexists: a dangling symlink at the output path also counts as "something is there".
    if osp.lexists(lmdb_path):
        raise ValueError(f'output already exists (not overwriting it): {lmdb_path}')
    parent = osp.dirname(osp.abspath(lmdb_path))
    if not osp.isdir(parent):
        raise ValueError(f'output parent folder does not exist: {parent}')
    if not osp.exists(folder):
        raise ValueError(f'input folder does not exist: {folder}')
    if not osp.isdir(folder):
        raise ValueError(f'input is not a directory: {folder}')

    names = [osp.basename(p) for p in list_images(folder)]
    if not names:
        raise ValueError(f'no images ({", ".join(e[1:] for e in IMAGE_EXTENSIONS)}) in folder: {folder}')
    keys: List[str] = []
    seen = {}
    for name in names:
        key = _check_key(name, folder)
        if key in seen:
            # Same stem, different extension: the second would silently replace the first.
            raise ValueError(f'two images share the key {key!r} ({seen[key]}, {name}); rename one: '
                             f'{osp.join(folder, name)}')
        seen[key] = name
        keys.append(key)

    raw_bytes = 0
    for name in names:
        raw_bytes += _read_checked(osp.join(folder, name)).nbytes  # h*w*c*bytes-per-sample
    return names, keys, raw_bytes


def build_lmdb(folder: str, lmdb_path: str, compress_level: int = 1) -> int:
    """Build a BasicSR LMDB at ``lmdb_path`` from every image directly inside ``folder``.

    Args:
        folder: Folder holding the images (png/jpg/jpeg/bmp/tif/tiff/webp, any case); not recursive.
        lmdb_path: Output directory; must end with ``.lmdb`` and must not exist yet.
        compress_level: PNG compression level 0..9 for the stored values (lossless at every
            level; higher is smaller and slower). Default 1, as BasicSR.

    Returns:
        Number of images stored. Keys are the file stems, in sorted file-name order.

    Raises:
        ValueError: Bad input (missing folder, no images, unreadable image, output exists or is
            not ``*.lmdb``, file name unusable as a key, ...); nothing has been written then.
        OSError: The build itself failed (LMDB errors are re-raised as OSError); the partial
            output has been removed.

    The LMDB is built in a hidden staging folder beside ``lmdb_path`` and renamed into place only
    when complete, so ``lmdb_path`` never holds a partial database; on failure (including Ctrl-C)
    the staging folder is removed.
    """
    # "out.lmdb/" names the same folder as "out.lmdb"; BasicSR's suffix check needs the latter.
    lmdb_path = lmdb_path.rstrip(os.sep) or lmdb_path
    names, keys, raw_bytes = _validate(folder, lmdb_path, compress_level)
    # BasicSR estimates the map size from the first image only, which is too small when sizes
    # vary; LMDB then fails with MapFullError. Our estimate bounds the whole set (bytes).
    map_size = int(raw_bytes * MAP_SIZE_FACTOR) + MAP_SIZE_RESERVE + MAP_SIZE_PER_IMAGE * len(names)

    parent = osp.dirname(osp.abspath(lmdb_path))
    base = osp.basename(lmdb_path)
    # Same parent => same filesystem, so the final os.rename is atomic.
    staging = tempfile.mkdtemp(prefix=f'.{base}.partial-', dir=parent)
    try:
        built = osp.join(staging, base)  # must not exist: BasicSR sys.exit()s if it does
        # BasicSR prints banners and a tqdm bar per image; keep our own output to one summary line.
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                make_lmdb_from_imgs(folder, built, names, keys, compress_level=compress_level,
                                    map_size=map_size)
        except lmdb.Error as err:  # not an OSError subclass; callers (and main) expect OSError
            raise OSError(f'LMDB write failed for {lmdb_path}: {type(err).__name__}: {err}') from err
        meta = osp.join(built, 'meta_info.txt')
        if not osp.isfile(meta):
            raise OSError(f'BasicSR wrote no meta_info.txt in {lmdb_path}')
        with open(meta) as fin:
            n_lines = sum(1 for _ in fin)
        if n_lines != len(names):
            raise OSError(f'meta_info.txt has {n_lines} lines for {len(names)} images in {lmdb_path}')
        if osp.lexists(lmdb_path):  # appeared while we were building: it is not ours to replace
            raise ValueError(f'output appeared during the build (not overwriting it): {lmdb_path}')
        os.rename(built, lmdb_path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    os.rmdir(staging)
    return len(names)


def dir_size(path: str) -> int:
    """Total size in bytes of the files directly inside ``path``."""
    return sum(e.stat().st_size for e in os.scandir(path) if e.is_file())


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command line: ``make_lmdb.py FOLDER OUT.lmdb [--compress-level N]``.

    Returns 0 on success, 2 on bad input or a failed build (one ``error:`` line on stderr).
    """
    parser = argparse.ArgumentParser(
        description='Build a BasicSR LMDB (PNG-encoded values, keys = file stems, meta_info.txt) '
        'from all images directly inside a folder.')
    parser.add_argument('folder', help='input folder of images (png/jpg/jpeg/bmp/tif/tiff/webp; not recursive)')
    parser.add_argument('lmdb_path', help="output folder, must end with '.lmdb' and must not exist")
    parser.add_argument('--compress-level', type=int, default=1,
                        help='PNG compression level 0..9 for stored images (lossless; default 1)')
    args = parser.parse_args(argv)
    try:
        n = build_lmdb(args.folder, args.lmdb_path, args.compress_level)
    except (ValueError, OSError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    size_mb = dir_size(args.lmdb_path) / 1024 ** 2
    print(f'wrote {n} image{"" if n == 1 else "s"} from {args.folder} to {args.lmdb_path} ({size_mb:.1f} MB)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
