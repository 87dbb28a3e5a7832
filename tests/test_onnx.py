"""ONNX export and the ONNX Runtime engine, with tiny random-init models.

Nothing here needs shipped weights: the fixture exports tiny VHeatIRs (embed_dim 8, one block)
into a temporary folder as tests/test_inference.py does, and their ONNX files into a temporary
cache. Each export takes a few seconds, so the module exports each model once and shares it.
"""
import os
import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch
import yaml

from vheatir import api, onnx_engine, restore
from vheatir.archs import heat_ops
from vheatir.archs.vheatir_arch import VHeatIR
from vheatir.imageio import read_image, write_png
from vheatir.weights import export_weights, load_network

pytestmark = pytest.mark.usefixtures('one_torch_thread')
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INFERENCE = os.path.join(ROOT, 'inference.py')
EXPORT = os.path.join(ROOT, 'scripts', 'export_onnx.py')
TINY = {'embed_dim': 8, 'depths': [1], 'cond_chans': 1, 'fve_grid': 4}
ODD_SIZES = ((37, 53), (61, 29))
TOLERANCE = 1e-4


@pytest.fixture(scope='module')
def cache(tmp_path_factory):
    """A temporary ONNX cache folder, set as $VHEATIR_ONNX_CACHE for the module."""
    folder = str(tmp_path_factory.mktemp('onnx_cache'))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(onnx_engine.CACHE_ENV, folder)
        yield folder


@pytest.fixture(scope='module')
def weights(tmp_path_factory, cache):
    """{'gray', 'color'} -> tiny random-init denoising weights file, already exported into ``cache``."""
    folder = tmp_path_factory.mktemp('weights')
    paths = {}
    for color, in_chans in (('gray', 1), ('color', 3)):
        net_g = {'in_chans': in_chans, **TINY}
        torch.manual_seed(0)
        torch.save({'params': VHeatIR(**net_g).state_dict()}, folder / f'net_g_{color}.pth')
        with open(folder / f'{color}.yml', 'w') as f:
            yaml.safe_dump({'network_g': {'type': 'VHeatIR', **net_g}}, f)
        paths[color] = str(folder / f'{color}.pth')
        export_weights(str(folder / f'net_g_{color}.pth'), str(folder / f'{color}.yml'), paths[color], 'denoise', color)
        onnx_engine.load_onnx_net(paths[color])  # the export on first use, shared by the tests below
    return paths


def run_cli(script, *args, env=None):
    env = dict(os.environ, OMP_NUM_THREADS='1', **(env or {}))
    return subprocess.run([sys.executable, script, *map(str, args)], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=600)


# ------------------------------------------------------------------ heat_ops constants
def test_graph_constants_equal_the_cached_ones():
    cpu = torch.device('cpu')
    for n in (1, 2, 7, 48, 97, 1000):  # 1000: the exact integer argument keeps float32 cosines accurate
        cached = (heat_ops.dct_matrix(n, cpu), heat_ops._interpolation_matrix(n, 4, cpu),
                  heat_ops.frequency_weights(n, 3, cpu))
        with heat_ops.graph_constants():
            built = (heat_ops.dct_matrix(n, cpu), heat_ops._interpolation_matrix(n, 4, cpu),
                     heat_ops.frequency_weights(n, 3, cpu))
            assert heat_ops.dct_matrix(n, cpu) is built[0]  # built once per size within the context
            assert heat_ops.resolve_dct_impl('scipy', torch.zeros(1, n, 3, 1)) == 'matrix'
        for a, b in zip(cached, built):
            torch.testing.assert_close(b, a, rtol=0, atol=1e-6)
    assert heat_ops._GRAPH_CONSTANTS is None  # the context leaves nothing behind


# ---------------------------------------------------------------------- export
@pytest.mark.parametrize('color', ['gray', 'color'])
def test_onnxruntime_equals_torch_at_odd_sizes(weights, color):
    net, _ = load_network(weights[color])
    engine = onnx_engine.load_onnx_net(weights[color])
    generator = torch.Generator().manual_seed(1)
    for h, w in ODD_SIZES:
        x = torch.rand(2, net.in_chans, h, w, generator=generator)
        cond = torch.tensor([[0.1], [0.4]])
        with torch.inference_mode():
            diff = (engine(x, cond) - net(x, cond)).abs().max().item()
        assert diff < TOLERANCE, (h, w, diff)


def test_exported_graph_is_dynamic(weights):
    """Named symbolic axes, and the graph (traced at 2 x 40 x 48) runs at other batches and sizes."""
    path = onnx_engine.onnx_file_for(weights['gray'])
    model = onnx.load(path)
    dims = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input}
    assert dims == {'image': ['batch', 1, 'height', 'width'], 'cond': ['batch', 1]}
    props = {p.key: p.value for p in model.metadata_props}
    assert props['vheatir_task'] == 'denoise' and props['vheatir_color'] == 'gray'

    net, _ = load_network(weights['gray'])
    engine = onnx_engine.OnnxNet(path, threads=1)
    for b, h, w in ((1, 1, 1), (3, 8, 5), (1, 130, 9)):  # 130 px: torch takes ducc0 or pocketfft there
        x, cond = torch.rand(b, 1, h, w), torch.rand(b, 1)
        with torch.inference_mode():
            assert (engine(x, cond) - net(x, cond)).abs().max().item() < TOLERANCE


# ---------------------------------------------------------------------- restore
@pytest.mark.parametrize('color, tile, self_ensemble', [('gray', None, False), ('gray', 24, False),
                                                        ('color', 32, False), ('color', None, True)])
def test_restore_with_onnxruntime_equals_torch(weights, color, tile, self_ensemble):
    rng = np.random.default_rng(0)
    image = rng.random((45, 51) if color == 'gray' else (45, 51, 3)).astype(np.float32)
    kwargs = dict(task='denoise', sigma=25, weights=weights[color], tile=tile, tile_overlap=8,
                  self_ensemble=self_ensemble)
    expected = restore(image, engine='torch', device='cpu', amp='fp32', **kwargs)
    result = restore(image, engine='onnxruntime', **kwargs)   # amp 'auto': the float32 graph
    assert result.shape == image.shape and result.dtype == image.dtype
    assert np.abs(result - expected).max() < TOLERANCE


def test_restore_engine_errors(weights, monkeypatch):
    image = np.zeros((16, 16), np.float32)
    with pytest.raises(ValueError, match='engine must be one of'):
        restore(image, sigma=25, weights=weights['gray'], engine='tensorrt')
    with pytest.raises(ValueError, match="amp 'bf16' needs engine 'torch'"):
        restore(image, sigma=25, weights=weights['gray'], engine='onnxruntime', amp='bf16')
    with pytest.raises(ValueError, match='runs on the CPU'):
        restore(image, sigma=25, weights=weights['gray'], engine='onnxruntime', device='cuda')
    # Without onnxruntime installed: a one-line ImportError naming what to install.
    real_find_spec = onnx_engine.importlib.util.find_spec
    monkeypatch.setattr(onnx_engine.importlib.util, 'find_spec',
                        lambda name, *a: None if name == 'onnxruntime' else real_find_spec(name, *a))
    monkeypatch.setattr(onnx_engine, '_NETS', {})
    with pytest.raises(ImportError, match='pip install onnxruntime$'):
        restore(image, sigma=25, weights=weights['gray'], engine='onnxruntime')


# --------------------------------------------------------------------- commands
def test_cli_engine_onnxruntime_restores_a_folder_like_torch(weights, cache, tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / 'in'
    for name, shape in (('a', (33, 41)), ('b', (27, 30))):
        write_png(str(folder / f'{name}.png'), rng.integers(0, 256, shape, dtype=np.uint8))
    outputs = {}
    for engine in ('torch', 'onnxruntime'):
        out = tmp_path / engine
        proc = run_cli(INFERENCE, '--task', 'denoise', '--input', folder, '--output', out, '--sigma', 25,
                       '--weights', weights['gray'], '--engine', engine, '--device', 'cpu', '--amp', 'fp32',
                       env={onnx_engine.CACHE_ENV: cache})
        assert proc.returncode == 0, proc.stderr
        assert 'restored 2 of 2' in proc.stdout
        outputs[engine] = [read_image(str(out / f'{name}.png')).astype(int) for name in 'ab']
    for a, b in zip(*outputs.values()):
        assert np.abs(a - b).max() <= 1  # uint8 rounding of results equal within 1e-4

    proc = run_cli(INFERENCE, '--task', 'denoise', '--input', folder, '--engine', 'onnxruntime', '--amp', 'bf16')
    assert proc.returncode == 2 and '--amp needs --engine torch' in proc.stderr


def test_cli_without_onnxruntime_is_a_one_line_error(weights, tmp_path):
    write_png(str(tmp_path / 'a.png'), np.zeros((8, 8), np.uint8))
    argv = ['inference.py', '--task', 'denoise', '--input', str(tmp_path / 'a.png'), '--weights', weights['gray'],
            '--engine', 'onnxruntime', '--output', str(tmp_path / 'out')]
    code = ("import runpy, sys; sys.modules['onnxruntime'] = None; "  # as if it were not installed
            f"sys.argv = {argv!r}; runpy.run_path({INFERENCE!r}, run_name='__main__')")
    proc = run_cli('-c', code)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == ["error: engine 'onnxruntime' and ONNX export need onnxruntime: "
                                                'pip install onnxruntime']


def test_export_script_with_a_fixed_level_and_its_errors(weights, tmp_path):
    out = tmp_path / 'gray_s25.onnx'
    proc = run_cli(EXPORT, '--weights', weights['gray'], '--sigma', 25, '--out', out)
    assert proc.returncode == 0, proc.stderr
    assert 'inputs image,' in proc.stdout and 'max |onnxruntime - torch|' in proc.stdout
    assert sorted(os.listdir(tmp_path)) == ['gray_s25.onnx']  # written via a temporary name, nothing left over

    net, _ = load_network(weights['gray'])
    engine = onnx_engine.OnnxNet(str(out), threads=1)
    assert engine.cond_chans == 0
    x = torch.rand(1, 1, *ODD_SIZES[0])
    with torch.inference_mode():
        assert (engine(x) - net(x, torch.tensor([[25 / 255]]))).abs().max().item() < TOLERANCE

    bad = tmp_path / 'bad.pth'
    bad.write_bytes(b'not weights')
    for weights_file in (tmp_path / 'missing.pth', bad):
        proc = run_cli(EXPORT, '--weights', weights_file, '--out', tmp_path / 'x.onnx')
        assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert proc.stderr.startswith('error: ')
    assert not os.path.exists(tmp_path / 'x.onnx')


def test_api_engines_and_device():
    assert api.ENGINES == ('torch', 'onnxruntime')
    assert api.engine_device('onnxruntime', 'auto') == 'cpu'
    assert api.engine_device('torch', 'cpu') == 'cpu'
