"""LMDB building (vheatir/data/lmdb_build.py, scripts/make_lmdb.py) and datasets/prepare.py."""
import os
import subprocess
import sys
from os import path as osp

import cv2
import numpy as np
import pytest
from skimage import data as skdata

from basicsr.data.data_util import paths_from_lmdb
from basicsr.utils import FileClient, imfrombytes
from vheatir.data import lmdb_build
from vheatir.data.lmdb_build import build_lmdb

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _leftovers(parent):
    """Staging folders build_lmdb failed to remove."""
    return [n for n in os.listdir(parent) if '.partial-' in n]


@pytest.fixture
def img_dir(tmp_path):
    """Five small images of different sizes, channels, bit depths and formats, plus distractors."""
    folder = tmp_path / 'imgs'
    folder.mkdir()
    camera = skdata.camera()  # 512x512 uint8 gray
    astronaut = np.ascontiguousarray(skdata.astronaut()[..., ::-1])  # RGB -> BGR for cv2
    cv2.imwrite(str(folder / 'gray.png'), camera[100:124, 200:232])  # 24x32x1
    cv2.imwrite(str(folder / 'colour.png'), astronaut[50:70, 180:208])  # 20x28x3
    cv2.imwrite(str(folder / 'photo.jpg'), cv2.resize(astronaut, (40, 30), interpolation=cv2.INTER_AREA),
                [cv2.IMWRITE_JPEG_QUALITY, 90])  # 30x40x3, JPEG source
    cv2.imwrite(str(folder / 'DEEP.PNG'), camera[:10, :12].astype(np.uint16) * 257)  # 16-bit, upper-case ext
    bgra = np.dstack([astronaut[:16, :16], camera[:16, :16]])
    cv2.imwrite(str(folder / 'alpha.png'), bgra)  # 16x16x4
    (folder / 'notes.txt').write_text('not an image')
    (folder / 'sub').mkdir()  # not searched
    cv2.imwrite(str(folder / 'sub' / 'nested.png'), camera[:8, :8])
    return folder


def test_round_trip_pixel_exact(img_dir, tmp_path):
    out = str(tmp_path / 'out.lmdb')
    assert build_lmdb(str(img_dir), out) == 5
    keys = ['DEEP', 'alpha', 'colour', 'gray', 'photo']  # sorted file names, extensions dropped
    assert paths_from_lmdb(out) == keys
    meta = open(osp.join(out, 'meta_info.txt')).read().splitlines()
    assert meta[3] == 'gray.png (24,32,1) 1' and meta[1] == 'alpha.png (16,16,4) 1'

    client = FileClient('lmdb', db_paths=[out], client_keys=['gt'])
    sources = {osp.splitext(n)[0]: n for n in os.listdir(img_dir)}
    for key in keys:
        got = imfrombytes(client.get(key, 'gt'), flag='unchanged', float32=False)
        want = cv2.imread(str(img_dir / sources[key]), cv2.IMREAD_UNCHANGED)
        assert got.dtype == want.dtype and got.shape == want.shape, key
        assert np.array_equal(got, want), key
    assert _leftovers(tmp_path) == []


def test_map_size_covers_growing_images(tmp_path):
    # BasicSR alone sizes the map from the first image (here 4x4): the noise image would not fit.
    folder = tmp_path / 'imgs'
    folder.mkdir()
    rng = np.random.default_rng(0)
    cv2.imwrite(str(folder / 'a.png'), np.zeros((4, 4), np.uint8))
    noise = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)  # incompressible: PNG > raw
    cv2.imwrite(str(folder / 'b.png'), noise)
    out = str(tmp_path / 'grow.lmdb')
    assert build_lmdb(str(folder), out, compress_level=9) == 2
    got = imfrombytes(FileClient('lmdb', db_paths=[out], client_keys=['gt']).get('b', 'gt'), flag='unchanged')
    assert np.array_equal(got, noise)


def test_empty_folder(tmp_path):
    folder = tmp_path / 'empty'
    folder.mkdir()
    (folder / 'readme.txt').write_text('x')
    with pytest.raises(ValueError, match='no images') as exc:
        build_lmdb(str(folder), str(tmp_path / 'o.lmdb'))
    assert str(folder) in str(exc.value)
    assert not osp.lexists(tmp_path / 'o.lmdb')


def test_missing_folder(tmp_path):
    with pytest.raises(ValueError, match='does not exist') as exc:
        build_lmdb(str(tmp_path / 'nope'), str(tmp_path / 'o.lmdb'))
    assert str(tmp_path / 'nope') in str(exc.value)


def test_corrupt_image(img_dir, tmp_path):
    bad = img_dir / 'broken.png'
    bad.write_bytes(b'this is not a png at all' * 10)
    with pytest.raises(ValueError, match='cannot read image') as exc:
        build_lmdb(str(img_dir), str(tmp_path / 'o.lmdb'))
    assert str(bad) in str(exc.value)
    assert not osp.lexists(tmp_path / 'o.lmdb') and _leftovers(tmp_path) == []


def test_output_exists_is_untouched(img_dir, tmp_path):
    out = tmp_path / 'out.lmdb'
    out.mkdir()
    (out / 'keep.txt').write_text('precious')
    with pytest.raises(ValueError, match='already exists') as exc:
        build_lmdb(str(img_dir), str(out))
    assert str(out) in str(exc.value)
    assert os.listdir(out) == ['keep.txt'] and (out / 'keep.txt').read_text() == 'precious'


def test_output_suffix(img_dir, tmp_path):
    out = str(tmp_path / 'out.db')
    with pytest.raises(ValueError, match=r"end with '\.lmdb'") as exc:
        build_lmdb(str(img_dir), out)
    assert out in str(exc.value)
    assert not osp.lexists(out)


def test_dotted_stem(img_dir, tmp_path):
    dotted = img_dir / 'img.v2.png'
    cv2.imwrite(str(dotted), skdata.camera()[:8, :8])
    with pytest.raises(ValueError, match="'.' in its stem") as exc:
        build_lmdb(str(img_dir), str(tmp_path / 'o.lmdb'))
    assert str(dotted) in str(exc.value)


def test_failed_build_leaves_nothing(img_dir, tmp_path, monkeypatch):
    def half_build(data_path, lmdb_path, *args, **kwargs):
        os.makedirs(lmdb_path)
        open(osp.join(lmdb_path, 'data.mdb'), 'wb').close()
        raise RuntimeError('disk on fire')

    monkeypatch.setattr(lmdb_build, 'make_lmdb_from_imgs', half_build)
    out = tmp_path / 'out.lmdb'
    with pytest.raises(RuntimeError, match='disk on fire'):
        build_lmdb(str(img_dir), str(out))
    assert not osp.lexists(out) and _leftovers(tmp_path) == []


def _run(args, cwd=ROOT):
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_cli(img_dir, tmp_path):
    out = tmp_path / 'cli.lmdb'
    # Both runs at once: each subprocess spends seconds importing torch/basicsr.
    procs = [subprocess.Popen([sys.executable, 'scripts/make_lmdb.py', *args], cwd=ROOT, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for args in ([str(tmp_path / 'nope'), str(tmp_path / 'x.lmdb')],
                          [str(img_dir), str(out), '--compress-level', '3'])]
    (bad_out, bad_err), (good_out, good_err) = [p.communicate(timeout=120) for p in procs]

    assert procs[0].returncode == 2
    assert 'Traceback' not in bad_err
    assert bad_err.strip().splitlines() == [f'error: input folder does not exist: {tmp_path / "nope"}']
    assert not osp.lexists(tmp_path / 'x.lmdb')

    assert procs[1].returncode == 0, good_err
    assert good_out.startswith('wrote 5 images') and len(good_out.strip().splitlines()) == 1
    assert paths_from_lmdb(str(out)) == ['DEEP', 'alpha', 'colour', 'gray', 'photo']
    assert open(out / 'meta_info.txt').readline().rstrip().endswith(' 3')


def test_prepare(tmp_path):
    shared = tmp_path / 'shared'
    (shared / 'Train400').mkdir(parents=True)
    camera = skdata.camera()
    cv2.imwrite(str(shared / 'Train400' / 'test_001.png'), camera[:20, :20])
    cv2.imwrite(str(shared / 'Train400' / 'test_002.png'), camera[20:40, 20:40])
    (shared / 'Set12').mkdir()
    cv2.imwrite(str(shared / 'Set12' / '01.png'), camera[:16, :16])
    dest = tmp_path / 'dest'
    (dest / 'Set12').mkdir(parents=True)  # a real folder of the same name must be left alone
    (dest / 'Set12' / 'mine.txt').write_text('mine')
    cmd = [osp.join(ROOT, 'datasets', 'prepare.py'), '--shared', str(shared), '--dest', str(dest)]

    first = _run(cmd, cwd=tmp_path)  # not from the repo: must work from anywhere
    assert first.returncode == 0, first.stderr
    assert osp.islink(dest / 'Train400')
    assert osp.realpath(dest / 'Train400') == osp.realpath(shared / 'Train400')
    assert not osp.islink(dest / 'Set12') and os.listdir(dest / 'Set12') == ['mine.txt']
    assert 'not a link' in first.stdout and 'CBSD432' in first.stdout  # reported, not silent
    assert paths_from_lmdb(str(dest / 'Train400.lmdb')) == ['test_001', 'test_002']
    assert not osp.lexists(dest / 'CBSD432.lmdb')
    stamp = os.stat(dest / 'Train400.lmdb' / 'data.mdb').st_mtime_ns

    second = _run(cmd, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert 'nothing to do' in second.stdout
    assert os.stat(dest / 'Train400.lmdb' / 'data.mdb').st_mtime_ns == stamp

    missing = _run([cmd[0], '--shared', str(tmp_path / 'absent'), '--dest', str(dest)], cwd=tmp_path)
    assert missing.returncode != 0
    assert missing.stderr.strip().splitlines() == [
        f'error: shared datasets folder not found: {tmp_path / "absent"} (pass --shared PATH)']
