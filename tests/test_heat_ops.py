"""The heat-conduction physics: DCT paths against scipy, decay, FVE sampling, impulse response."""
import math

import numpy as np
import pytest
import scipy.fft
import torch

from conftest import DUCC
from vheatir.archs import heat_ops
from vheatir.archs.heat_ops import (MAX_DECAY_EXPONENT, Diffusivity, FrequencyValueEmbedding, choose_dct_impl,
                                    dct2, ducc0_module, frequency_weights, heat_conduct, heat_decay, idct2,
                                    sample_frequency_grid)

SIZES = [(1, 1), (1, 9), (9, 1), (8, 8), (7, 7), (13, 7), (31, 17), (48, 64), (97, 131)]
CPU_IMPLS = ['scipy', DUCC]   # the native DCT kernels, wrapped as autograd functions
IMPLS = ['matrix', 'fft', *CPU_IMPLS]


@pytest.mark.parametrize('h,w', SIZES)
@pytest.mark.parametrize('impl', IMPLS)
def test_dct_matches_scipy(h, w, impl):
    x = torch.randn(2, h, w, 3, generator=torch.Generator().manual_seed(h * 1000 + w))
    ref = scipy.fft.dctn(x.double().numpy(), axes=(1, 2), norm='ortho')
    ref_inv = scipy.fft.idctn(x.double().numpy(), axes=(1, 2), norm='ortho')
    np.testing.assert_allclose(dct2(x, impl).numpy(), ref, atol=1e-5, rtol=0)
    np.testing.assert_allclose(idct2(x, impl).numpy(), ref_inv, atol=1e-5, rtol=0)
    assert torch.allclose(idct2(dct2(x, impl), impl), x, atol=1e-5)


@pytest.mark.parametrize('h,w', [(5, 11), (32, 48), (64, 64)])
@pytest.mark.parametrize('impl', ['fft', *CPU_IMPLS])
def test_fast_paths_agree_with_matrix(h, w, impl):
    x = torch.randn(1, h, w, 4)
    assert torch.allclose(dct2(x, 'matrix'), dct2(x, impl), atol=1e-5)
    assert torch.allclose(idct2(x, 'matrix'), idct2(x, impl), atol=1e-5)
    assert dct2(x, 'auto').shape == x.shape


def test_auto_choice_per_size_device_and_threads(monkeypatch):
    cpu, cuda = torch.device('cpu'), torch.device('cuda')
    monkeypatch.setattr(torch, 'get_num_threads', lambda: 2)
    assert choose_dct_impl((16, 48, 48, 48), cpu) == 'matrix'     # a training batch
    native = 'ducc' if ducc0_module() is not None else 'scipy'
    assert choose_dct_impl((1, 96, 96, 48), cpu) == ('ducc' if native == 'ducc' else 'matrix')
    assert choose_dct_impl((1, 128, 128, 48), cpu) == native
    assert choose_dct_impl((1, 3000, 4000, 48), cpu) == native
    assert choose_dct_impl((1, 256, 256, 48), cuda) == 'matrix'
    assert choose_dct_impl((1, 2048, 1024, 48), cuda) == 'fft'
    monkeypatch.setattr(torch, 'get_num_threads', lambda: 1)    # one thread: ducc0 even for the batch
    assert choose_dct_impl((16, 48, 48, 48), cpu) == ('ducc' if native == 'ducc' else 'matrix')


def test_without_ducc0_auto_takes_pocketfft_and_ducc_says_what_to_install(monkeypatch):
    monkeypatch.setattr(heat_ops, 'ducc0_module', lambda: None)
    assert choose_dct_impl((1, 96, 96, 48)) == 'matrix'
    assert choose_dct_impl((16, 48, 48, 48)) == 'matrix'
    assert choose_dct_impl((1, 128, 128, 48)) == 'scipy'
    x = torch.randn(1, 100, 100, 2)
    assert torch.allclose(dct2(x), dct2(x, 'matrix'), atol=1e-5)
    with pytest.raises(ImportError, match='pip install ducc0'):
        dct2(x, 'ducc')


@pytest.mark.parametrize('impl', CPU_IMPLS)
def test_cpu_paths_accept_strided_input_and_bf16(impl):
    # The HCO feeds a channel slice of a wider tensor (non-contiguous) and, under autocast, bf16.
    wide = torch.randn(2, 9, 14, 8)
    x = wide[..., :4]
    assert not x.is_contiguous()
    assert torch.allclose(dct2(x, impl), dct2(x.contiguous(), 'matrix'), atol=1e-5)
    y = dct2(x.bfloat16(), impl)
    assert y.dtype == torch.float32
    assert torch.allclose(y, dct2(x.bfloat16().float(), 'matrix'), atol=1e-5)


@pytest.mark.parametrize('impl', IMPLS)
@pytest.mark.parametrize('inverse', [False, True])
def test_gradients_flow(impl, inverse):
    # The DCT is orthonormal and linear: d<T(x), g>/dx = T^T g = T^-1 g.
    x = torch.randn(2, 7, 10, 3, requires_grad=True)
    g = torch.randn(2, 7, 10, 3)
    fwd, back = (idct2, dct2) if inverse else (dct2, idct2)
    (fwd(x, impl) * g).sum().backward()
    assert torch.allclose(x.grad, back(g, impl), atol=1e-5)


@pytest.mark.parametrize('impl', IMPLS)
def test_zero_diffusivity_is_identity(impl):
    x = torch.randn(2, 12, 9, 5)
    assert torch.allclose(heat_conduct(x, torch.zeros(12, 9, 5), impl), x, atol=1e-5)


@pytest.mark.parametrize('impl', IMPLS)
def test_channel_mean_is_preserved(impl):
    x = torch.randn(2, 15, 22, 4)
    k = torch.rand(15, 22, 4) * 50
    y = heat_conduct(x, k, impl)
    assert torch.allclose(y.mean(dim=(1, 2)), x.mean(dim=(1, 2)), atol=1e-5)
    assert not torch.allclose(y, x, atol=1e-2)  # it did diffuse


def test_constant_k_is_gaussian_kernel_of_variance_2k():
    # An impulse far from the borders spreads into a Gaussian of variance 2k px^2 per axis.
    k, n = 4.0, 81
    x = torch.zeros(1, n, n, 1)
    x[0, n // 2, n // 2, 0] = 1.0
    y = heat_conduct(x, torch.full((n, n, 1), k), 'fft')[0, :, :, 0].double()
    coords = torch.arange(n, dtype=torch.float64) - n // 2
    var_rows = (y.sum(1) * coords ** 2).sum() / y.sum()
    var_cols = (y.sum(0) * coords ** 2).sum() / y.sum()
    assert var_rows.item() == pytest.approx(2 * k, rel=0.02)
    assert var_cols.item() == pytest.approx(2 * k, rel=0.02)
    # and the same k gives the same kernel on a different image size (pixel units)
    m = 121
    x2 = torch.zeros(1, m, 51, 1)
    x2[0, m // 2, 25, 0] = 1.0
    y2 = heat_conduct(x2, torch.full((m, 51, 1), k), 'fft')[0, :, 25, 0].double()
    c2 = torch.arange(m, dtype=torch.float64) - m // 2
    assert ((y2 * c2 ** 2).sum() / y2.sum()).item() == pytest.approx(2 * k, rel=0.02)


def test_decay_is_finite_for_huge_k_in_bf16():
    k = torch.full((16, 16, 2), 1e4, dtype=torch.bfloat16, requires_grad=True)
    d = heat_decay(k)
    d.sum().backward()
    assert torch.isfinite(d).all() and torch.isfinite(k.grad).all()
    assert d[0, 0].eq(1).all()  # DC never decays


def test_decay_never_denormal_and_exact_where_it_matters():
    k = torch.logspace(-1, 3, 64).expand(32, 32, 64).contiguous()   # exponents from 0 to ~2e4
    d = heat_decay(k)
    assert (d >= torch.finfo(torch.float32).tiny).all()   # no denormals (nor zeros) anywhere
    w = frequency_weights(32, 32, k.device)
    exact = (k * w) <= MAX_DECAY_EXPONENT
    torch.testing.assert_close(d[exact], torch.exp(-(k * w))[exact])
    assert d.min().item() == pytest.approx(math.exp(-MAX_DECAY_EXPONENT), rel=1e-5)


def test_frequency_grid_sampling_hits_lattice_nodes():
    # The lattice's G nodes sit at u = g / (G - 1); an H = G - 1 image samples u = n / H exactly there.
    g = 9
    lattice = torch.rand(g, g, 3)
    out = sample_frequency_grid(lattice, g - 1, g - 1)
    assert torch.allclose(out, lattice[:g - 1, :g - 1], atol=1e-6)
    big = sample_frequency_grid(lattice, 300, 211)
    assert big.shape == (300, 211, 3)
    assert big.min() >= lattice.min() - 1e-6 and big.max() <= lattice.max() + 1e-6


@pytest.mark.parametrize('g,h,w', [(16, 48, 48), (16, 321, 481), (6, 1, 1), (9, 7, 130)])
def test_frequency_grid_sampling_matches_grid_sample(g, h, w):
    # Reference: F.grid_sample, align_corners=True, sampling u = n / H mapped to [-1, 1].
    lattice = torch.rand(g, g, 4, dtype=torch.float64, requires_grad=True)
    u = torch.arange(h, dtype=torch.float64) / h * 2 - 1
    v = torch.arange(w, dtype=torch.float64) / w * 2 - 1
    coords = torch.stack(torch.meshgrid(v, u, indexing='xy'), -1)[None]
    ref = torch.nn.functional.grid_sample(lattice.permute(2, 0, 1)[None], coords, mode='bilinear',
                                          padding_mode='border', align_corners=True)[0].permute(1, 2, 0)
    out = sample_frequency_grid(lattice.float(), h, w)
    assert out.shape == (h, w, 4)
    torch.testing.assert_close(out.double(), ref, atol=1e-6, rtol=1e-6)
    seed = torch.rand(h, w, 4, dtype=torch.float64)
    (ref_grad,) = torch.autograd.grad((ref * seed).sum(), lattice)
    (grad,) = torch.autograd.grad((sample_frequency_grid(lattice, h, w) * seed).sum(), lattice)
    torch.testing.assert_close(grad, ref_grad)


def test_diffusivity_nonnegative_any_size():
    fve = FrequencyValueEmbedding(8, grid=6)
    diff = Diffusivity(8, 5)
    for h, w in [(1, 1), (48, 48), (97, 131)]:
        k = diff(fve, h, w)
        assert k.shape == (h, w, 5) and (k >= 0).all()
    # initial diffusivities span sub-pixel to global scales across channels
    k0 = diff(fve, 4, 4)[0, 0]
    assert k0.min() < 0.2 and k0.max() > 50 and math.isfinite(k0.sum().item())


@pytest.mark.parametrize('impl', IMPLS)
def test_constants_first_built_in_inference_mode_still_train(impl):
    # Sizes seen first during validation (inference mode) must still work under autograd.
    x = torch.randn(1, 23, 29, 2)
    with torch.inference_mode():
        heat_conduct(x, torch.ones(23, 29, 2), impl)
    k = torch.ones(23, 29, 2, requires_grad=True)
    heat_conduct(x, k, impl).sum().backward()
    assert torch.isfinite(k.grad).all()


@pytest.mark.parametrize('param', Diffusivity.PARAMS)
def test_diffusivity_starts_log_spaced_in_both_parametrisations(param):
    fve = FrequencyValueEmbedding(8, grid=6)
    with torch.no_grad():
        fve.values.zero_()
    k = Diffusivity(8, 5, param=param)(fve, 7, 9)
    torch.testing.assert_close(k, Diffusivity.initial_k(5).expand(7, 9, 5), rtol=1e-5, atol=1e-6)


def test_log_parametrisation_moves_large_k_by_a_factor():
    # One Adam step on the same loss: with k = exp(z) the largest k (100 px^2) changes by about
    # the learning rate *relatively*; with softplus it changes by about lr *absolutely*, 1/k as much.
    moves = {}
    for param in Diffusivity.PARAMS:
        torch.manual_seed(0)
        fve, diff = FrequencyValueEmbedding(8, grid=4), Diffusivity(8, 4, param=param)
        opt = torch.optim.Adam(list(diff.parameters()), lr=1e-2)
        before = diff(fve, 4, 4).detach()
        diff(fve, 4, 4).sum().backward()
        opt.step()
        after = diff(fve, 4, 4).detach()
        moves[param] = (after / before).log().abs()[..., -1].mean().item()
    assert moves['log'] > 20 * moves['softplus']


def test_log_parametrisation_caps_k_finite():
    fve = FrequencyValueEmbedding(4, grid=4)
    diff = Diffusivity(4, 2, param='log')
    with torch.no_grad():
        diff.proj.bias.fill_(1e4)
    k = diff(fve, 8, 8)
    assert torch.isfinite(k).all() and torch.isfinite(heat_conduct(torch.randn(1, 8, 8, 2), k)).all()


def test_unknown_k_param_is_rejected():
    with pytest.raises(ValueError, match='k_param'):
        Diffusivity(4, 2, param='linear')


@pytest.mark.parametrize('impl', ['matrix', 'scipy'])
def test_bf16_dct_only_where_asked_and_close_to_float32(impl):
    """dtype=bfloat16 runs the cosine matrices in bf16 (error of the order of bf16 rounding);
    the FFT paths ignore it and stay float32."""
    torch.manual_seed(0)
    x, k = torch.randn(2, 24, 40, 8), torch.rand(24, 40, 8) * 5
    ref = heat_conduct(x, k, impl)
    low = heat_conduct(x, k, impl, torch.bfloat16)
    if impl == 'matrix':
        assert low.dtype == torch.bfloat16
        err = ((low.float() - ref).norm() / ref.norm()).item()
        assert 1e-4 < err < 1e-2   # really computed in bf16, and still accurate to ~3 digits
    else:
        assert low.dtype == torch.float32 and torch.equal(low, ref)


def test_dct_amp_follows_autocast_only():
    from vheatir.archs.vheatir_arch import VHeatIR
    torch.manual_seed(0)
    net = VHeatIR(in_chans=1, embed_dim=8, depths=[1], cond_chans=1, fve_grid=4, dct_impl='matrix')
    amp = VHeatIR(in_chans=1, embed_dim=8, depths=[1], cond_chans=1, fve_grid=4, dct_impl='matrix', dct_amp=True)
    amp.load_state_dict(net.state_dict())
    x, c = torch.rand(2, 1, 20, 24), torch.rand(2, 1)
    with torch.no_grad():
        assert torch.equal(amp(x, c), net(x, c))          # no autocast: float32 DCT, bit for bit
        with torch.autocast('cpu', dtype=torch.bfloat16):
            y_net, y_amp = net(x, c).float(), amp(x, c).float()
    assert not torch.equal(y_net, y_amp)                   # autocast: the DCT really ran in bf16
    torch.testing.assert_close(y_amp, y_net, atol=2e-2, rtol=0)


@pytest.mark.parametrize('impl', CPU_IMPLS)
@pytest.mark.parametrize('dtype', [torch.float32, torch.bfloat16])
def test_inference_mode_transforms_in_own_buffers(dtype, impl):
    """Under inference mode the native DCTs overwrite temporaries of their own: the caller's tensor
    is left as it was and the result equals the graph-keeping path's."""
    x = torch.randn(2, 13, 17, 5).to(dtype)
    k = torch.rand(13, 17, 5) * 20
    before = x.clone()
    ref = heat_conduct(x, k, impl)
    with torch.inference_mode():
        got, spectrum = heat_conduct(x, k, impl), dct2(x, impl)
        back = idct2(spectrum, impl)
    assert torch.equal(x, before)
    assert torch.equal(got, ref)
    assert torch.equal(spectrum, dct2(x, impl)) and torch.allclose(back, x.float(), atol=1e-5)
