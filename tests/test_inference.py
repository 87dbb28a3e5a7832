"""Inference: the weights format, the restore() API and inference.py, with tiny random-init models.

Nothing here needs shipped weights or benchmark data: the fixture exports tiny VHeatIRs
(embed_dim 8, one block) from fake BasicSR checkpoints into a temporary folder.
"""
import hashlib
import os
import re
import subprocess
import sys
import warnings

import cv2
import numpy as np
import pytest
import scipy.fft
import torch
import yaml
from basicsr.archs.swinir_arch import SwinIR
from PIL import Image, ImageOps

import vheatir.allocator
import vheatir.amp
from vheatir import api, restore
from vheatir.api import (CORRELATED_NOISE_GAIN, CORRELATED_NOISE_GAIN_GRAY, CORRELATION_RATIO, _condition, _tile_spans,
                         estimate_jpeg_quality, estimate_noise, estimate_noise_sigma, estimate_peak_bytes, estimate_quality,
                         flat_noise_sigma, white_noise_sigma)
from vheatir.archs.vheatir_arch import VHeatIR
from vheatir.data.degradations import add_gaussian_noise, camera_noise, jpeg_compress
from vheatir.data.samples import sample_image
from vheatir.imageio import read_image
from vheatir.weights import (FORMAT, deepen_params, default_weights, export_weights, load_network, read_manifest,
                             size_label, update_manifest, warm_start_params)

pytestmark = pytest.mark.usefixtures('one_torch_thread')
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INFERENCE = os.path.join(ROOT, 'inference.py')
TINY = {'embed_dim': 8, 'depths': [1], 'cond_chans': 1, 'fve_grid': 4}
# One thread: fast for models this small, and polite to anything else running on the machine.
CLI_ENV = dict(os.environ, OMP_NUM_THREADS='1')


@pytest.fixture(scope='module')
def weights(tmp_path_factory):
    """{'gray', 'color', 'jpeg_gray', 'jpeg_color'} -> tiny random-init weights file; '<name>_ckpt'/'<name>_opt' -> its sources."""
    folder = tmp_path_factory.mktemp('weights')
    paths = {}
    kinds = (('gray', 'denoise', 'gray'), ('color', 'denoise', 'color'), ('jpeg_gray', 'jpeg', 'gray'),
             ('jpeg_color', 'jpeg', 'color'))
    for name, task, color in kinds:
        net_g = {'in_chans': 1 if color == 'gray' else 3, **TINY}
        torch.manual_seed(1)
        raw = VHeatIR(**net_g).state_dict()
        torch.manual_seed(0)  # the EMA weights, which export must prefer, are the seed-0 model
        ema = VHeatIR(**net_g).state_dict()
        torch.save({'params': raw, 'params_ema': ema}, folder / f'net_g_{name}.pth')
        with open(folder / f'{name}.yml', 'w') as f:
            yaml.safe_dump({'network_g': {'type': 'VHeatIR', **net_g}}, f)
        paths[name] = str(folder / f'{name}.pth')
        paths[f'{name}_ckpt'], paths[f'{name}_opt'] = str(folder / f'net_g_{name}.pth'), str(folder / f'{name}.yml')
        export_weights(paths[f'{name}_ckpt'], paths[f'{name}_opt'], paths[name], task, color, {'iterations': 7})
    return paths


def crop(name, gray, size):
    """size x size centre crop of a scikit-image sample (the whole image for size None), uint8."""
    img = sample_image(name, gray)
    if size is None:
        return img
    top, left = (img.shape[0] - size) // 2, (img.shape[1] - size) // 2
    return img[top:top + size, left:left + size]


def noisy_uint8(name, gray, size, seed=0):
    """crop() plus sigma=25 Gaussian noise, rounded and clipped to uint8."""
    img = crop(name, gray, size)
    noisy = add_gaussian_noise(img.astype(np.float32) / 255, 25, np.random.default_rng(seed))
    return np.clip(np.rint(noisy * 255), 0, 255).astype(np.uint8)


# ------------------------------------------------------------------- weights
def test_size_label_names_a_model_by_its_option_file(weights):
    """Tables and pictures name a model 'vHeatIR-<size>' from the option file its weights record."""
    assert size_label('options/train/train_vHeatIR_M_jpeg_gray.yml') == 'vHeatIR-M'
    assert size_label('/elsewhere/train_vHeatIR_L_denoise_color.yml') == 'vHeatIR-L'
    assert size_label('my_run.yml') == size_label(None) == 'vHeatIR-S'
    _, info = load_network(weights['jpeg_gray'])  # what scripts/plot_before_after.py names its panel by
    assert info['meta']['option'] == weights['jpeg_gray_opt'] and size_label(info['meta']['option']) == 'vHeatIR-S'


def test_export_load_and_manifest(weights, tmp_path):
    blob = torch.load(weights['gray'], weights_only=True)  # a plain dict: the safe loader reads it
    assert blob['format'] == FORMAT and blob['task'] == 'denoise' and blob['color'] == 'gray'
    assert blob['network_g'] == {'in_chans': 1, **TINY} and blob['meta']['iterations'] == 7
    assert all(v.dtype == torch.float16 for v in blob['params'].values())

    net, info = load_network(weights['gray'], 'cpu')
    assert not net.training and info['color'] == 'gray' and info['task'] == 'denoise'
    torch.manual_seed(0)
    ema = VHeatIR(in_chans=1, **TINY).state_dict()
    for key, value in net.state_dict().items():
        assert value.dtype == torch.float32
        assert torch.equal(value, ema[key].half().float()), key  # params_ema, rounded to float16

    manifest = str(tmp_path / 'manifest.json')
    entry = export_weights(weights['gray_ckpt'], weights['gray_opt'], str(tmp_path / 'w.pth'), 'denoise', 'gray',
                           {'iterations': 7})
    assert entry['sha256'] == hashlib.sha256(open(tmp_path / 'w.pth', 'rb').read()).hexdigest()
    assert entry['size_bytes'] == os.path.getsize(tmp_path / 'w.pth') and entry['iterations'] == 7
    update_manifest(entry, manifest)
    update_manifest(dict(entry, benchmark={'Set12': 1.0}), manifest)  # same task/color/file: replaced
    assert len(read_manifest(manifest)) == 1 and read_manifest(manifest)[0]['benchmark'] == {'Set12': 1.0}
    assert os.path.samefile(default_weights('denoise', 'gray', manifest), tmp_path / 'w.pth')
    with pytest.raises(FileNotFoundError, match='jpeg/color'):
        default_weights('jpeg', 'color', manifest)
    assert [p for p in os.listdir(tmp_path) if p.endswith('.tmp')] == []  # atomic writes left nothing

    # key='params' exports the raw weights (the fixture's seed-1 model), and says so.
    export_weights(weights['gray_ckpt'], weights['gray_opt'], str(tmp_path / 'raw.pth'), 'denoise', 'gray', key='params')
    net, info = load_network(str(tmp_path / 'raw.pth'), 'cpu')
    torch.manual_seed(1)
    first = VHeatIR(in_chans=1, **TINY).state_dict()
    assert info['meta']['checkpoint_key'] == 'params'
    assert all(torch.equal(v, first[k].half().float()) for k, v in net.state_dict().items())
    with pytest.raises(ValueError, match='no "params_x" in this checkpoint'):
        export_weights(weights['gray_ckpt'], weights['gray_opt'], str(tmp_path / 'x.pth'), 'denoise', 'gray',
                       key='params_x')


def test_level_specialists_are_chosen_only_for_their_exact_level(weights, tmp_path):
    manifest = str(tmp_path / 'manifest.json')
    blind = export_weights(weights['jpeg_gray_ckpt'], weights['jpeg_gray_opt'], str(tmp_path / 'all.pth'),
                           'jpeg', 'gray')
    q10 = export_weights(weights['jpeg_gray_ckpt'], weights['jpeg_gray_opt'], str(tmp_path / 'q10.pth'),
                         'jpeg', 'gray', level=10)
    assert 'level' not in blind and q10['level'] == 10
    assert load_network(str(tmp_path / 'q10.pth'))[1]['level'] == 10
    update_manifest(q10, manifest)
    with pytest.raises(FileNotFoundError, match='jpeg/gray'):  # a specialist alone serves no other level
        default_weights('jpeg', 'gray', manifest, level=20)
    update_manifest(blind, manifest)  # listed after the specialist: order must not matter
    assert os.path.samefile(default_weights('jpeg', 'gray', manifest, level=10), tmp_path / 'q10.pth')
    for level in (None, 20):
        assert os.path.samefile(default_weights('jpeg', 'gray', manifest, level=level), tmp_path / 'all.pth')
    # a labelled comparison snapshot listed last is still never the default while 'all' is listed
    update_manifest(dict(blind, file='zz_snapshot.pth', label='vHeatIR-S (2k it)'), manifest)
    assert os.path.samefile(default_weights('jpeg', 'gray', manifest), tmp_path / 'all.pth')
    # restore() passes a level on only when it was given, never when it was estimated
    image = jpeg_compress(sample_image('camera', True)[:64, :64], 10)
    assert _condition('jpeg', image, None, 10) == (0.10, 10, 'white')
    assert _condition('jpeg', image, None, 'auto')[1] is None
    assert _condition('denoise', image, 25, None) == (25 / 255, 25.0, 'white')
    assert _condition('denoise', image, 'auto', None)[1] is None


def camera_noisy(gray: bool, sigma: float = 8.0) -> np.ndarray:
    """uint8 scikit-image sample (96 x 96 crop) with camera-like noise of per-pixel std ``sigma``."""
    clean = crop('astronaut', gray, 96).astype(np.float32)
    field = camera_noise(96, 96, 0.5, 0.4, np.random.default_rng(3))
    if gray:
        field = field @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return np.clip(np.rint(clean + field * (sigma / field.std())), 0, 255).astype(np.uint8)


def test_camera_noise_model_is_picked_only_for_camera_noise(weights, tmp_path, monkeypatch):
    manifest = str(tmp_path / 'manifest.json')
    white = export_weights(weights['gray_ckpt'], weights['gray_opt'], str(tmp_path / 'white.pth'), 'denoise', 'gray')
    update_manifest(white, manifest)
    assert os.path.samefile(default_weights('denoise', 'gray', manifest, noise='camera'), tmp_path / 'white.pth')
    camera = export_weights(weights['gray_ckpt'], weights['gray_opt'], str(tmp_path / 'camera.pth'), 'denoise',
                            'gray', noise='camera')
    assert camera['noise'] == 'camera' and 'noise' not in white
    assert load_network(str(tmp_path / 'camera.pth'))[1]['noise'] == 'camera'
    update_manifest(camera, manifest)   # listed last: still never the model for white noise
    assert os.path.samefile(default_weights('denoise', 'gray', manifest), tmp_path / 'white.pth')
    assert os.path.samefile(default_weights('denoise', 'gray', manifest, noise='camera'), tmp_path / 'camera.pth')
    with pytest.raises(ValueError, match='noise'):
        export_weights(weights['jpeg_gray_ckpt'], weights['jpeg_gray_opt'], str(tmp_path / 'j.pth'), 'jpeg', 'gray',
                       noise='camera')

    rng = np.random.default_rng(0)
    white_noisy = np.clip(crop('astronaut', True, 96) + rng.normal(0, 15, (96, 96)), 0, 255).astype(np.uint8)
    assert estimate_noise(white_noisy)[1] == 'white'
    assert estimate_noise(camera_noisy(True))[1] == 'camera' and estimate_noise(camera_noisy(False))[1] == 'camera'
    # restore() asks for the camera model only when it estimated camera noise itself.
    asked = []
    monkeypatch.setattr(api, 'default_weights',
                        lambda task, mode, level=None, noise='white': asked.append(noise) or weights['gray'])
    for image, sigma in ((camera_noisy(True), 'auto'), (white_noisy, 'auto'), (camera_noisy(True), 10)):
        restore(image, 'denoise', sigma=sigma, amp=None)
    assert asked == ['camera', 'white', 'white']


def test_load_network_errors(weights, tmp_path):
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        load_network(str(tmp_path / 'missing.pth'))
    (tmp_path / 'garbage.pth').write_bytes(b'not a torch file')
    with pytest.raises(ValueError, match='garbage.pth'):
        load_network(str(tmp_path / 'garbage.pth'))
    with pytest.raises(ValueError, match='not a vHeatIR weights file'):
        load_network(weights['gray_ckpt'])  # a BasicSR checkpoint, not a weights file


def test_export_script_records_a_continued_run(weights, tmp_path):
    """A fine-tune exported with --continued-from carries the earlier provenance and the totals."""
    out = tmp_path / 'continued.pth'
    proc = subprocess.run([sys.executable, os.path.join(ROOT, 'scripts', 'export_weights.py'),
                           '--checkpoint', weights['gray_ckpt'], '--option', weights['gray_opt'],
                           '--task', 'denoise', '--color', 'gray', '--iterations', '5', '--wall-time', '60',
                           '--continued-from', weights['gray'], '--out', str(out), '--no-manifest'],
                          capture_output=True, text=True, env=CLI_ENV, timeout=300)
    assert proc.returncode == 0, proc.stderr
    meta = torch.load(out, weights_only=True)['meta']
    assert meta['iterations'] == 5 and meta['total_iterations'] == 5 + 7   # the fixture's weights: 7
    assert meta['continued_from']['sha256'] == hashlib.sha256(open(weights['gray'], 'rb').read()).hexdigest()
    assert 'total_wall_time_s' not in meta   # the earlier run recorded no wall time: no made-up total
    assert '"iterations": 12' in proc.stdout   # the manifest entry counts the whole chain


def test_warm_start_gray_to_colour_keeps_the_function_on_gray_images(weights):
    params = warm_start_params(weights['gray'], 3)
    colour = VHeatIR(in_chans=3, **TINY).eval()
    colour.load_state_dict(params, strict=True)
    gray, _ = load_network(weights['gray'])
    x = torch.rand(1, 1, 20, 24)
    cond = torch.tensor([[0.1]])
    with torch.no_grad():
        out3, out1 = colour(x.expand(1, 3, 20, 24), cond), gray(x, cond)
    for c in range(3):  # an image with equal channels is restored exactly as the gray model would
        torch.testing.assert_close(out3[:, c:c + 1], out1, atol=1e-5, rtol=0)
    back = warm_start_params(weights['color'], 1)  # and the reverse direction builds a loadable gray net
    VHeatIR(in_chans=1, **TINY).load_state_dict(back, strict=True)


def test_deepen_keeps_the_function_and_the_new_blocks_learn(weights, tmp_path):
    net, info = load_network(weights['jpeg_gray'])
    deeper_depths = [d + 1 for d in info['network_g']['depths']]
    deeper = VHeatIR(**{**info['network_g'], 'depths': deeper_depths})
    deeper.load_state_dict(deepen_params(weights['jpeg_gray'], deeper_depths), strict=True)
    x, cond = torch.rand(2, 1, 21, 26), torch.tensor([[0.1], [0.7]])
    with torch.no_grad():
        torch.testing.assert_close(deeper(x, cond), net(x, cond), atol=1e-5, rtol=0)
    deeper(x, cond).square().mean().backward()   # zero output projections still get a gradient
    assert deeper.groups[0].blocks[-1].hco.out_proj.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match='at least as deep'):
        deepen_params(weights['jpeg_gray'], [0] * len(deeper_depths))
    # The script composes it with the colour warm start and names a bad --depths in one line.
    out = tmp_path / 'deep.pth'
    proc = subprocess.run([sys.executable, os.path.join(ROOT, 'scripts', 'warm_start.py'), '--weights', weights['gray'], '--in-chans', '3',
                           '--depths', ','.join(map(str, deeper_depths)), '--out', str(out)],
                          capture_output=True, text=True, env=CLI_ENV, timeout=300)
    assert proc.returncode == 0, proc.stderr
    VHeatIR(**{**info['network_g'], 'in_chans': 3, 'depths': deeper_depths}).load_state_dict(
        torch.load(out, weights_only=True)['params'], strict=True)
    proc = subprocess.run([sys.executable, os.path.join(ROOT, 'scripts', 'warm_start.py'), '--weights', weights['gray'], '--depths', '4,x',
                           '--out', str(tmp_path / 'bad.pth')], capture_output=True, text=True, env=CLI_ENV, timeout=300)
    assert proc.returncode == 2 and proc.stderr.count('\n') == 1 and '--depths' in proc.stderr
    assert not (tmp_path / 'bad.pth').exists()


TINY_SWINIR = {'upscale': 1, 'in_chans': 1, 'img_size': 16, 'window_size': 8, 'img_range': 1.0, 'depths': [1],
               'embed_dim': 8, 'num_heads': [2], 'mlp_ratio': 2, 'upsampler': '', 'resi_connection': '1conv'}


def tiny_swinir_weights(folder) -> dict:
    """Export a random-init gray TINY_SWINIR into ``folder``/s.pth; returns its manifest entry."""
    with open(folder / 'swinir.yml', 'w') as f:
        yaml.safe_dump({'network_g': {'type': 'SwinIR', **TINY_SWINIR}}, f)
    torch.save({'params': SwinIR(**TINY_SWINIR).state_dict()}, folder / 'net_g_3.pth')
    return export_weights(str(folder / 'net_g_3.pth'), str(folder / 'swinir.yml'), str(folder / 's.pth'),
                          'denoise', 'gray')


def test_warm_start_swinir_gray_to_colour_loads_strictly(tmp_path):
    tiny_swinir_weights(tmp_path)
    params = warm_start_params(str(tmp_path / 's.pth'), 3)
    SwinIR(**{**TINY_SWINIR, 'in_chans': 3}).load_state_dict(params, strict=True)
    gray, _ = load_network(str(tmp_path / 's.pth'))   # as stored (the file may round the floats)
    # The head sees a gray-looking image as the gray head did; the tail repeats the gray output.
    torch.testing.assert_close(params['conv_first.weight'].sum(dim=1), gray.conv_first.weight.detach()[:, 0])
    for c in range(3):
        torch.testing.assert_close(params['conv_last.weight'][c], gray.conv_last.weight.detach()[0])


def test_swinir_weights_load_but_restore_refuses_them(tmp_path):
    entry = tiny_swinir_weights(tmp_path)
    assert entry['arch'] == 'SwinIR' and entry['params'] == sum(p.numel() for p in SwinIR(**TINY_SWINIR).parameters())
    index = torch.load(tmp_path / 's.pth', weights_only=True)['params']['layers.0.residual_group.blocks.0.attn.'
                                                                        'relative_position_index']
    assert index.dtype == torch.int64  # integer buffers are not halved
    net, info = load_network(str(tmp_path / 's.pth'))
    assert isinstance(net, SwinIR) and info['arch'] == 'SwinIR'
    manifest = str(tmp_path / 'manifest.json')
    update_manifest(entry, manifest)
    assert os.path.samefile(default_weights('denoise', 'gray', manifest, arch='SwinIR'), tmp_path / 's.pth')
    with pytest.raises(FileNotFoundError, match='VHeatIR'):  # SwinIR is never picked as our default
        default_weights('denoise', 'gray', manifest)
    with pytest.raises(ValueError, match='SwinIR weights'):
        restore(np.zeros((16, 16), np.uint8), sigma=10, weights=str(tmp_path / 's.pth'))


# ----------------------------------------------------------------------- API
@pytest.mark.parametrize('shape', [(37, 45), (37, 45, 1), (37, 45, 3), (37, 45, 4)])
def test_restore_keeps_shape_dtype_and_alpha(weights, shape):
    both = [weights['gray'], weights['color']]
    img8 = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    out8 = restore(img8, sigma=25, weights=both)
    img16 = img8.astype(np.uint16) * 257
    out16 = restore(img16, sigma=25, weights=both)
    imgf = img8.astype(np.float32) / 255
    outf = restore(imgf, sigma=25, weights=both)
    for img, out in ((img8, out8), (img16, out16), (imgf, outf)):
        assert out.shape == img.shape and out.dtype == img.dtype
        if len(shape) == 3 and shape[2] == 4:
            assert np.array_equal(out[..., 3], img[..., 3])
    # The three dtypes hold the same values, so they restore to the same image up to rounding.
    assert np.abs(out16.astype(np.int64) - 257 * out8.astype(np.int64)).max() <= 129
    assert np.abs(np.clip(outf, 0, 1) * 255 - out8).max() <= 0.51  # floats are not clipped


def test_restore_gray_looking_colour_and_errors(weights):
    gray = np.random.default_rng(1).integers(0, 256, (30, 40), dtype=np.uint8)
    rgb = np.repeat(gray[..., None], 3, axis=2)
    out = restore(rgb, sigma=15, weights=weights['gray'])  # equal channels: the gray model serves
    assert out.shape == rgb.shape
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 0], out[..., 2])
    assert np.array_equal(out[..., 0], restore(gray, sigma=15, weights=weights['gray']))

    colour = np.random.default_rng(2).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match='colour image needs color weights'):
        restore(colour, sigma=15, weights=weights['gray'])
    with pytest.raises(ValueError, match='are for jpeg, not denoise'):
        restore(gray, sigma=15, weights=weights['jpeg_gray'])
    with pytest.raises(ValueError, match='dtype'):
        restore(gray.astype(np.int32), weights=weights['gray'])
    with pytest.raises(ValueError, match='shape'):
        restore(np.zeros((8, 8, 2), np.uint8), weights=weights['gray'])
    with pytest.raises(ValueError, match='sigma'):
        restore(gray, sigma=-1, weights=weights['gray'])
    with pytest.raises(ValueError, match='quality'):
        restore(gray, task='jpeg', quality=0, weights=weights['jpeg_gray'])
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        restore(gray, sigma=15, weights='nope.pth')

    jpeg = jpeg_compress(crop('camera', True, 64), 30)
    assert restore(jpeg, task='jpeg', weights=weights['jpeg_gray']).shape == jpeg.shape  # quality 'auto'


def test_jpeg_restore_leaves_nearly_lossless_and_grid_free_images_as_they_are(weights, tmp_path):
    """Above the JPEG_MAX_QUALITY of the weights' colour mode, or with no JPEG grid to find, the
    models would make an image worse: restore() returns a copy with a warning; at the limit it
    still restores."""
    clean = crop('camera', True, 64)
    for image, quality, message in ((jpeg_compress(clean, 97), 97, 'quality 97 is above 96'),
                                    (jpeg_compress(clean, 98), 'auto', 'no JPEG grid found'),
                                    (clean, 'auto', 'no JPEG grid found')):
        with pytest.warns(UserWarning, match=message):
            out = restore(image, task='jpeg', quality=quality, weights=weights['jpeg_gray'])
        assert np.array_equal(out, image) and out is not image
    color = crop('astronaut', False, 64)
    with pytest.warns(UserWarning, match='quality 99 is above 98, where the colour model'):
        out = restore(jpeg_compress(color, 99), task='jpeg', quality=99, weights=weights['jpeg_color'])
    assert np.array_equal(out, jpeg_compress(color, 99))
    for image, key, color_mode in ((clean, 'jpeg_gray', 'gray'), (color, 'jpeg_color', 'color')):
        at_limit = jpeg_compress(image, api.JPEG_MAX_QUALITY[color_mode])
        with warnings.catch_warnings():
            warnings.simplefilter('error')
            assert not np.array_equal(restore(at_limit, task='jpeg', quality=api.JPEG_MAX_QUALITY[color_mode],
                                              weights=weights[key]), at_limit)
    # the command writes the image as it came and says why
    src = tmp_path / 'clean.png'
    cv2.imwrite(str(src), clean)
    proc = run_cli('--task', 'jpeg', '--input', src, '--output', tmp_path / 'out', '--weights', weights['jpeg_gray'])
    assert proc.returncode == 0 and 'no JPEG grid found' in proc.stdout + proc.stderr
    assert np.array_equal(cv2.imread(str(tmp_path / 'out' / 'clean.png'), cv2.IMREAD_UNCHANGED), clean)


@pytest.mark.parametrize('gray', [True, False])
def test_tiles_blend_to_the_whole_image_result(weights, gray):
    both = [weights['gray'], weights['color']]
    img = noisy_uint8('chelsea', gray, None)[:150, :170].astype(np.float32) / 255
    whole = restore(img, sigma=25, weights=both, amp='fp32')
    tiled = restore(img, sigma=25, weights=both, tile=96, tile_overlap=48, amp='fp32')
    hard = restore(img, sigma=25, weights=both, tile=96, tile_overlap=0, amp='fp32')
    # The heat operator is global, so tiles cannot match exactly. Measured with this seed-0 model:
    # max |tiled - whole| 0.0010 (gray) / 0.0017 (colour) on the 0-1 scale, against 0.30 / 0.51
    # for hard-cut tiles without overlap: the cross-fade removes the seams.
    diff = np.abs(tiled - whole).max()
    assert 0 < diff < 0.005 and np.abs(hard - whole).max() > 20 * diff
    # A memory budget that fits 128 px tiles but not the image tiles on its own (measured 0.0022 / 0.0035).
    auto = restore(img, sigma=25, weights=both, memory_budget_gb=estimate_peak_bytes(128, 128, 8) / 2 ** 30,
                   amp='fp32')
    assert 0 < np.abs(auto - whole).max() < 0.01


def test_large_images_run_in_speed_tiles_on_the_cpu(weights, monkeypatch):
    img = noisy_uint8('chelsea', True, None)[:150, :170]
    spans = []
    real_spans = api._tile_spans
    monkeypatch.setattr(api, '_tile_spans', lambda *a: spans.append(a) or real_spans(*a))
    monkeypatch.setattr(api, 'CPU_TILE', 64)
    monkeypatch.setattr(api, 'CPU_TILE_FROM_PIXELS', 150 * 170 + 1)
    whole = restore(img, sigma=25, weights=weights['gray'], device='cpu')
    assert spans == []                                   # below the threshold: one piece
    monkeypatch.setattr(api, 'CPU_TILE_FROM_PIXELS', 150 * 170)
    tiled = restore(img, sigma=25, weights=weights['gray'], device='cpu')
    assert {(size, tile, overlap) for size, tile, overlap, _ in spans} == {(150, 64, 16), (170, 64, 16)}
    assert 0 < np.abs(tiled.astype(int) - whole).max() <= 3      # cross-faded tiles, 0-255 scale
    spans.clear()
    restore(img, sigma=25, weights=weights['gray'], device='cpu', tile=100)
    assert {tile for _, tile, _, _ in spans} == {100}    # a given tile wins


@pytest.fixture(scope='module')
def fp16_overflow(weights, tmp_path_factory):
    """A gray denoising weights file whose features overflow fp16 (and never float32) on real images.

    Its first conv sums 3x3 pixels with weight 2e4: ~1e5 on mid-gray areas, past fp16's 65504.
    """
    folder = tmp_path_factory.mktemp('overflow')
    ckpt = torch.load(weights['gray_ckpt'])
    ckpt['params_ema']['conv_first.weight'].fill_(2e4)
    torch.save(ckpt, folder / 'net_g_big.pth')
    export_weights(str(folder / 'net_g_big.pth'), weights['gray_opt'], str(folder / 'big.pth'), 'denoise', 'gray',
                   {'iterations': 1})
    return str(folder / 'big.pth')


def test_restore_under_autocast_and_its_float32_fallback(weights, fp16_overflow, monkeypatch):
    img = noisy_uint8('camera', True, 64)
    plain = restore(img, sigma=25, weights=weights['gray'], amp='fp32')
    half = restore(img, sigma=25, weights=weights['gray'], amp='bf16')
    # bf16 keeps 8 bits of mantissa: a few 8-bit levels at most on this tiny model (measured 2).
    assert half.dtype == np.uint8 and np.abs(half.astype(int) - plain).max() <= 3
    assert np.array_equal(restore(img, sigma=25, weights=weights['gray'], amp=None), plain)
    # 'auto' (the default): bf16 where the CPU has native bf16 kernels, float32 elsewhere, without a warning.
    native = vheatir.amp.cpu_has_native_bf16()
    assert np.array_equal(restore(img, sigma=25, weights=weights['gray']), half if native else plain)
    with pytest.raises(ValueError, match='amp'):
        restore(img, sigma=25, weights=weights['gray'], amp='fp8')

    with monkeypatch.context() as m, pytest.warns(UserWarning, match='amp bf16 ignored, this CPU'):
        m.setattr(vheatir.amp, 'cpu_has_native_bf16', lambda: False)
        assert np.array_equal(restore(img, sigma=25, weights=weights['gray'], amp='bf16'), plain)
    with monkeypatch.context() as m, warnings.catch_warnings():
        warnings.simplefilter('error')
        m.setattr(vheatir.amp, 'cpu_has_native_bf16', lambda: False)
        assert np.array_equal(restore(img, sigma=25, weights=weights['gray'], amp='auto'), plain)

    imgf = img.astype(np.float32) / 255
    reference = restore(imgf, sigma=25, weights=fp16_overflow, amp='fp32')
    assert np.isfinite(reference).all()
    with pytest.warns(UserWarning, match='fp16 autocast gave non-finite values'):
        redone = restore(imgf, sigma=25, weights=fp16_overflow, amp='fp16')
    assert np.array_equal(redone, reference)


# ------------------------------------------------------------------ estimators
@pytest.mark.parametrize('gray', [True, False])
def test_noise_sigma_estimate(gray):
    assert abs(estimate_noise_sigma(noisy_uint8('chelsea', gray, None)) - 25) <= 3
    assert abs(estimate_noise_sigma(noisy_uint8('chelsea', gray, None).astype(np.uint16) * 257) - 25) <= 3


@pytest.mark.parametrize('gray', [True, False])
def test_white_noise_keeps_the_white_noise_estimate(gray):
    # The Gaussian guardrail: white noise reads as white, so 'auto' is the wavelet estimate itself.
    for sigma in (15, 25, 50):
        img = crop('chelsea', gray, None).astype(np.float32) / 255
        noisy = add_gaussian_noise(img, sigma, np.random.default_rng(sigma))
        assert estimate_noise_sigma(noisy) == white_noise_sigma(noisy)
        assert abs(flat_noise_sigma(noisy, 2) - sigma) < 0.25 * sigma   # white: the same at scale 2


def test_censored_moments_match_sampled_clipped_noise():
    rng = np.random.default_rng(0)
    mu = np.array([-30.0, 10.0, 128.0, 250.0, 280.0])
    mean, var = api._censored_moments(mu, 40.0)
    samples = np.clip(mu[:, None] + 40.0 * rng.standard_normal((5, 400_000)), 0, 255)
    assert np.allclose(mean, samples.mean(1), atol=0.2) and np.allclose(var, samples.var(1), rtol=0.01, atol=1.0)


@pytest.mark.parametrize('gray', [True, False])
def test_clipped_8bit_noise_reads_its_level(gray):
    # Noise clipped at white (a blown sky) or at both ends (high sigma) reads at the level added,
    # as it does unclipped; without the correction for clipping these read 8.8 and 48-49.
    sky = sample_image('camera', gray).astype(np.float64)
    sky[: sky.shape[0] // 2] = 255
    noisy = sky + np.random.default_rng(0).normal(0, 15, sky.shape)
    assert abs(white_noise_sigma(np.clip(np.rint(noisy), 0, 255).astype(np.uint8)) - 15) < 1.0
    img = sample_image('chelsea', gray).astype(np.float32) / 255
    noisy = add_gaussian_noise(img, 50, np.random.default_rng(50))
    unclipped = white_noise_sigma(noisy)
    assert abs(white_noise_sigma(np.clip(np.rint(noisy * 255), 0, 255).astype(np.uint8)) - unclipped) < 0.6


def correlated_noise(shape, std, rng):
    """Noise of per-pixel std ``std`` correlated over a few pixels (white noise blurred by a 5 x 5
    Gaussian), as a camera's demosaicking and processing leave it."""
    n = cv2.GaussianBlur(rng.standard_normal(shape).astype(np.float32), (5, 5), 1.2).reshape(shape)
    return n * (std / n.std())


@pytest.mark.parametrize('gray', [True, False])
def test_correlated_noise_gets_a_higher_sigma_than_its_finest_band_shows(gray):
    img = np.full((192, 256, 1 if gray else 3), 120.0, np.float32) + np.linspace(0, 60, 256)[None, :, None]
    noisy = np.clip(np.rint(img + correlated_noise(img.shape, 6.0, np.random.default_rng(0))), 0, 255).astype(np.uint8)
    s1, s2 = white_noise_sigma(noisy), flat_noise_sigma(noisy, 2)
    assert s1 < 3.0 and s2 > CORRELATION_RATIO[1] * s1   # a white-noise estimate misses most of it
    gain = CORRELATED_NOISE_GAIN_GRAY if gray else CORRELATED_NOISE_GAIN   # fitted per colour mode
    assert estimate_noise_sigma(noisy) == pytest.approx(gain * s2)
    # White noise of the same per-pixel std keeps its own level.
    white = np.clip(np.rint(img + np.random.default_rng(0).normal(0, 6.0, img.shape)), 0, 255).astype(np.uint8)
    assert abs(estimate_noise_sigma(white) - 6.0) < 1.0


def test_flat_noise_sigma_reads_flat_blocks_and_small_images_fall_back():
    rng = np.random.default_rng(1)
    half_textured = np.zeros((128, 128, 1), np.float32)
    half_textured[:, :64] = rng.uniform(0, 255, (128, 64, 1))   # texture in half the blocks
    noisy = (half_textured + rng.normal(0, 10, half_textured.shape)) / 255   # float images are on [0, 1]
    assert abs(flat_noise_sigma(noisy, 1) - 10) < 1.5 and abs(flat_noise_sigma(noisy, 2) - 10) < 2.5
    tiny = noisy[:12, :12]
    assert flat_noise_sigma(tiny, 2) is None
    assert estimate_noise_sigma(tiny) == white_noise_sigma(tiny)


@pytest.mark.parametrize('quality', [10, 50, 90])
def test_jpeg_quality_estimates(quality, tmp_path):
    img = crop('astronaut', False, 160)
    ok, buf = cv2.imencode('.jpg', cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    (tmp_path / 'a.jpg').write_bytes(buf.tobytes())
    assert abs(estimate_jpeg_quality(str(tmp_path / 'a.jpg')) - quality) <= 5
    assert abs(estimate_jpeg_quality(buf.tobytes()) - quality) <= 5
    decoded = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    assert abs(estimate_quality(decoded) - quality) <= 5  # from the pixels alone
    assert estimate_jpeg_quality(cv2.imencode('.png', img)[1].tobytes()) is None
    assert estimate_quality(img) is None  # never compressed: no grid


# ----------------------------------------------------------------------- CLI
def run_cli(*args):
    proc = subprocess.run([sys.executable, INFERENCE, *map(str, args)], capture_output=True, text=True,
                          timeout=300, env=CLI_ENV)
    assert 'Traceback' not in proc.stderr, proc.stderr
    return proc


def sha(path):
    return hashlib.sha256(open(path, 'rb').read()).hexdigest()


@pytest.mark.skipif(vheatir.allocator.find_jemalloc() is None or not sys.platform.startswith('linux'),
                    reason='needs Linux with jemalloc installed (apt-get install libjemalloc2)')
def test_cli_under_jemalloc_writes_what_it_writes_under_glibc(weights, tmp_path):
    src = tmp_path / 'my photos'
    src.mkdir()
    cv2.imwrite(str(src / 'a noisy one.png'), noisy_uint8('rocket', True, 64))
    outputs = {}
    for setting in ('', 'system'):   # re-executed under jemalloc, then left on glibc
        out = tmp_path / f'out {setting or "jemalloc"}'
        proc = subprocess.run([sys.executable, INFERENCE, '--task', 'denoise', '--input', str(src), '--output',
                               str(out), '--weights', weights['gray'], '--sigma', '25'], capture_output=True,
                              text=True, timeout=300, env=dict(CLI_ENV, VHEATIR_ALLOCATOR=setting))
        assert proc.returncode == 0 and 'Traceback' not in proc.stderr, proc.stderr
        assert proc.stdout.count('restored 1 of 1 image(s)') == 1, proc.stdout
        outputs[setting] = sha(out / 'a noisy one.png')
    assert outputs[''] == outputs['system']


def test_cli_restores_a_folder_and_skips_bad_files(weights, tmp_path):
    src, gt, out = tmp_path / 'in', tmp_path / 'gt', tmp_path / 'out'
    (src / 'sub').mkdir(parents=True)
    gt.mkdir()
    noisy = noisy_uint8('rocket', True, 96)
    cv2.imwrite(str(src / 'gray.png'), noisy)
    cv2.imwrite(str(gt / 'gray.png'), crop('rocket', True, 96))
    cv2.imwrite(str(src / 'colour.jpg'), cv2.cvtColor(noisy_uint8('chelsea', False, 48), cv2.COLOR_RGB2BGR))
    rng = np.random.default_rng(0)
    deep = rng.integers(0, 65536, (40, 48, 3), dtype=np.uint16)
    cv2.imwrite(str(src / 'deep.tif'), deep)
    rgba = rng.integers(0, 256, (32, 40, 4), dtype=np.uint8)
    cv2.imwrite(str(src / 'rgba.png'), rgba)
    palette = Image.fromarray(rng.integers(0, 4, (30, 36), dtype=np.uint8), 'P')
    palette.putpalette([200, 30, 30, 30, 200, 30, 30, 30, 200, 90, 90, 90])
    palette.save(src / 'palette.png')
    cv2.imwrite(str(src / 'sub' / 'inner.bmp'), rng.integers(0, 256, (24, 24), dtype=np.uint8))
    cv2.imwrite(str(src / 'camera.png'), camera_noisy(True))
    (src / 'corrupt.png').write_bytes(b'\x89PNG\r\n\x1a\n' + b'\x00' * 40)
    (src / 'notes.txt').write_text('not an image')
    (src / 'gone.png').symlink_to(tmp_path / 'deleted.png')  # a broken link
    before = {p: sha(p) for p in src.rglob('*') if p.is_file()}

    old_umask = os.umask(0o022)
    try:
        proc = run_cli('--task', 'denoise', '--input', src, '--output', out, '--recursive', '--gt', gt,
                       '--weights', weights['gray'], '--weights', weights['color'])
    finally:
        os.umask(old_umask)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # because of the two unreadable images
    skips = [line for line in proc.stderr.splitlines() if line.startswith('skipped')]
    assert len(skips) == 2 and any('corrupt.png' in s for s in skips), proc.stderr
    assert any('gone.png' in s and 'cannot read' in s for s in skips), proc.stderr
    assert proc.stdout.count('notes.txt') == 1 and 'ignored 1 file(s)' in proc.stdout  # listed once, not an error
    assert sorted(str(p.relative_to(out)) for p in out.rglob('*') if p.is_file()) == [
        'camera.png', 'colour.png', 'deep.png', 'gray.png', 'palette.png', 'rgba.png',
        os.path.join('sub', 'inner.png')]
    assert {p: sha(p) for p in src.rglob('*') if p.is_file()} == before  # inputs untouched
    assert all(p.stat().st_mode & 0o777 == 0o644 for p in out.rglob('*.png'))  # 0666 minus the umask

    read = lambda name: cv2.imread(str(out / name), cv2.IMREAD_UNCHANGED)  # noqa: E731
    assert read('gray.png').shape == (96, 96) and read('gray.png').dtype == np.uint8
    assert read('deep.png').shape == (40, 48, 3) and read('deep.png').dtype == np.uint16
    assert read('rgba.png').shape == (32, 40, 4) and np.array_equal(read('rgba.png')[..., 3], rgba[..., 3])
    assert read('palette.png').shape == (30, 36, 3) and read('colour.png').shape == (48, 48, 3)
    sigma = float(re.search(r'gray\.png: sigma ([\d.]+) \(estimated\)', proc.stdout).group(1))
    assert abs(sigma - 25) <= 3
    assert re.search(r'camera\.png: sigma [\d.]+ \(estimated, camera noise\)', proc.stdout), proc.stdout
    assert re.search(r'gray\.png: PSNR [\d.]+ dB  SSIM [\d.]+', proc.stdout) and 'mean over 1 image' in proc.stdout
    assert "restored 7 of 9 image(s)" in proc.stdout, proc.stdout  # corrupt.png and gone.png were not


def test_cli_ignores_files_that_are_not_images_without_failing(weights, tmp_path):
    src = tmp_path / 'in'
    src.mkdir()
    cv2.imwrite(str(src / 'gray.png'), noisy_uint8('rocket', True, 48))
    (src / 'notes.txt').write_text('not an image')
    (src / 'gray.png.xmp').write_text('<x:xmpmeta/>')
    proc = run_cli('--task', 'denoise', '--input', src, '--output', tmp_path / 'out', '--sigma', '25',
                   '--weights', weights['gray'])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'ignored 2 file(s) that are not images by extension' in proc.stdout
    assert (tmp_path / 'out' / 'gray.png').is_file() and not (tmp_path / 'out' / 'notes.png').exists()


def test_cli_amp_falls_back_to_float32_per_image(fp16_overflow, tmp_path):
    cv2.imwrite(str(tmp_path / 'a.png'), crop('camera', True, 48))
    proc = run_cli('--task', 'denoise', '--input', tmp_path / 'a.png', '--output', tmp_path / 'out', '--sigma', '25',
                   '--weights', fp16_overflow, '--amp', 'fp16')
    assert proc.returncode == 0, proc.stderr
    assert 'a.png: fp16 autocast gave non-finite values; restored in float32 instead' in proc.stdout
    assert (tmp_path / 'out' / 'a.png').is_file()


def test_cli_errors_are_one_line(weights, tmp_path):
    (tmp_path / 'empty').mkdir()
    (tmp_path / 'a.png').write_bytes(cv2.imencode('.png', np.zeros((8, 8), np.uint8))[1].tobytes())
    one_line = [
        ('--input', tmp_path / 'empty', '--weights', weights['gray']),
        ('--input', tmp_path / 'missing'),
        ('--input', tmp_path / 'a.png', '--weights', tmp_path / 'nope.pth'),
        ('--input', tmp_path / 'a.png', '--output', tmp_path),  # would overwrite its input
    ]
    for args in one_line:
        proc = run_cli('--task', 'denoise', *args)
        assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1, (args, proc.stderr)
        assert proc.stderr.startswith('error: ')
    for args in (('--sigma', '-3'), ('--task', 'jpeg', '--quality', '0'), ('--amp', 'fp8')):
        proc = run_cli('--task', 'denoise', '--input', tmp_path / 'a.png', *args)
        assert proc.returncode == 2 and 'usage:' in proc.stderr


def test_self_ensemble_undoes_each_symmetry_and_keeps_the_jpeg_grid():
    from vheatir.ensemble import JPEG_BLOCK, self_ensemble
    x = torch.rand(1, 2, 13, 21)
    assert torch.allclose(self_ensemble(lambda t: t, x), x, atol=1e-6)   # identity: every symmetry undone
    ramp = lambda t: t + torch.arange(t.shape[-1], dtype=t.dtype)  # noqa: E731  (not flip-equivariant)
    averaged = self_ensemble(ramp, x)
    # The ramp comes back as 0..20 left-right and right-left (twice each) and 0..12 top-bottom and
    # bottom-top: their mean is (2 * 20 + 2 * 12) / 8 = 8 everywhere.
    assert torch.allclose(averaged, x + 8)

    # A blockwise-constant image on the 8x8 grid anchored at the top-left pixel: every
    # transformed input run sees must still be constant on its own 8x8 blocks.
    rows, cols = torch.meshgrid(torch.arange(13) // 8, torch.arange(21) // 8, indexing='ij')
    blocks = (rows * 10 + cols).float()[None, None]
    seen = []

    def check(t):
        assert t.shape[-2] % JPEG_BLOCK == 0 and t.shape[-1] % JPEG_BLOCK == 0
        tiles = t.unfold(-2, 8, 8).unfold(-2, 8, 8)
        assert torch.equal(tiles.amax((-2, -1)), tiles.amin((-2, -1)))
        seen.append(t.shape)
        return t
    out = self_ensemble(check, blocks, JPEG_BLOCK)
    assert torch.equal(out, blocks) and len(seen) == 8


def test_restore_with_self_ensemble(weights):
    img = noisy_uint8('camera', True, 40)[:37].astype(np.float32) / 255   # float: results are not clipped
    plain = restore(img, 'denoise', sigma=25, weights=weights['gray'])
    plus = restore(img, 'denoise', sigma=25, weights=weights['gray'], self_ensemble=True)
    assert plus.shape == img.shape and plus.dtype == img.dtype
    # The same as restoring the 8 flipped/rotated images one by one and averaging them back;
    # a random-init net is far from equivariant, so this differs from the plain result.
    singles = []
    for rot in range(4):
        for flip in (False, True):
            t = np.rot90(img[:, ::-1] if flip else img, rot)
            back = np.rot90(restore(np.ascontiguousarray(t), 'denoise', sigma=25, weights=weights['gray']), -rot)
            singles.append(back[:, ::-1] if flip else back)
    assert np.abs(plus - np.mean(singles, axis=0)).max() < 1e-5
    assert np.abs(plus - plain).max() > 0.01
    tiled = restore(img, 'jpeg', quality=20, weights=weights['jpeg_gray'], self_ensemble=True, tile=16, tile_overlap=4)
    assert tiled.shape == img.shape and tiled.dtype == img.dtype


@pytest.mark.parametrize('size, tile, overlap, align', [(1600, 1088, 32, 1), (1200, 1088, 32, 1), (300, 128, 32, 8),
                                                        (37, 16, 4, 8), (1001, 200, 48, 8), (90, 128, 32, 8)])
def test_tiles_cover_evenly_with_the_overlap_and_start_on_the_grid(size, tile, overlap, align):
    spans = _tile_spans(size, tile, overlap, align)
    assert spans[0][0] == 0 and spans[-1][1] == size and all(e - s <= tile for s, e in spans)
    assert all(s % align == 0 for s, _ in spans)
    assert all(e0 - s1 >= min(overlap, size) for (_, e0), (s1, _) in zip(spans, spans[1:]))
    n = len(spans)
    assert n == 1 or n - 1 < (size - overlap) / (tile - overlap) + 1   # no more tiles than needed, or one more
    # Evenly sized: the old corner-anchored tiles of 1088 px on a 1600 px side computed 2 x 1088 px.
    # Lengthening to FFT-friendly lengths adds at most a few percent (2, 3 and 5-smooth numbers
    # are at most 12% apart from 100 px up).
    assert sum(e - s for s, e in spans) <= 1.12 * (size + (n - 1) * overlap + align * n)
    if n > 1:
        assert all(scipy.fft.next_fast_len(e - s, real=True) == e - s for s, e in spans[:-1])   # 5-smooth
    with pytest.raises(ValueError, match='grid step'):
        _tile_spans(100, 36, 32, 8)


def test_jpeg_tiles_start_on_the_8x8_grid_and_blend_to_the_whole_image(weights, monkeypatch):
    jpeg = jpeg_compress(crop('camera', True, None)[:200, :190], 10)
    whole = restore(jpeg, task='jpeg', quality=10, weights=weights['jpeg_gray']).astype(np.float64)
    calls = []
    original = api._tile_spans
    monkeypatch.setattr(api, '_tile_spans', lambda *a: calls.append(a) or original(*a))
    tiled = restore(jpeg, task='jpeg', quality=10, weights=weights['jpeg_gray'], tile=96, tile_overlap=32)
    assert calls and all(a[3] == 8 for a in calls)
    # The heat operator is global, so tiles differ from the whole image near their edges. Measured with
    # this seed-0 model on uint8: max 1, mean 0.017 grey levels (the shipped q-any model: max 1, mean
    # 0.026); tiles cut hard, without overlap, differ by up to 133.
    diff = np.abs(tiled - whole)
    assert diff.max() <= 3 and diff.mean() < 0.2
    hard = restore(jpeg, task='jpeg', quality=10, weights=weights['jpeg_gray'], tile=96, tile_overlap=0)
    assert np.abs(hard - whole).max() > 20 * diff.max()


def test_cli_turns_results_upright_and_keeps_the_colour_profile(weights, tmp_path):
    from PIL import ImageCms
    src, out = tmp_path / 'in', tmp_path / 'out'
    src.mkdir()
    noisy = noisy_uint8('chelsea', False, 48)[:40]   # 40 x 48, not square
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile('sRGB')).tobytes()
    img = Image.fromarray(noisy)
    exif = img.getexif()
    exif[0x0112] = 6   # stored turned: show rotated 90 degrees clockwise
    img.save(src / 'phone.jpg', quality=95, exif=exif, icc_profile=profile)
    Image.fromarray(noisy).save(src / 'plain.png')
    proc = run_cli('--task', 'denoise', '--input', src, '--output', out, '--sigma', '25', '--weights', weights['color'])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with Image.open(out / 'phone.png') as im:
        assert im.size == (40, 48) and im.info.get('icc_profile') == profile   # upright: W x H swapped
        upright = np.asarray(im.convert('RGB'))
    # The stored pixels are restored (a JPEG's grid where training put it), then turned as a viewer turns them.
    stored = read_image(str(src / 'phone.jpg'), upright=False)
    assert stored.shape == (40, 48, 3)
    expected = np.rot90(restore(stored, sigma=25, weights=weights['color']), -1)
    assert np.array_equal(upright, expected)
    with Image.open(src / 'phone.jpg') as im:
        assert np.array_equal(read_image(str(src / 'phone.jpg')), np.asarray(ImageOps.exif_transpose(im)))
    with Image.open(out / 'plain.png') as im:
        assert im.size == (48, 40) and 'icc_profile' not in im.info
