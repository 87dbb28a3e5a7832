"""Parameter and FLOP counts (vheatir/complexity.py) against hand-computed values."""
import pytest
import torch
from torch import nn

from vheatir.archs.vheatir_arch import VHeatIR
from vheatir.complexity import count_flops, count_params, fft_dct_flops


def test_conv_flops_and_params_by_hand():
    net = nn.Conv2d(1, 4, 3, padding=1)
    assert count_params(net) == 4 * 9 + 4
    assert count_flops(net, 1, 16, cond=None) == 2 * 4 * 9 * 16 * 16   # 2 per multiply-add


def test_heat_operator_dct_is_counted_for_both_implementations():
    # Same network, DCT as cosine-matrix products (counted by torch) or as FFTs (added by formula):
    # the difference is exactly n_HCO x (matrix pair - FFT pair) of one 24 x 24 x 8 field.
    torch.manual_seed(0)
    h = w = 24
    c = 8
    nets = {impl: VHeatIR(in_chans=1, embed_dim=c, depths=[2, 1], cond_chans=1, dct_impl=impl)
            for impl in ('matrix', 'fft')}
    n_hco = 3
    matrix_pair = 2 * (2 * h * w * c * (h + w))   # forward + inverse, (H,H) and (W,W) products
    diff = count_flops(nets['matrix'], 1, h) - count_flops(nets['fft'], 1, h)
    assert diff == pytest.approx(n_hco * (matrix_pair - fft_dct_flops(h, w, c)), rel=1e-12)
    assert count_params(nets['matrix']) == count_params(nets['fft'])
