"""Single-folder restoration datasets: the low-quality input is synthesised on the fly.

Only ground-truth images are stored (a folder of images or an LMDB made by
``basicsr.utils.lmdb_util``); each sample degrades its GT with Gaussian noise
(:class:`DenoisingDataset`) or JPEG compression (:class:`JPEGDataset`).

Every sample is a dict::

    lq, gt    float32 tensors, C x H x W, C = in_chans (1 grey, 3 RGB), 0-1 scale
              (the noisy lq is not clipped, so it may leave [0, 1])
    cond      float32 tensor of shape (1,): sigma / 255 or quality / 100 actually used
    lq_path, gt_path   file path (disk backend) or LMDB key

A sample that cannot be made (missing or corrupt LMDB entry, unreadable image file,
image smaller than the training patch) raises :class:`BadSampleError` naming the key or
file; with ``skip_bad_images: true`` training skips it instead (a warning, then another
random image).
"""
import functools
import numbers
import os
from os import path as osp
from typing import Any

import cv2
import numpy as np
import torch
from basicsr.data.data_util import paths_from_lmdb
from basicsr.data.transforms import augment
from basicsr.utils import FileClient, get_root_logger
from basicsr.utils.registry import DATASET_REGISTRY
from torch.utils import data

from ..imageio import IMAGE_EXTENSIONS, list_images
from ..api import correlated_noise_gain, flat_noise_sigma
from .degradations import add_gaussian_noise, camera_noise, jpeg_compress, quantize_8bit

_DECODE_FLAGS = {1: cv2.IMREAD_GRAYSCALE, 3: cv2.IMREAD_COLOR}
_FILE_CLIENTS: dict[tuple[int, str, str], FileClient] = {}
try:
    import lmdb as _lmdb
    _READ_ERRORS: tuple[type[BaseException], ...] = (OSError, _lmdb.Error)
except ImportError:  # lmdb is only needed for the lmdb backend
    _READ_ERRORS = (OSError,)
MAX_SKIPPED_IN_A_ROW = 50  # skip_bad_images: give up after this many bad images in a row


class BadSampleError(ValueError):
    """A training/validation image cannot be read, decoded or cropped; the message names it.

    Raised inside a DataLoader worker, PyTorch re-raises it in the main process with the
    worker's whole traceback as the message; :attr:`reason` recovers our one-line message.
    """

    @property
    def reason(self) -> str:
        text = str(self)
        if 'Original Traceback' in text:  # torch.utils.data worker re-raise: last line is ours
            last = text.rstrip().splitlines()[-1]
            marker = f'{type(self).__name__}: '
            if marker in last:
                return last.split(marker, 1)[1]
        return text


def _file_client(backend: str, root: str) -> FileClient:
    """The FileClient for ``root`` in this process, created on first use.

    Shared per (process, backend, root): py-lmdb refuses to open the same environment
    twice in one process (e.g. a train and a val dataset on one LMDB), and a handle
    must not be used across a fork, so forked dataloader workers open their own.
    """
    key = (os.getpid(), backend, root)
    client = _FILE_CLIENTS.get(key)
    if client is None:
        client = FileClient('lmdb', db_paths=[root], client_keys=['gt']) if backend == 'lmdb' else FileClient('disk')
        _FILE_CLIENTS[key] = client
    return client


def _parse_level(value: Any, name: str, low: float, high: float, integer: bool) -> tuple[float, float]:
    """Turn a fixed level or a ``[lo, hi]`` range into ``(lo, hi)``, checking type and bounds."""
    lo, hi = value if isinstance(value, (list, tuple)) and len(value) == 2 else (value, value)
    for v in (lo, hi):
        if not isinstance(v, numbers.Real) or isinstance(v, bool) or (integer and not float(v).is_integer()):
            kind = 'an integer' if integer else 'a number'
            raise ValueError(f"Option '{name}' must be {kind} or a [lo, hi] pair of them, got {value!r}.")
    if not low <= lo <= hi <= high:
        raise ValueError(f"Option '{name}' must satisfy {low} <= lo <= hi <= {high}, got {value!r}.")
    return (int(lo), int(hi)) if integer else (float(lo), float(hi))


def _random_crop(img: np.ndarray, size: int, rng: np.random.Generator, key: str) -> np.ndarray:
    """Random ``size`` x ``size`` crop (a view, no copy) of an H x W x C image."""
    h, w = img.shape[:2]
    if h < size or w < size:
        raise BadSampleError(f'Image {key} is {h}x{w} (HxW), smaller than gt_size {size}x{size}; '
                             'remove it, lower gt_size or set skip_bad_images: true.')
    top = int(rng.integers(h - size + 1))
    left = int(rng.integers(w - size + 1))
    return img[top:top + size, left:left + size]


def _to_chw_float(img: np.ndarray) -> np.ndarray:
    """uint8 H x W x C (any strides) -> new contiguous float32 C x H x W array in [0, 1]."""
    out = np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32)
    out *= np.float32(1.0 / 255.0)
    return out


class _SyntheticRestorationDataset(data.Dataset):
    """Shared loading, cropping and augmentation for on-the-fly degradation datasets.

    Options (``opt``, as BasicSR passes it):
        dataroot_gt (str): folder of images (sorted, non-recursive) or an ``.lmdb`` folder.
        dataroots_gt (list of str, disk backend): several folders, pooled, instead of
            ``dataroot_gt`` (whose value basicsr's option parser requires to be one path).
        io_backend (dict): ``{type: disk}`` or ``{type: lmdb}``.
        cache_images (bool, disk backend): decode every image once when the dataset is made
            and keep it in memory (shared with forked workers), instead of decoding a whole
            file per training patch; default false. Colour files read as grey (in_chans 1)
            are converted by OpenCV on decoding.
        in_chans (int): 1 = true 8-bit grey (``cv2.IMREAD_GRAYSCALE``), 3 = RGB colour.
        phase (str): 'train' (random crop + augmentation, random degradation level)
            or anything else (whole image, degradation fixed per index).
        gt_size (int, train): side of the square random crop.
        use_hflip, use_rot (bool, train): basicsr ``augment`` (8 flips/rotations).
        permute_channels (bool, train, colour): put the three colour channels of each patch in a
            random order (one of 6); default false.
        saturation (``[lo, hi]``, train, colour): scale each patch's saturation by a factor drawn
            uniformly from the range (each pixel moved away from or towards its BT.601 luma,
            then rounded and clipped to 8 bits); default none. Both widen the colour statistics
            of a small training set.
        val_seed (int, val): per-image generator is ``default_rng(val_seed + index)``;
            default 0.
        max_images (int, optional): use only the first N images (sorted by name), e.g.
            to keep periodic validation during CPU training short; default all.
        skip_bad_images (bool, train): on a :class:`BadSampleError` log a warning (once
            per image and process) and use another random image instead of failing;
            default false. Validation never skips.

    Subclasses implement :meth:`_degrade`.
    """

    def __init__(self, opt: dict) -> None:
        super().__init__()
        self.opt = opt
        self.is_train = opt['phase'] == 'train'
        self.in_chans = int(opt.get('in_chans', 3))
        if self.in_chans not in _DECODE_FLAGS:
            raise ValueError(f"in_chans must be 1 (grey) or 3 (RGB), got {opt.get('in_chans')!r}.")
        if (opt.get('dataroot_gt') is None) == (opt.get('dataroots_gt') is None):
            raise ValueError('Give either dataroot_gt (one folder or LMDB) or dataroots_gt (a list of folders).')
        roots = [str(opt['dataroot_gt'])] if opt.get('dataroot_gt') is not None else [str(r) for r in opt['dataroots_gt']]
        self.gt_root = ', '.join(roots)
        self.backend = opt.get('io_backend', {'type': 'disk'})['type']
        if self.backend == 'lmdb':
            if len(roots) != 1:
                raise ValueError(f'io_backend lmdb reads one dataroot_gt, got dataroots_gt: {self.gt_root}.')
            self.paths = self._keys_from_lmdb(roots[0])
        elif self.backend == 'disk':
            self.paths = [p for root in roots for p in self._files_from_folder(root)]
        else:
            raise ValueError(f"io_backend type must be 'disk' or 'lmdb', got {self.backend!r}.")
        if opt.get('max_images') is not None:
            self.paths = self.paths[:int(opt['max_images'])]
        self._cache: dict[str, np.ndarray] = {}
        if opt.get('cache_images'):
            if self.backend != 'disk':
                raise ValueError('cache_images needs io_backend disk (an LMDB is read per patch already).')
            for key in self.paths:
                self._cache[key] = self._decode(key)
        if self.is_train:
            self.gt_size = int(opt['gt_size'])
            self.use_hflip = bool(opt.get('use_hflip', False))
            self.use_rot = bool(opt.get('use_rot', False))
        self.permute_channels = self.is_train and bool(opt.get('permute_channels', False))
        self.saturation = None
        if self.is_train and opt.get('saturation') is not None:
            self.saturation = _parse_level(opt['saturation'], 'saturation', 0.0, float('inf'), integer=False)
        if (self.permute_channels or self.saturation) and self.in_chans != 3:
            raise ValueError('permute_channels and saturation need colour images (in_chans: 3).')
        self.val_seed = int(opt.get('val_seed', 0))
        self.skip_bad_images = self.is_train and bool(opt.get('skip_bad_images', False))
        self._warned_bad: set[str] = set()
        # Training generator, created lazily in each process (i.e. inside each dataloader worker).
        self._rng_pid: int | None = None
        self._rng: np.random.Generator | None = None

    @staticmethod
    def _files_from_folder(folder: str) -> list[str]:
        if not osp.isdir(folder):
            raise ValueError(f'dataroot_gt folder {folder} does not exist.')
        paths = list_images(folder)
        if not paths:
            raise ValueError(f'dataroot_gt folder {folder} contains no images ({", ".join(IMAGE_EXTENSIONS)}).')
        return paths

    @staticmethod
    def _keys_from_lmdb(folder: str) -> list[str]:
        if not osp.isfile(osp.join(folder, 'meta_info.txt')):
            raise ValueError(f'dataroot_gt {folder} is not an LMDB folder with a meta_info.txt.')
        keys = paths_from_lmdb(folder)
        if not keys:
            raise ValueError(f'LMDB {folder} lists no images in its meta_info.txt.')
        return keys

    def _level_option(self, name: str) -> tuple[str, Any]:
        """Return (option name, value) for a degradation level; ``<name>_val`` wins outside training."""
        if not self.is_train and self.opt.get(f'{name}_val') is not None:
            name = f'{name}_val'
        if name not in self.opt:
            raise ValueError(f"{type(self).__name__} needs option '{name}'.")
        return name, self.opt[name]

    def _train_rng(self) -> np.random.Generator:
        """This process's generator for crops and degradation levels during training.

        Recreated when the pid changes, so forked dataloader workers never share a
        state; seeded from ``torch.initial_seed()``, which PyTorch makes distinct per
        worker (and reproducible under ``torch.manual_seed``).
        """
        pid = os.getpid()
        if self._rng_pid != pid:
            self._rng = np.random.default_rng(torch.initial_seed())
            self._rng_pid = pid
        return self._rng

    def _read_gt(self, key: str) -> np.ndarray:
        """The GT image: uint8 H x W x C, C = in_chans, BGR order for colour (from the cache if any).

        Raises :class:`BadSampleError` naming the LMDB key or file when it is missing,
        unreadable or not a decodable image.
        """
        cached = self._cache.get(key)
        return cached if cached is not None else self._decode(key)

    def _decode(self, key: str) -> np.ndarray:
        """Read and decode one GT image; see :meth:`_read_gt`."""
        where = f'LMDB key {key!r} in {self.gt_root}' if self.backend == 'lmdb' else f'image file {key}'
        root = self.gt_root if self.backend == 'lmdb' else ''  # the disk client ignores its root
        try:
            buf = _file_client(self.backend, root).get(key, 'gt')
        except _READ_ERRORS as err:
            raise BadSampleError(f'Cannot read {where}: {getattr(err, "strerror", None) or err}.') from None
        if buf is None:  # LmdbBackend.get returns None for a key the database does not hold
            raise BadSampleError(f'Missing {where}: listed in meta_info.txt but not in the database.')
        try:
            img = cv2.imdecode(np.frombuffer(buf, np.uint8), _DECODE_FLAGS[self.in_chans]) if len(buf) else None
        except cv2.error:
            img = None
        if img is None:
            raise BadSampleError(f'Cannot decode {where}: corrupt or not an image.')
        return img[..., None] if img.ndim == 2 else img

    def _colour_augment(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Channel permutation and saturation scaling of a uint8 H x W x 3 patch (options above)."""
        if self.permute_channels:
            img = img[..., rng.permutation(3)]
        if self.saturation is not None:
            factor = float(rng.uniform(*self.saturation))
            x = img.astype(np.float32)
            luma = x @ np.array([0.114, 0.587, 0.299], dtype=np.float32)   # BGR order here
            x = luma[..., None] + factor * (x - luma[..., None])
            img = np.clip(np.rint(x), 0, 255).astype(np.uint8)
        return img

    def _degrade(self, img: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, float]:
        """Make the pair from a uint8 H x W x C GT (RGB order, possibly a strided view).

        Returns (lq, gt, cond): float32 C x H x W arrays and the conditioning scalar.
        """
        raise NotImplementedError

    def __getitem__(self, index: int) -> dict:
        if not self.skip_bad_images:
            return self._sample(index)
        for _ in range(MAX_SKIPPED_IN_A_ROW):
            try:
                return self._sample(index)
            except BadSampleError as err:
                key = self.paths[index]
                if key not in self._warned_bad:
                    self._warned_bad.add(key)
                    get_root_logger().warning(f'Skipping bad training image (skip_bad_images): {err}')
                index = int(self._train_rng().integers(len(self.paths)))
        raise BadSampleError(f'{MAX_SKIPPED_IN_A_ROW} bad training images in a row in {self.gt_root} '
                             '(skip_bad_images is on); the data set looks broken.')

    def _sample(self, index: int) -> dict:
        key = self.paths[index]
        img = self._read_gt(key)
        if self.is_train:
            rng = self._train_rng()
            img = _random_crop(img, self.gt_size, rng, key)
            img = augment(img, self.use_hflip, self.use_rot)
            img = self._colour_augment(img, rng)
        else:
            rng = np.random.default_rng(self.val_seed + index)
        if self.in_chans == 3:
            img = img[..., ::-1]  # BGR -> RGB as a view; copied once in _to_chw_float
        lq, gt, cond = self._degrade(img, rng)
        return {
            'lq': torch.from_numpy(lq),
            'gt': torch.from_numpy(gt),
            'cond': torch.tensor([cond], dtype=torch.float32),
            'lq_path': key,
            'gt_path': key,
        }

    def __len__(self) -> int:
        return len(self.paths)


@DATASET_REGISTRY.register()
class DenoisingDataset(_SyntheticRestorationDataset):
    """GT images with additive white Gaussian noise (unclipped) as the input.

    Extra options:
        sigma (float | [lo, hi]): noise std on the 0-255 scale. A range draws a uniform
            float per training patch, and per image (deterministically) in validation.
        sigma_val (float | [lo, hi], optional): replaces ``sigma`` outside training.
        eight_bit_prob (float, train): the share of patches whose noisy input is rounded to
            the 8-bit grid and clipped to [0, 255], as in every PNG a user has; default 0
            (float, unclipped: SwinIR's protocol). Validation is never quantised.

        camera_noise_prob (float): the share of patches (or validation images) that get camera-like noise
            (:func:`camera_noise`: demosaicked, colour-mixed, blurred; for grey, its BT.601 luma)
            instead of white noise, always saved as 8 bits; default 0. (Not then
            JPEG-compressed: that removes a varying part of the noise, which would make the
            reading given as cond wrong.)
        camera_sigma ([lo, hi]): the per-pixel std of that noise on the 0-255 scale,
            uniform; default [1, 15].
        camera_blur ([lo, hi]): the std in px of its Gaussian blur (in-camera noise
            reduction and resampling spread noise over more pixels), uniform, at most
            ``CAMERA_BLUR_MAX``; default [0, 1.2].

    Sample: ``lq = gt + N(0, (sigma/255)^2)`` and ``gt``, float32 C x H x W (RGB or grey),
    ``cond = [sigma / 255]``. Validation noise depends only on ``val_seed + index``. A camera-noise
    patch's cond is what ``sigma='auto'`` (:func:`vheatir.api.estimate_noise_sigma`) reads from
    its noise (:func:`camera_sigma_reading`), so the model learns what that reading means.
    """

    def __init__(self, opt: dict) -> None:
        super().__init__(opt)
        name, value = self._level_option('sigma')
        self.sigma_range = _parse_level(value, name, 0.0, float('inf'), integer=False)
        self.eight_bit_prob = _parse_level(opt.get('eight_bit_prob', 0.0), 'eight_bit_prob', 0.0, 1.0,
                                           integer=False)[0] if self.is_train else 0.0
        self.camera_prob = _parse_level(opt.get('camera_noise_prob', 0.0), 'camera_noise_prob', 0.0, 1.0,
                                        integer=False)[0]
        self.camera_sigma = _parse_level(opt.get('camera_sigma', [1, 15]), 'camera_sigma', 0.0, 255.0, integer=False)
        self.camera_blur = _parse_level(opt.get('camera_blur', [0, 1.2]), 'camera_blur', 0.0, CAMERA_BLUR_MAX,
                                        integer=False)

    def _degrade(self, img: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, float]:
        # Drawn only when enabled, so runs without it keep their random stream.
        if self.camera_prob > 0 and rng.random() < self.camera_prob:
            return self._camera_degrade(img, rng)
        lo, hi = self.sigma_range
        sigma = lo if lo == hi else float(rng.uniform(lo, hi))
        gt = _to_chw_float(img)
        lq = add_gaussian_noise(gt, sigma, rng)
        # Drawn only when enabled, so runs without it keep their random stream.
        if self.eight_bit_prob > 0 and rng.random() < self.eight_bit_prob:
            lq = quantize_8bit(lq)
        return lq, gt, sigma / 255.0

    def _camera_degrade(self, img: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, float]:
        """Camera-noise pair from a uint8 H x W x C GT (RGB order): see the class options."""
        h, w, c = img.shape
        blur, mix = float(rng.uniform(*self.camera_blur)), float(rng.uniform(0.0, CAMERA_MIX_MAX))
        field = camera_noise(h, w, blur, mix, rng)
        if c == 1:
            field = field @ _LUMA_RGB[:, None]
        sigma = float(rng.uniform(*self.camera_sigma))
        noisy = img.astype(np.float32) + field * np.float32(sigma / max(float(np.sqrt(np.mean(field ** 2))), 1e-6))
        noisy = quantize_8bit(noisy * np.float32(1.0 / 255.0)).transpose(2, 0, 1)
        return np.ascontiguousarray(noisy), _to_chw_float(img), camera_sigma_reading(blur, c) * sigma / 255.0


# Camera noise drawn by DenoisingDataset: Gaussian blur std up to 2.5 px, colour mixing in [0, 0.8].
CAMERA_BLUR_MAX, CAMERA_MIX_MAX = 2.5, 0.8
_LUMA_RGB = np.array([0.299, 0.587, 0.114], dtype=np.float32)
_READING_BLURS = np.linspace(0.0, CAMERA_BLUR_MAX, 11)


@functools.lru_cache(maxsize=2)
def _camera_readings(channels: int) -> np.ndarray:
    """``sigma='auto'``'s reading per unit per-pixel std of :func:`camera_noise` at ``_READING_BLURS``.

    Measured once per process on 256 x 256 fields (fixed seed, mixing at the middle of its range,
    std 10 around mid-grey; the reading moves by under 1% with the mixing). This noise is so
    correlated (s2 / s1 > 20) that :func:`vheatir.api.estimate_noise_sigma` returns its camera
    branch, :func:`vheatir.api.correlated_noise_gain` x the flat-block sigma at scale 2, which is what is
    computed here (100x faster than the whole estimate; a test checks the two agree).
    """
    rng = np.random.default_rng(0)
    out = []
    for blur in _READING_BLURS:
        field = camera_noise(256, 256, float(blur), CAMERA_MIX_MAX / 2, rng)
        if channels == 1:
            field = field @ _LUMA_RGB
        field *= 10.0 / 255.0 / float(np.sqrt(np.mean(field ** 2)))
        out.append(correlated_noise_gain(channels) * flat_noise_sigma(0.5 + field, 2) / 10.0)
    return np.array(out)


def camera_sigma_reading(blur: float, channels: int = 3) -> float:
    """What ``sigma='auto'`` reads, per unit of per-pixel std (0-255), from camera noise blurred by ``blur`` px.

    Linear interpolation in the table of :func:`_camera_readings`; from 3.0 (no blur) down to 1.0
    (2.5 px) for colour.
    """
    return float(np.interp(blur, _READING_BLURS, _camera_readings(channels)))


@DATASET_REGISTRY.register()
class JPEGDataset(_SyntheticRestorationDataset):
    """GT images JPEG-compressed with OpenCV as the input (grey images as 1-channel JPEG).

    Extra options:
        quality (int | [lo, hi]): JPEG quality in 1..100. A range draws a uniform
            integer (inclusive) per training patch, and per image (deterministically)
            in validation.
        quality_val (int | [lo, hi], optional): replaces ``quality`` outside training.

    Sample: ``lq`` = decoded JPEG of the (cropped, augmented) uint8 GT and ``gt``,
    float32 C x H x W in [0, 1] (RGB or grey), ``cond = [quality / 100]``.
    """

    def __init__(self, opt: dict) -> None:
        super().__init__(opt)
        name, value = self._level_option('quality')
        self.quality_range = _parse_level(value, name, 1, 100, integer=True)

    def _degrade(self, img: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, float]:
        lo, hi = self.quality_range
        quality = lo if lo == hi else int(rng.integers(lo, hi + 1))
        return _to_chw_float(jpeg_compress(img, quality)), _to_chw_float(img), quality / 100.0
