"""Tests for vheatir.data: synthetic degradations and the on-the-fly restoration datasets."""
import os

import cv2
import numpy as np
import pytest
import torch
from basicsr.utils.lmdb_util import make_lmdb_from_imgs
from basicsr.utils.registry import DATASET_REGISTRY
from skimage import data as skdata
from torch.utils.data import DataLoader

from vheatir.data.degradations import add_gaussian_noise, jpeg_compress
from vheatir.data.restoration_dataset import DenoisingDataset, JPEGDataset

H, W = 64, 80
PATCH = 32


@pytest.fixture(scope='module')
def image_dir(tmp_path_factory):
    """Two grey (camera) and two colour (astronaut) PNGs of 64x80."""
    folder = tmp_path_factory.mktemp('gt')
    cam, astro = skdata.camera(), skdata.astronaut()
    cv2.imwrite(str(folder / 'a_cam0.png'), cam[100:100 + H, 200:200 + W])
    cv2.imwrite(str(folder / 'b_cam1.png'), cam[300:300 + H, 100:100 + W])
    cv2.imwrite(str(folder / 'c_astro0.png'), cv2.cvtColor(astro[50:50 + H, 150:150 + W], cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(folder / 'd_astro1.png'), cv2.cvtColor(astro[300:300 + H, 300:300 + W], cv2.COLOR_RGB2BGR))
    (folder / 'notes.txt').write_text('not an image')
    return folder


@pytest.fixture(scope='module')
def lmdb_dir(image_dir, tmp_path_factory):
    names = sorted(n for n in os.listdir(image_dir) if n.endswith('.png'))
    out = tmp_path_factory.mktemp('db') / 'gt.lmdb'
    make_lmdb_from_imgs(str(image_dir), str(out), names, [n[:-4] for n in names])
    return out


def make_opt(root, phase='val', in_chans=3, backend='disk', **extra):
    opt = {'name': 'test', 'phase': phase, 'dataroot_gt': str(root), 'io_backend': {'type': backend},
           'in_chans': in_chans}
    if phase == 'train':
        opt.update(gt_size=PATCH, use_hflip=True, use_rot=True)
    opt.update(extra)
    return opt


def to_uint8(t: torch.Tensor) -> np.ndarray:
    """C x H x W tensor in [0, 1] -> H x W x C uint8 (exact for values that came from uint8)."""
    return np.rint(t.numpy().transpose(1, 2, 0) * 255).astype(np.uint8)


def jpeg_cv2_rgb(rgb: np.ndarray, quality: int) -> np.ndarray:
    _, buf = cv2.imencode('.jpg', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def jpeg_cv2_gray(gray: np.ndarray, quality: int) -> np.ndarray:
    _, buf = cv2.imencode('.jpg', gray, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)


# ---------------------------------------------------------------- degradations


def test_add_gaussian_noise_unclipped_float32_and_rng_kinds():
    img = np.zeros((40, 50, 3), np.float32)
    for rng in (np.random.default_rng(0), np.random.RandomState(0)):
        out = add_gaussian_noise(img, 25, rng)
        assert out.dtype == np.float32 and out.shape == img.shape
        assert out.min() < 0  # not clipped
        assert abs(out.std() - 25 / 255) < 0.05 * 25 / 255  # 6000 samples: std error ~1%
    assert np.array_equal(add_gaussian_noise(img, 15, np.random.default_rng(3)),
                          add_gaussian_noise(img, 15, np.random.default_rng(3)))
    assert np.array_equal(add_gaussian_noise(img[..., 0], 0, np.random.default_rng(1)), img[..., 0])


def test_jpeg_compress_matches_cv2_and_validates_quality():
    rgb = skdata.astronaut()[:48, :64]
    gray = skdata.camera()[:48, :64]
    assert np.array_equal(jpeg_compress(rgb, 20), jpeg_cv2_rgb(rgb, 20))
    assert np.array_equal(jpeg_compress(gray, 20), jpeg_cv2_gray(gray, 20))
    assert jpeg_compress(gray[..., None], 20).shape == (48, 64, 1)
    for bad in (0, 101):
        with pytest.raises(ValueError, match='quality'):
            jpeg_compress(rgb, bad)


# ---------------------------------------------------------------- datasets: structure


def test_registered():
    assert DATASET_REGISTRY.get('DenoisingDataset') is DenoisingDataset
    assert DATASET_REGISTRY.get('JPEGDataset') is JPEGDataset


@pytest.mark.parametrize('phase', ['train', 'val'])
@pytest.mark.parametrize('in_chans', [1, 3])
@pytest.mark.parametrize('cls,level', [(DenoisingDataset, {'sigma': 25}), (JPEGDataset, {'quality': 40})])
def test_sample_shapes_dtypes_ranges(image_dir, cls, level, in_chans, phase):
    ds = cls(make_opt(image_dir, phase, in_chans, **level))
    assert len(ds) == 4  # notes.txt is ignored
    size = (PATCH, PATCH) if phase == 'train' else (H, W)
    for i in range(len(ds)):
        s = ds[i]
        for k in ('lq', 'gt'):
            assert s[k].dtype == torch.float32 and tuple(s[k].shape) == (in_chans, *size)
            assert s[k].is_contiguous()
        assert 0 <= s['gt'].min() and s['gt'].max() <= 1
        assert s['cond'].dtype == torch.float32 and s['cond'].shape == (1,)
        assert s['gt_path'] == s['lq_path'] == ds.paths[i] and os.path.isfile(s['gt_path'])
        if cls is JPEGDataset:
            assert 0 <= s['lq'].min() and s['lq'].max() <= 1
            assert s['cond'].item() == pytest.approx(0.40)
        else:
            assert s['cond'].item() == pytest.approx(25 / 255)


def test_gray_is_true_8bit_gray_of_file(image_dir):
    ds = DenoisingDataset(make_opt(image_dir, in_chans=1, sigma=10))
    for i in range(len(ds)):
        s = ds[i]
        ref = cv2.imread(s['gt_path'], cv2.IMREAD_GRAYSCALE)
        assert np.array_equal(to_uint8(s['gt'])[..., 0], ref)
    # Full 0..255 range, i.e. not BasicSR's Y channel (16..235).
    assert ds[0]['gt'].max() == 1.0 and ds[0]['gt'].min() < 16 / 255


def test_colour_is_rgb(image_dir):
    ds = JPEGDataset(make_opt(image_dir, in_chans=3, quality=90))
    for i in (2, 3):
        s = ds[i]
        bgr = cv2.imread(s['gt_path'], cv2.IMREAD_COLOR)
        assert np.array_equal(to_uint8(s['gt']), bgr[..., ::-1])
        assert not np.array_equal(bgr[..., 0], bgr[..., 2])  # the test can tell RGB from BGR


def test_train_patch_is_a_flipped_or_rotated_crop(image_dir):
    ds = DenoisingDataset(make_opt(image_dir, 'train', in_chans=1, sigma=5))
    img = cv2.imread(ds.paths[0], cv2.IMREAD_GRAYSCALE)
    windows = np.lib.stride_tricks.sliding_window_view(img, (PATCH, PATCH))
    seen = set()
    for _ in range(40):
        patch = to_uint8(ds[0]['gt'])[..., 0]
        hits = [(t, f) for t in range(4) for f in range(2)
                if (windows == np.rot90(patch[:, ::-1] if f else patch, t)).all(axis=(2, 3)).any()]
        assert hits, 'training patch is not a crop of the image under any of the 8 dihedral transforms'
        seen.add(hits[0])
    assert len(seen) > 2  # augmentation actually varies


# ---------------------------------------------------------------- denoising


def test_val_noise_is_deterministic_per_index(image_dir):
    opt = make_opt(image_dir, in_chans=3, sigma=[10, 50])
    a, b = DenoisingDataset(opt), DenoisingDataset(dict(opt))
    for i in range(len(a)):
        sa, sb = a[i], b[i]
        assert torch.equal(sa['lq'], sb['lq']) and torch.equal(sa['cond'], sb['cond'])
    res0, res1 = a[0]['lq'] - a[0]['gt'], a[1]['lq'] - a[1]['gt']  # same size, different index
    assert not torch.allclose(res0, res1)
    assert a[0]['cond'] != a[1]['cond']
    c = DenoisingDataset(make_opt(image_dir, in_chans=3, sigma=[10, 50], val_seed=7))
    assert not torch.equal(c[0]['lq'], a[0]['lq'])


def test_max_images_keeps_the_first_files_by_name(image_dir, lmdb_dir):
    full = DenoisingDataset(make_opt(image_dir, sigma=25))
    two = DenoisingDataset(make_opt(image_dir, sigma=25, max_images=2))
    assert len(full) == 4 and len(two) == 2
    assert [os.path.basename(p) for p in two.paths] == ['a_cam0.png', 'b_cam1.png']
    assert torch.equal(two[1]['lq'], full[1]['lq'])   # same image, same seeded noise
    assert len(DenoisingDataset(make_opt(lmdb_dir, backend='lmdb', sigma=25, max_images=3))) == 3


def test_sigma_val_overrides_in_validation_only(image_dir):
    val = DenoisingDataset(make_opt(image_dir, sigma=[0, 55], sigma_val=15))
    assert val[0]['cond'].item() == pytest.approx(15 / 255)
    train = DenoisingDataset(make_opt(image_dir, 'train', sigma=[0, 55], sigma_val=15))
    assert len({round(train[0]['cond'].item(), 6) for _ in range(5)}) > 1


def test_val_noise_not_clipped(tmp_path):
    cv2.imwrite(str(tmp_path / 'black.png'), np.zeros((40, 40), np.uint8))
    s = DenoisingDataset(make_opt(tmp_path, in_chans=1, sigma=25))[0]
    assert s['lq'].min() < -0.1 and (s['lq'] < 0).float().mean() > 0.4


def test_train_noise_std_matches_sigma(image_dir):
    # 16 patches x 3 x 32 x 32 = 49k samples: std error of the sample std ~0.3%; allow 3%.
    ds = DenoisingDataset(make_opt(image_dir, 'train', in_chans=3, sigma=25))
    res = torch.cat([(s['lq'] - s['gt']).flatten() for s in (ds[i % 4] for i in range(16))])
    assert abs(res.std().item() - 25 / 255) < 0.03 * 25 / 255
    assert abs(res.mean().item()) < 4 * (25 / 255) / res.numel() ** 0.5


def test_train_sigma_range_draws_vary_and_cond_matches(image_dir):
    ds = DenoisingDataset(make_opt(image_dir, 'train', in_chans=3, sigma=[5, 50]))
    conds = []
    for i in range(20):
        s = ds[i % 4]
        sigma = s['cond'].item() * 255
        assert 5 <= sigma <= 50
        # 3072 samples per patch: std error ~1.3%; allow 8%.
        assert (s['lq'] - s['gt']).std().item() * 255 == pytest.approx(sigma, rel=0.08)
        conds.append(sigma)
    assert len(set(conds)) == 20 and max(conds) - min(conds) > 15


# ---------------------------------------------------------------- JPEG


@pytest.mark.parametrize('in_chans', [1, 3])
def test_jpeg_val_lq_equals_cv2_roundtrip(image_dir, in_chans):
    ds = JPEGDataset(make_opt(image_dir, in_chans=in_chans, quality=30))
    for i in range(len(ds)):
        s = ds[i]
        lq = to_uint8(s['lq'])
        if in_chans == 1:
            assert s['lq'].shape[0] == 1
            ref = jpeg_cv2_gray(cv2.imread(s['gt_path'], cv2.IMREAD_GRAYSCALE), 30)[..., None]
        else:
            ref = jpeg_cv2_rgb(cv2.imread(s['gt_path'], cv2.IMREAD_COLOR)[..., ::-1], 30)
        assert np.array_equal(lq, ref)
        assert not np.array_equal(lq, to_uint8(s['gt']))


@pytest.mark.parametrize('in_chans', [1, 3])
def test_jpeg_train_quality_range_and_cond(image_dir, in_chans):
    ds = JPEGDataset(make_opt(image_dir, 'train', in_chans=in_chans, quality=[10, 90]))
    qualities = set()
    for i in range(12):
        s = ds[i % 4]
        q = round(s['cond'].item() * 100)
        assert 10 <= q <= 90 and s['cond'].item() == pytest.approx(q / 100)
        gt = to_uint8(s['gt'])
        ref = jpeg_cv2_gray(gt[..., 0], q)[..., None] if in_chans == 1 else jpeg_cv2_rgb(gt, q)
        assert np.array_equal(to_uint8(s['lq']), ref)
        qualities.add(q)
    assert len(qualities) > 3


def test_jpeg_quality_val_deterministic(image_dir):
    opt = make_opt(image_dir, quality=[10, 90])
    a, b = JPEGDataset(opt), JPEGDataset(dict(opt))
    assert [a[i]['cond'].item() for i in range(4)] == [b[i]['cond'].item() for i in range(4)]
    assert JPEGDataset(make_opt(image_dir, quality=[10, 90], quality_val=55))[1]['cond'].item() == pytest.approx(0.55)


# ---------------------------------------------------------------- backends and errors


@pytest.mark.parametrize('in_chans', [1, 3])
def test_disk_and_lmdb_agree(image_dir, lmdb_dir, in_chans):
    disk = DenoisingDataset(make_opt(image_dir, in_chans=in_chans, sigma=15))
    db = DenoisingDataset(make_opt(lmdb_dir, in_chans=in_chans, backend='lmdb', sigma=15))
    assert len(db) == len(disk)
    for i in range(len(db)):
        sd, sl = disk[i], db[i]
        assert sl['gt_path'] == os.path.splitext(os.path.basename(sd['gt_path']))[0]
        assert torch.equal(sd['gt'], sl['gt']) and torch.equal(sd['lq'], sl['lq'])
    # A second dataset on the same LMDB in this process (py-lmdb forbids opening an env twice).
    jpeg = JPEGDataset(make_opt(lmdb_dir, 'train', in_chans=in_chans, backend='lmdb', quality=50))
    assert jpeg[0]['gt'].shape == (in_chans, PATCH, PATCH) and db[1]['gt'].shape == (in_chans, H, W)


def test_too_small_image_names_file_and_sizes(tmp_path):
    cv2.imwrite(str(tmp_path / 'tiny.png'), np.full((20, 30), 128, np.uint8))
    ds = DenoisingDataset(make_opt(tmp_path, 'train', in_chans=1, sigma=25, gt_size=48))
    with pytest.raises(ValueError, match=r'tiny\.png.*20x30.*48x48'):
        ds[0]


def test_missing_or_empty_folder_and_bad_options(tmp_path):
    with pytest.raises(ValueError, match='does_not_exist'):
        DenoisingDataset(make_opt(tmp_path / 'does_not_exist', sigma=25))
    (tmp_path / 'empty').mkdir()
    with pytest.raises(ValueError, match='empty'):
        JPEGDataset(make_opt(tmp_path / 'empty', quality=40))
    cv2.imwrite(str(tmp_path / 'x.png'), np.zeros((8, 8), np.uint8))
    with pytest.raises(ValueError, match='quality'):
        JPEGDataset(make_opt(tmp_path, quality=[50, 120]))
    with pytest.raises(ValueError, match='sigma'):
        DenoisingDataset(make_opt(tmp_path, sigma=[30, 10]))
    with pytest.raises(ValueError, match='in_chans'):
        DenoisingDataset(make_opt(tmp_path, in_chans=2, sigma=25))


def test_undecodable_file_raises(tmp_path):
    (tmp_path / 'broken.png').write_bytes(b'not a png')
    with pytest.raises(ValueError, match=r'broken\.png'):
        DenoisingDataset(make_opt(tmp_path, sigma=25))[0]


def test_dataloader_workers_draw_different_noise(tmp_path):
    flat = np.full((PATCH, PATCH), 128, np.uint8)  # crops/flips cannot differ: only the noise can
    for i in range(4):
        cv2.imwrite(str(tmp_path / f'{i}.png'), flat)
    ds = DenoisingDataset(make_opt(tmp_path, 'train', in_chans=1, sigma=25))
    ds[0]  # create the per-process state in the parent before the workers fork
    loader = DataLoader(ds, batch_size=1, num_workers=2, shuffle=False)
    first, second = [b['lq'] - b['gt'] for _, b in zip(range(2), loader)]  # worker 0, worker 1
    assert not torch.allclose(first, second)
