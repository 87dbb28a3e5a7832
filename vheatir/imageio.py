"""Image files: which names count as images, reading them upright, writing results safely.

The one home for these helpers; the CLI (``inference.py``), the benchmark, the training data and the
LMDB builder use them. Arrays are H x W (gray), H x W x 3 (RGB) or H x W x 4 (RGBA).
"""
import os
import struct
import zlib
from typing import List, Optional

import numpy as np

from .atomic import atomic_write

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')
JPEG_EXTENSIONS = ('.jpg', '.jpeg')


def is_image_name(name: str) -> bool:
    """True when the file name has one of ``IMAGE_EXTENSIONS`` (any case)."""
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def list_images(folder: str) -> List[str]:
    """Sorted paths of the image files directly inside ``folder`` (by extension, any case).

    Symbolic links to files count (``is_file`` follows them); folders named like images do not.
    """
    with os.scandir(folder) as entries:
        return sorted(os.path.join(folder, e.name) for e in entries if e.is_file() and is_image_name(e.name))


def to_uint8(image: np.ndarray) -> np.ndarray:
    """The image rescaled and rounded to uint8 (uint16 / 257, float * 255, clipped), same shape."""
    if image.dtype == np.uint8:
        return image
    scale = 65535.0 if image.dtype == np.uint16 else 1.0
    return np.clip(np.rint(image.astype(np.float64) * (255.0 / scale)), 0, 255).astype(np.uint8)


# EXIF orientation (tag 0x0112) -> the numpy operation that turns the stored pixels upright
# (PIL's ImageOps.exif_transpose: mirror, rotate 180, flip, transpose, rotate 90 CW, transverse, 90 CCW).
_ORIENT = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
    8: lambda a: np.rot90(a, 1),
}


def read_metadata(path: str) -> tuple:
    """(EXIF orientation 1..8, embedded ICC profile bytes or None) of an image file, via PIL's header read."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            orientation = im.getexif().get(0x0112, 1)
            icc = im.info.get('icc_profile') or None
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError):
        return 1, None
    return (orientation if orientation in _ORIENT else 1), icc


def apply_orientation(img: np.ndarray, orientation: int) -> np.ndarray:
    """Turn stored pixels (H x W [x C]) upright for an EXIF ``orientation`` in 1..8."""
    return img if orientation == 1 else np.ascontiguousarray(_ORIENT[orientation](img))


def read_image(path: str, upright: bool = True) -> np.ndarray:
    """Decode ``path``: H x W (gray), H x W x 3 (RGB) or H x W x 4 (RGBA); uint8, uint16 or float32.

    OpenCV expands palette images to BGR (BGRA with a transparency chunk) and gray+alpha to
    BGRA, so one IMREAD_UNCHANGED decode covers every mode. ``upright``: apply the file's EXIF
    orientation (as phones write it), as every viewer does; False keeps the stored pixels (a JPEG's
    8 x 8 grid then starts at the top-left corner). Raises ValueError when the file cannot be read
    (missing, a broken link, no permission) or decoded.
    """
    import cv2

    try:
        data = np.fromfile(path, dtype=np.uint8)  # not cv2.imread: it cannot report why it failed
    except OSError as err:
        raise ValueError(f'cannot read ({err.strerror or err})') from None
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        raise ValueError('cannot decode (corrupt or not an image)')
    if img.dtype not in (np.uint8, np.uint16, np.float32):
        raise ValueError(f'unsupported pixel type {img.dtype}')
    if img.ndim == 3 and img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    elif img.ndim == 3 and img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA)
    return apply_orientation(img, read_metadata(path)[0]) if upright else img


def _png_with_icc(png: bytes, icc: bytes) -> bytes:
    """PNG bytes with an iCCP chunk (the profile, zlib-compressed) inserted after IHDR."""
    body = b'ICC profile\x00\x00' + zlib.compress(icc)
    chunk = struct.pack('>I', len(body)) + b'iCCP' + body + struct.pack('>I', zlib.crc32(b'iCCP' + body))
    ihdr_end = 8 + 4 + 4 + 13 + 4  # signature, then IHDR's length, type, 13 data bytes, CRC
    return png[:ihdr_end] + chunk + png[ihdr_end:]


def write_png(path: str, img: np.ndarray, icc_profile: Optional[bytes] = None) -> None:
    """Write RGB(A)/gray ``img`` as PNG at ``path``, atomically, with ordinary permissions.

    uint8 and uint16 are written as they are; float (from a float TIFF) as 16-bit. ``icc_profile``
    (the input's) is embedded so colour-managed viewers show the result as they showed the input.
    The file appears whole or not at all (a temporary file in the same folder, then renamed) and
    gets mode 0666 minus the umask, as any new file would.
    """
    import cv2

    if img.dtype not in (np.uint8, np.uint16):
        img = np.clip(np.rint(img * 65535.0), 0, 65535).astype(np.uint16)
    if img.ndim == 3 and img.shape[2] in (3, 4):
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR if img.shape[2] == 3 else cv2.COLOR_RGBA2BGRA)
    ok, buf = cv2.imencode('.png', img)
    if not ok:
        raise ValueError('PNG encoding failed')
    data = buf.tobytes()
    if icc_profile:
        data = _png_with_icc(data, icc_profile)
    atomic_write(path, lambda f: f.write(data))
