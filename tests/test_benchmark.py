"""The benchmark protocol (SwinIR's) on a two-image temporary set."""
import cv2
import numpy as np
import pytest
from basicsr.utils.color_util import bgr2ycbcr
from skimage.metrics import peak_signal_noise_ratio

from vheatir.benchmark import make_pair, run_set, to_uint8, y_channel_uint8
from vheatir.data.samples import write_sample_images


@pytest.fixture
def two_images(tmp_path):
    write_sample_images(str(tmp_path / 'gray'), gray=True, size=64, count=2)
    write_sample_images(str(tmp_path / 'color'), gray=False, size=64, count=2)
    return tmp_path


def test_denoise_inputs_follow_swinir_seeding(two_images):
    path = str(two_images / 'gray' / 'astronaut.png')
    gt, lq = make_pair(path, 'denoise', False, 25)
    np.random.seed(0)
    expected = cv2.imread(path, 0)[..., None] / 255.0 + np.random.normal(0, 25 / 255.0, gt.shape)
    np.testing.assert_allclose(lq, expected, atol=1e-6)
    assert (expected < 0).any() or (expected > 1).any()  # so the match above shows lq is not clipped


def test_colour_noise_is_drawn_in_bgr_then_flipped(two_images):
    path = str(two_images / 'color' / 'astronaut.png')
    gt, lq = make_pair(path, 'denoise', True, 15)
    np.random.seed(0)
    bgr = cv2.imread(path, cv2.IMREAD_COLOR) / 255.0 + np.random.normal(0, 15 / 255.0, gt.shape)
    np.testing.assert_allclose(lq, bgr[..., ::-1], atol=1e-6)
    np.testing.assert_array_equal(gt, cv2.imread(path)[..., ::-1])


def test_y_channel_matches_basicsr():
    bgr = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    ref = (bgr2ycbcr(bgr.astype(np.float32) / 255.0, y_only=True) * 255.0).round()
    assert np.abs(y_channel_uint8(bgr).astype(float) - ref).max() <= 1  # float32 vs float64 rounding ties


def test_run_set_scores_input_and_identity(two_images):
    res = run_set(None, str(two_images / 'gray'), 'denoise', False, 25)
    assert len(res['images']) == 2
    gt, lq = make_pair(str(two_images / 'gray' / 'astronaut.png'), 'denoise', False, 25)
    ref = peak_signal_noise_ratio(gt, to_uint8(lq), data_range=255)
    assert res['images'][0]['name'] == 'astronaut.png'
    assert res['images'][0]['psnr'] == pytest.approx(ref, abs=1e-6)
    assert res['mean']['psnr'] == pytest.approx(np.mean([r['psnr'] for r in res['images']]))

    jpeg = run_set(None, str(two_images / 'color'), 'jpeg', False, 10)  # colour files -> Y channel
    assert jpeg['mean']['psnrb'] < jpeg['mean']['psnr']  # q10 JPEG is blocky
    perfect = run_set(lambda lq: lq, str(two_images / 'gray'), 'jpeg', False, 90)
    assert perfect['mean']['psnr'] > jpeg['mean']['psnr']
