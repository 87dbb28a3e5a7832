"""ONNX export of vHeatIR weights and an ONNX Runtime engine for :func:`vheatir.api.restore`.

An exported graph takes ``image`` (B, C, H, W) float32 in [0, 1] (RGB for colour) and, for
models with a conditioning input, ``cond`` (B, 1) = sigma/255 or quality/100; it returns
``restored`` (B, C, H, W). Batch, height and width are dynamic: the heat operator's cosine
matrices, frequency weights and interpolation weights are computed inside the graph from the
input's shape (:func:`vheatir.archs.heat_ops.graph_constants`). A level can also be baked in
(``fixed_cond``), leaving the single input ``image`` that tools such as chaiNNer expect.

onnx, onnxscript (both for exporting) and onnxruntime are optional dependencies: they are
imported only when a function here needs them, so ``import vheatir`` works without them.
"""
import importlib.util
import os
import warnings
from typing import Dict, Optional, Tuple, Union

import numpy as np
import torch
from torch import Tensor, nn

from .archs.heat_ops import graph_constants
from .atomic import atomic_write
from .weights import DEFAULT_ARCH, IN_CHANS, load_network, read_weights, sha256_of

INPUT, COND, OUTPUT = 'image', 'cond', 'restored'
# Part of every cached file's name: raise it when the exported graph changes (heat_ops, the arch,
# the export settings), so exports made by older code are not reused.
EXPORT_VERSION = 1
CACHE_ENV = 'VHEATIR_ONNX_CACHE'
# Example input of the export: a batch of 2 (torch.export turns a size-1 dimension into a constant)
# and different H and W, so the two stay separate symbols.
EXAMPLE_SIZE = (2, 40, 48)
# The export is checked against PyTorch at a size other than the example's, with batch 1.
CHECK_SIZE = (1, 29, 43)
CHECK_TOLERANCE = 1e-4
# torch's ONNX exporter writes opset 18 and later: 17 has no Split(num_outputs), which its graphs use.
MIN_OPSET = 18


def require(*packages: str) -> None:
    """Raise ImportError with a one-line message unless every one of ``packages`` is installed."""
    missing = [p for p in packages if importlib.util.find_spec(p) is None]
    if missing:
        raise ImportError(f"engine 'onnxruntime' and ONNX export need {', '.join(missing)}: "
                          f"pip install {' '.join(missing)}")


def cache_dir() -> str:
    """Folder of the ONNX files exported on first use: ``$VHEATIR_ONNX_CACHE``, else
    ``$XDG_CACHE_HOME/vheatir/onnx`` (``~/.cache/vheatir/onnx``)."""
    if os.environ.get(CACHE_ENV):
        return os.environ[CACHE_ENV]
    base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
    return os.path.join(base, 'vheatir', 'onnx')


class _FixedCond(nn.Module):
    """``net`` with its conditioning input held at one value: forward(x) = net(x, value)."""

    def __init__(self, net: nn.Module, value: float):
        super().__init__()
        self.net = net
        self.register_buffer('cond', torch.full((1, net.cond_chans), float(value)))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x, self.cond.expand(x.shape[0], -1))


def _session(model: Union[bytes, str], threads: Optional[int] = None):
    """ONNX Runtime CPU session for an ONNX file or its bytes, ``threads`` intra-op threads
    (default: torch's thread count, so both engines use the same cores)."""
    require('onnxruntime')
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1  # one chain of operators: parallelism is inside each
    return onnxruntime.InferenceSession(model, options, providers=['CPUExecutionProvider'])


class OnnxNet:
    """An ONNX Runtime session as the callable the tiler runs: net(x, cond) -> restored.

    x (B, C, H, W) float tensor, cond (B, cond_chans) or None; returns a (B, C, H, W) float32
    CPU tensor. ``cond_chans`` is 1 when the graph has a ``cond`` input, else 0 (a model
    without conditioning, or one exported with a fixed level).
    """

    def __init__(self, model: Union[bytes, str], threads: Optional[int] = None):
        self.session = _session(model, threads)
        self.cond_chans = 1 if COND in [i.name for i in self.session.get_inputs()] else 0

    def __call__(self, x: Tensor, cond: Optional[Tensor] = None) -> Tensor:
        feed = {INPUT: np.ascontiguousarray(x.detach().cpu().float().numpy())}
        if self.cond_chans:
            if cond is None:
                raise ValueError('this ONNX model expects a conditioning value (cond), got None')
            feed[COND] = np.ascontiguousarray(cond.detach().cpu().float().reshape(x.shape[0], -1).numpy())
        return torch.from_numpy(self.session.run([OUTPUT], feed)[0])


def _random_inputs(size: Tuple[int, int, int], in_chans: int, cond_chans: int,
                   generator: Optional[torch.Generator] = None) -> Tuple[Tensor, ...]:
    """(x (B, in_chans, H, W),) plus cond (B, cond_chans) when cond_chans > 0, uniform in [0, 1)."""
    b, h, w = size
    x = torch.rand(b, in_chans, h, w, generator=generator)
    return (x, torch.rand(b, cond_chans, generator=generator)) if cond_chans else (x,)


def export_onnx(net: nn.Module, path: str, opset: Optional[int] = None, fixed_cond: Optional[float] = None,
                metadata: Optional[Dict[str, str]] = None) -> float:
    """Export a VHeatIR ``net`` (eval mode) to the ONNX file ``path``; returns the check's max |ORT - torch|.

    Inputs ``image`` (B, C, H, W) and, when the net is conditioned and ``fixed_cond`` is None,
    ``cond`` (B, cond_chans); output ``restored`` (B, C, H, W); B, H and W dynamic. ``fixed_cond``
    bakes one conditioning value (sigma/255 or quality/100) into the graph (ValueError for a net
    without conditioning). ``opset``: ONNX opset >= :data:`MIN_OPSET` (ValueError), None for the
    exporter's default (20 with torch 2.14). ``metadata`` goes into the model's metadata_props.

    Traced by ``torch.export`` (symbolic B, H, W: it fails rather than fix a size silently), then
    converted by ``torch.onnx``. Before the file is written (atomically) ONNX Runtime runs the graph
    on random input of size :data:`CHECK_SIZE`; a difference to PyTorch above :data:`CHECK_TOLERANCE`
    raises RuntimeError and writes nothing.
    """
    if fixed_cond is not None and not net.cond_chans:
        raise ValueError('this model has no conditioning input, so no level can be fixed')
    if opset is not None and opset < MIN_OPSET:
        raise ValueError(f'ONNX opset {opset} is not supported; use {MIN_OPSET} or later')
    require('onnx', 'onnxscript', 'onnxruntime')
    import onnx

    model = net if fixed_cond is None else _FixedCond(net, fixed_cond).eval()
    cond_chans = net.cond_chans if fixed_cond is None else 0
    args = _random_inputs(EXAMPLE_SIZE, net.in_chans, cond_chans)
    batch, height, width = (torch.export.Dim(name, min=1) for name in ('batch', 'height', 'width'))
    shapes = ({0: batch, 2: height, 3: width}, {0: batch})[:len(args)]
    # One trace per graph_constants() context: its memoised constants belong to that trace.
    with graph_constants():
        exported = torch.export.export(model, args, dynamic_shapes=shapes)
    with warnings.catch_warnings():
        # image and cond share the batch axis on purpose; the exporter remarks on it.
        warnings.filterwarnings('ignore', message='.*The axis name: .* will not be used')
        # dynamic_shapes again only names the axes: batch, height, width instead of s0, s1, ...
        program = torch.onnx.export(exported, args, dynamo=True, opset_version=opset, verbose=False,
                                    input_names=[INPUT, COND][:len(args)], output_names=[OUTPUT],
                                    dynamic_shapes=shapes, external_data=False)
    proto = program.model_proto
    onnx.helper.set_model_props(proto, dict(metadata or {}))
    data = proto.SerializeToString()

    check = _random_inputs(CHECK_SIZE, net.in_chans, cond_chans, torch.Generator().manual_seed(0))
    with torch.inference_mode():
        expected = model(*check)
    diff = float((OnnxNet(data, threads=1)(*check) - expected).abs().max())
    if not diff <= CHECK_TOLERANCE:  # written so that NaN fails too
        raise RuntimeError(f'ONNX export check failed: max |onnxruntime - torch| = {diff:.3g} at '
                           f'{CHECK_SIZE[1]} x {CHECK_SIZE[2]} (tolerance {CHECK_TOLERANCE:g}); nothing written')
    atomic_write(path, lambda f: f.write(data))
    return diff


def weights_metadata(info: Dict, sha256: str, fixed_cond: Optional[float] = None) -> Dict[str, str]:
    """metadata_props of an export of weights ``info`` (from :func:`vheatir.weights.load_network`)."""
    cond = 'sigma / 255 (noise std on the 0-255 scale)' if info['task'] == 'denoise' else 'JPEG quality / 100'
    colors = 'gray' if info['color'] == 'gray' else 'RGB'
    return {'vheatir_task': info['task'], 'vheatir_color': info['color'],
            'vheatir_input': f'{INPUT}: (B, {IN_CHANS[info["color"]]}, H, W) float32 in [0, 1], {colors}',
            'vheatir_cond': f'fixed at {fixed_cond:g}' if fixed_cond is not None else f'{COND}: (B, 1) = {cond}',
            'vheatir_weights_sha256': sha256,
            'vheatir_export_version': str(EXPORT_VERSION)}


def export_weights_onnx(weights: str, path: str, opset: Optional[int] = None,
                        fixed_cond: Optional[float] = None) -> float:
    """Export vHeatIR weights file ``weights`` to ONNX file ``path`` (see :func:`export_onnx`).

    Returns the check's max |ORT - torch|. Raises FileNotFoundError/ValueError (one line) for
    a missing or invalid weights file, for weights of another arch (benchmark baselines), and for
    ``fixed_cond`` with a model that has no conditioning input.
    """
    arch = read_weights(weights).get('arch', DEFAULT_ARCH)  # checked before a baseline's network is built
    if arch != DEFAULT_ARCH:
        raise ValueError(f'{weights}: {arch} weights (a benchmark baseline); only {DEFAULT_ARCH} exports')
    net, info = load_network(weights)
    return export_onnx(net, path, opset, fixed_cond, weights_metadata(info, sha256_of(weights), fixed_cond))


def onnx_file_for(weights: str) -> str:
    """Where :func:`load_onnx_net` keeps the export of weights file ``weights``:
    ``<cache_dir()>/<sha256 of the file>-v<EXPORT_VERSION>.onnx``."""
    return os.path.join(cache_dir(), f'{sha256_of(weights)}-v{EXPORT_VERSION}.onnx')


_NETS: Dict[Tuple[str, int], OnnxNet] = {}


def load_onnx_net(weights: str) -> OnnxNet:
    """ONNX Runtime engine for weights file ``weights``, cached per (absolute path, modification time).

    On first use the weights are exported to :func:`onnx_file_for` (skipped when that file exists,
    e.g. from an earlier process); the session uses torch's thread count at creation.
    """
    path = os.path.abspath(weights)
    key = (path, os.stat(path).st_mtime_ns)
    if key not in _NETS:
        require('onnxruntime')
        onnx_file = onnx_file_for(path)
        if not os.path.isfile(onnx_file):
            export_weights_onnx(path, onnx_file)
        _NETS[key] = OnnxNet(onnx_file)
    return _NETS[key]
