"""The VHeatIR network: any size, conditioning, residual learning, resolution-agnostic FVE."""
import os

import numpy as np
import pytest
import torch
from basicsr.utils.registry import ARCH_REGISTRY

import vheatir
from conftest import DUCC
from vheatir.archs.vheatir_arch import VHeatIR


def tiny(**kw):
    torch.manual_seed(0)
    cfg = dict(in_chans=1, embed_dim=8, depths=[2, 1], mlp_ratio=2, cond_chans=1, fve_grid=6)
    cfg.update(kw)
    return VHeatIR(**cfg).eval()


@pytest.mark.parametrize('shape', [(1, 1, 1, 1), (2, 1, 7, 5), (1, 1, 16, 16), (1, 1, 33, 20)])
@pytest.mark.parametrize('impl', ['matrix', 'fft', 'scipy', DUCC])
def test_any_size_gray(shape, impl):
    net = tiny(dct_impl=impl)
    x = torch.rand(shape)
    y = net(x, torch.full((shape[0], 1), 0.1))
    assert y.shape == x.shape and torch.isfinite(y).all()


def test_colour_without_conditioning_and_registry():
    vheatir.use_basicsr()
    net = ARCH_REGISTRY.get('VHeatIR')(in_chans=3, embed_dim=8, depths=[1], cond_chans=0)
    x = torch.rand(2, 3, 12, 19)
    assert net(x).shape == x.shape


def test_conditioning_is_required_and_used():
    net = tiny()
    x = torch.rand(1, 1, 12, 12)
    with pytest.raises(ValueError, match='cond'):
        net(x)
    assert not torch.allclose(net(x, torch.tensor([[0.0]])), net(x, torch.tensor([[0.2]])))


def test_residual_learning_output_is_input_plus_tail():
    net = tiny()
    torch.nn.init.zeros_(net.conv_last.weight)
    torch.nn.init.zeros_(net.conv_last.bias)
    x = torch.rand(1, 1, 9, 14)
    assert torch.equal(net(x, torch.tensor([[0.1]])), x)


def test_fve_is_resolution_agnostic():
    net = tiny()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    for h, w in [(48, 48), (97, 131)]:
        y = net(torch.rand(1, 1, h, w), torch.tensor([[0.1]]))
        assert y.shape == (1, 1, h, w) and torch.isfinite(y).all()
    after = net.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    # no parameter's shape depends on an image size
    assert all(96 not in p.shape and 97 not in p.shape for p in net.parameters())


@pytest.mark.parametrize('impl', ['fft', 'scipy', DUCC])
def test_fast_dct_networks_agree_with_matrix(impl):
    # Same outputs and same parameter gradients: every DCT path trains the same network.
    x, c = torch.rand(2, 1, 21, 30), torch.tensor([[0.2], [0.5]])
    a, b = tiny(dct_impl='matrix'), tiny(dct_impl=impl)
    b.load_state_dict(a.state_dict())
    ya, yb = a(x, c), b(x, c)
    assert torch.allclose(ya, yb, atol=1e-4)
    ya.square().sum().backward()
    yb.square().sum().backward()
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        assert torch.allclose(pa.grad, pb.grad, atol=1e-4, rtol=1e-3), name


def test_bf16_autocast_trains_finite():
    net = tiny().train()
    x = torch.rand(2, 1, 24, 24)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        y = net(x, torch.full((2, 1), 0.1))
    loss = (y.float() - x).abs().mean()
    loss.backward()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)


def test_unknown_dct_impl_is_rejected():
    with pytest.raises(ValueError, match='dct_impl'):
        tiny(dct_impl='fast')


def test_log_parametrised_diffusivity_network():
    net = tiny(k_param='log')
    x = torch.rand(2, 1, 20, 18)
    y = net(x, torch.full((2, 1), 0.1))
    y.square().mean().backward()
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)


def test_restoring_never_imports_basicsr(tmp_path):
    """BasicSR (and torchvision through it) cost about 2 s and 250 MB of start-up: restore() and
    inference.py do without them; use_basicsr() brings them in with our components registered."""
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = (
        'import sys, numpy as np, vheatir\n'
        'y = vheatir.restore(np.full((20, 24, 3), 128, np.uint8), sigma=10)\n'
        'assert y.shape == (20, 24, 3)\n'
        'print(sorted(m for m in ("basicsr", "torchvision") if m in sys.modules))\n'
        'vheatir.use_basicsr()\n'
        'from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY\n'
        'print(all(n in r for n, r in [("VHeatIR", ARCH_REGISTRY), ("DenoisingDataset", DATASET_REGISTRY),\n'
        '      ("calculate_psnrb", METRIC_REGISTRY), ("VHeatIRModel", MODEL_REGISTRY), ("SwinIR", ARCH_REGISTRY)]))\n')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=root, check=True).stdout
    assert out.split('\n')[:2] == ['[]', 'True']
    import cv2
    cv2.imwrite(str(tmp_path / 'a.png'), np.full((20, 24), 100, np.uint8))
    probe = ('import runpy, sys; sys.argv = ["inference.py"] + sys.argv[1:]\n'
             'try:\n    runpy.run_path("inference.py", run_name="__main__")\n'
             'except SystemExit as e:\n    assert not e.code, e.code\n'
             'print("basicsr" in sys.modules)')
    out = subprocess.run([sys.executable, '-c', probe, '--task', 'denoise', '--sigma', '10', '--input',
                          str(tmp_path / 'a.png'), '--output', str(tmp_path / 'out')],
                         capture_output=True, text=True, cwd=root, check=True).stdout
    assert out.strip().endswith('False') and (tmp_path / 'out' / 'a.png').is_file()


def test_inference_linears_as_1x1_convolutions_match_the_trained_ones():
    """Under inference mode on the CPU the block's Linear layers run as 1x1 convolutions (bias
    fused by oneDNN); outputs equal the graph-keeping forward's within float32 rounding."""
    net = tiny(embed_dim=16).eval()
    x, c = torch.rand(1, 1, 23, 31), torch.full((1, 1), 0.2)
    with torch.no_grad():
        ref = net(x, c)
    with torch.inference_mode():
        got = net(x, c)
    assert torch.allclose(got, ref, atol=1e-5) and not torch.equal(got, x)


def test_import_vheatir_is_light_until_restore_is_used():
    """``import vheatir`` and its torch-free helpers leave torch unloaded, so inference.py reports a
    bad argument or an empty folder at once; ``vheatir.restore`` brings torch in on first use."""
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = ('import sys, vheatir, vheatir.imageio, vheatir.allocator\n'
            'print("torch" in sys.modules)\n'
            'from vheatir import restore\n'
            'print("torch" in sys.modules, callable(restore), vheatir.restore is restore)\n'
            'try:\n    vheatir.no_such_name\nexcept AttributeError as e:\n    print("AttributeError")\n')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=root, check=True).stdout
    assert out.split('\n')[:3] == ['False', 'True True True', 'AttributeError']
