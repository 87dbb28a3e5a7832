"""The analysis behind scripts/plot_heat.py: heat kernels and how far k moved, against physics."""
import math

import numpy as np
import pytest
import torch

from vheatir.archs.vheatir_arch import VHeatIR
from vheatir.heat_analysis import SIDE, impulse_response, kernel_radius, moved_from_init, ring_profile


def test_constant_k_kernel_is_a_gaussian_of_rms_radius_two_sqrt_k():
    ks = torch.tensor([0.5, 2.0, 8.0])
    kernel = impulse_response(ks.expand(SIDE, SIDE, 3).contiguous())
    np.testing.assert_allclose(kernel.sum((0, 1)).numpy(), 1.0, atol=1e-4)   # heat is conserved
    # Variance 2k per axis -> E[d^2] = 4k; the field is wide enough that the borders do not clip it.
    np.testing.assert_allclose(kernel_radius(kernel), 2 * np.sqrt(ks.numpy()), rtol=0.02)


def test_ring_profile_of_constant_k_is_flat():
    k = torch.full((SIDE, SIDE, 2), 3.0)
    r, prof = ring_profile(k, bins=10)
    assert r.shape == (10,) and prof.shape == (10, 2)
    np.testing.assert_allclose(prof, 3.0, rtol=1e-6)


def test_moved_from_init_sees_a_doubled_diffusivity():
    torch.manual_seed(0)
    net = VHeatIR(in_chans=1, embed_dim=8, depths=[1, 1], cond_chans=1, fve_grid=4)
    assert moved_from_init(net)['median_abs_log10'] < 0.01   # a fresh net sits at its start
    d = net.groups[1].blocks[0].hco.diffusivity
    with torch.no_grad():   # every k of this block x2: softplus(b') = 2 softplus(b)
        k2 = 2 * torch.nn.functional.softplus(d.proj.bias)
        d.proj.bias.copy_(k2 + torch.log(-torch.expm1(-k2)))   # softplus^-1, stable for large k
        d.proj.weight.zero_()
    assert moved_from_init(net)['max_abs_log10'] == pytest.approx(math.log10(2), abs=0.01)
