"""The physics of the heat-conduction operator (HCO), in one place.

A feature map u(x, y) of H x W pixels is treated as a temperature field that
diffuses for a while under the heat equation  du/dt = k * Laplacian(u)  with
insulated (Neumann) borders. The solution is diagonal in the cosine basis:

    U = DCT2(u)                               orthonormal 2-D DCT-II
    U[n, m] <- U[n, m] * exp(-k[n, m] * w[n, m]),  w = (pi n / H)^2 + (pi m / W)^2
    u <- IDCT2(U)

``pi n / H`` is the angular frequency of DCT basis n in radians per pixel, so
``k`` is measured in px^2: a constant k is a Gaussian heat kernel of variance
2k px^2 along each axis, whatever the image size. k >= 0 may differ per
frequency and channel; it comes from frequency value embeddings (FVE) defined
over *normalised* frequency (n / H, m / W) in [0, 1)^2, so one set of learned
parameters serves every image size.

Tensors are channels-last: ``x`` is (B, H, W, C). The DCT is along dims 1 and 2.
Four implementations: cosine-matrix multiplies, O(HW(H+W)), in float32 or, for
mixed-precision training, bfloat16; torch FFTs with Makhoul's N-point reordering,
O(HW log HW), float32; and on the CPU the native DCT kernels (O(HW log HW), no reordering
passes in Python) of scipy's pocketfft or, where the optional ducc0 package is installed, of
ducc0, pocketfft's faster successor, float32.

Size-dependent constants (cosine matrices, frequency weights, interpolation weights) are
cached per size. Inside :func:`graph_constants` (ONNX export) they are instead computed from
the input's sizes by traceable float32 ops, so an exported graph works at every H x W.
"""
import math
from contextlib import contextmanager
from functools import lru_cache, partial
from typing import Callable, Dict, Iterator, Optional, Sequence, Tuple

import scipy.fft
import torch
import torch.nn.functional as F
from torch import Tensor, nn

DCT_IMPLS = ('matrix', 'fft', 'scipy', 'ducc', 'auto')


# ------------------------------------------------------------------------ constants
# The constants built so far inside graph_constants(), or None outside it.
_GRAPH_CONSTANTS: Optional[Dict[Tuple, Tensor]] = None


@contextmanager
def graph_constants() -> Iterator[None]:
    """Within: build size-dependent constants in the traced graph, for exports with symbolic H, W.

    The cached builders (:func:`dct_matrix`, :func:`frequency_weights`, the interpolation
    weights) then compute their tensors, in float32, from ``torch.arange`` of the (possibly
    symbolic) sizes, once per size expression within the context, so a graph traced inside it
    builds each constant once and every block reuses it. Every DCT runs as cosine-matrix
    multiplies (the FFT path uses complex tensors and the scipy one leaves torch; neither exports).
    Not thread-safe: it sets a module variable.
    """
    global _GRAPH_CONSTANTS
    previous, _GRAPH_CONSTANTS = _GRAPH_CONSTANTS, {}
    try:
        yield
    finally:
        _GRAPH_CONSTANTS = previous


def _constant(in_graph: Optional[Callable[..., Tensor]] = None):
    """Cache a tensor-building function per arguments, building outside inference mode.

    A tensor first made under ``torch.inference_mode()`` (e.g. during validation)
    could not be used by autograd later, so cached constants are always normal tensors.
    Inside :func:`graph_constants` ``in_graph`` (default: the function itself) builds the tensor
    instead, memoised by the arguments' text: symbolic sizes are not hashable, but the same
    expression (e.g. ``s1``) is the same size.
    """
    def decorate(fn):
        cached = lru_cache(maxsize=64)(fn)
        traced = in_graph or fn

        def wrapper(*args):
            if _GRAPH_CONSTANTS is not None:
                key = (fn.__name__, *map(str, args))
                if key not in _GRAPH_CONSTANTS:
                    _GRAPH_CONSTANTS[key] = traced(*args)
                return _GRAPH_CONSTANTS[key]
            with torch.inference_mode(False):
                return cached(*args)
        wrapper.__doc__, wrapper.__name__ = fn.__doc__, fn.__name__
        return wrapper
    return decorate


# ----------------------------------------------------------------- cosine matrices
def _cosine_basis(n: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """The orthonormal DCT-II matrix (n, n) computed in ``dtype`` by traceable ops (n may be symbolic).

    The cosine's argument pi (2i + 1) k / (2n) is reduced modulo 2 pi in exact integer
    arithmetic first, m = (2i + 1) k mod 4n, so even in float32 each entry is as accurate
    as one cosine of an angle in [0, 2 pi), whatever n.
    """
    i = torch.arange(n, device=device)
    period = torch.full((), 4 * n, device=device)  # a tensor: ONNX export fails on a symbolic int modulus
    m = (2 * i[None, :] + 1) * i[:, None] % period
    scale = torch.where(i == 0, 1.0, 2.0).to(dtype) / n                 # s_k^2
    return torch.cos(m.to(dtype) * math.pi / (2 * n)) * scale.sqrt()[:, None]


def _graph_dct_matrix(n: int, device: torch.device, dtype: torch.dtype = torch.float32) -> Tensor:
    return _cosine_basis(n, device, torch.float32).to(dtype)


@_constant(in_graph=_graph_dct_matrix)
def dct_matrix(n: int, device: torch.device, dtype: torch.dtype = torch.float32) -> Tensor:
    """Orthonormal DCT-II matrix D (n, n): ``X = D @ x``; its inverse is ``D.T``.

    D[k, i] = s_k cos(pi (2i + 1) k / (2n)),  s_0 = sqrt(1/n), s_k = sqrt(2/n).
    Computed in float64 on the CPU, then cast: cached per (n, device, dtype); treat the
    result as read-only. Inside :func:`graph_constants`: computed in float32 from the traced n.
    """
    return _cosine_basis(n, torch.device('cpu'), torch.float64).to(device=device, dtype=dtype)


def _dct2_matrix(x: Tensor, inverse: bool) -> Tensor:
    b, h, w, c = x.shape
    dh, dw = dct_matrix(h, x.device, x.dtype), dct_matrix(w, x.device, x.dtype)
    if inverse:
        dh, dw = dh.T, dw.T
    # (H,H) @ (B, H, W*C) then (W,W) @ (B*H, W, C): both batched matmuls on contiguous views, no permutes.
    x = torch.matmul(dh, x.reshape(b, h, w * c))
    x = torch.matmul(dw, x.reshape(b * h, w, c))
    return x.reshape(b, h, w, c)


# --------------------------------------------------------------------- FFT version
@_constant()
def _fft_twiddles(n: int, device: torch.device) -> Tuple[Tensor, Tensor]:
    """Forward and inverse twiddles (n//2 + 1,) complex64 for a length-n DCT via FFT.

    Makhoul (1980): v = [x0, x2, x4, ..., x5, x3, x1]; V = FFT(v);
    unnormalised DCT-II Y_k = 2 Re(V_k exp(-i pi k / 2n)). Orthonormal X_k = f_k Y_k
    with f_0 = sqrt(1/4n), f_k = sqrt(1/2n). The twiddles fold in those factors.
    """
    k = torch.arange(n // 2 + 1, dtype=torch.float64)
    f = torch.full_like(k, math.sqrt(1.0 / (2 * n)))
    f[0] = math.sqrt(1.0 / (4 * n))
    phase = torch.polar(torch.ones_like(k), -math.pi * k / (2 * n))
    fwd = (2 * f) * phase                # X_k = Re(V_k fwd_k), X_{n-k} = -Im(V_k fwd_k)
    bwd = phase.conj() / (2 * f)         # V_k = (X_k - i X_{n-k}) bwd_k
    return fwd.to(device, torch.complex64), bwd.to(device, torch.complex64)


def _every_other(x: Tensor, dim: int, start: int) -> Tensor:
    index = [slice(None)] * x.ndim
    index[dim] = slice(start, None, 2)
    return x[tuple(index)]


def _shape_along(t: Tensor, dim: int, ndim: int) -> Tensor:
    shape = [1] * ndim
    shape[dim] = -1
    return t.view(shape)


def _dct1_fft(x: Tensor, dim: int) -> Tensor:
    n = x.shape[dim]
    fwd, _ = _fft_twiddles(n, x.device)
    # Strided slices, not index_select: the latter's CPU kernel is ~100x slower on inner dims.
    v = torch.cat([_every_other(x, dim, 0), _every_other(x, dim, 1).flip(dim)], dim)
    spec = torch.fft.rfft(v, dim=dim) * _shape_along(fwd, dim, x.ndim)
    head = spec.real                                            # X_0 .. X_{n//2}
    tail = -spec.imag.narrow(dim, 1, (n - 1) // 2).flip(dim)    # X_{n//2+1} .. X_{n-1}
    return torch.cat([head, tail], dim)


def _idct1_fft(x: Tensor, dim: int) -> Tensor:
    n = x.shape[dim]
    _, bwd = _fft_twiddles(n, x.device)
    half = n // 2
    head = x.narrow(dim, 0, half + 1)                           # X_0 .. X_{n//2}
    mirrored = x.narrow(dim, n - half, half).flip(dim)          # X_{n-1} .. X_{n-n//2}
    zero = torch.zeros_like(x.narrow(dim, 0, 1))                # X_n := 0
    spec = torch.complex(head, -torch.cat([zero, mirrored], dim)) * _shape_along(bwd, dim, x.ndim)
    v = torch.fft.irfft(spec, n=n, dim=dim)
    # Undo Makhoul's reordering: x[2j] = v[j], x[2j+1] = v[n-1-j].
    out = torch.empty_like(v)
    n_even = (n + 1) // 2
    _every_other(out, dim, 0).copy_(v.narrow(dim, 0, n_even))
    _every_other(out, dim, 1).copy_(v.narrow(dim, n_even, n - n_even).flip(dim))
    return out


def _dct2_fft(x: Tensor, inverse: bool) -> Tensor:
    f = _idct1_fft if inverse else _dct1_fft
    return f(f(x, 2), 1)


# ------------------------------------------------------- pocketfft / ducc0 (CPU) versions
def _scipy_dct2_array(x: Tensor, inverse: bool, overwrite: bool = False) -> Tensor:
    transform = scipy.fft.idctn if inverse else scipy.fft.dctn
    # overwrite_x (x is a temporary) lets pocketfft work in x's buffer: about 35% faster at
    # 600 x 800 x 48 on one thread, with the same result.
    out = transform(x.detach().numpy(), axes=(1, 2), norm='ortho', workers=torch.get_num_threads(),
                    overwrite_x=overwrite)
    return torch.from_numpy(out)


@lru_cache(maxsize=1)
def ducc0_module():
    """The ``ducc0`` package (PyPI, GPL-2.0-or-later) when installed, else None."""
    try:
        import ducc0
    except ImportError:
        return None
    return ducc0


def _ducc_dct2_array(x: Tensor, inverse: bool, overwrite: bool = False) -> Tensor:
    a = x.detach().numpy()
    # inorm=1: the orthonormal DCT-II / DCT-III, as scipy's norm='ortho'.
    out = ducc0_module().fft.dct(a, type=3 if inverse else 2, axes=(1, 2), inorm=1, out=a if overwrite else None,
                                 nthreads=torch.get_num_threads())
    return torch.from_numpy(out)


_CPU_DCT2 = {'scipy': _scipy_dct2_array, 'ducc': _ducc_dct2_array}


class _CpuDCT2(torch.autograd.Function):
    """Orthonormal 2-D DCT-II (or DCT-III) over dims 1, 2 of a CPU float32 tensor, by pocketfft
    ('scipy') or ducc0 ('ducc').

    The transform is orthogonal, so the gradient of each direction is the other direction.
    """

    @staticmethod
    def forward(ctx, x: Tensor, inverse: bool, impl: str) -> Tensor:
        ctx.inverse, ctx.impl = inverse, impl
        return _CPU_DCT2[impl](x, inverse)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tuple[Tensor, None, None]:
        return _CPU_DCT2[ctx.impl](grad, not ctx.inverse), None, None


def _dct2_cpu(impl: str, x: Tensor, inverse: bool, overwrite: bool = False) -> Tensor:
    if x.device.type != 'cpu':
        raise ValueError(f"dct_impl {impl!r} runs on the CPU only; this tensor is on {x.device}")
    if impl == 'ducc' and ducc0_module() is None:
        raise ImportError("dct_impl 'ducc' needs the ducc0 package: pip install ducc0")
    if overwrite:  # inference only: no graph
        return _CPU_DCT2[impl](x, inverse, overwrite=True)
    return _CpuDCT2.apply(x, inverse, impl)


# ------------------------------------------------------------------- public API
# On the CPU, cosine matrices win for small sides (one BLAS call; O(H + W) flops per value is cheap
# there) and the native DCT kernels beyond. With pocketfft one image crosses over between 96 and
# 128 px sides in the dct table; batches of small patches stay on the matrices: alone, pocketfft
# transforms 16 patches of 48 x 48 1.3x faster, but inside a training step (bench_speed.py
# --sections step) it was slower, probably its worker threads competing with torch's. ducc0 beats
# the matrices from 64 px sides, and at 48 px in a one-thread training step (16 gray patches: 25.4
# against 22.3 patches/s); on two threads the matrices were faster there (34.8 against 33.1).
MATRIX_MAX_SIDE = 96
DUCC_MATRIX_MAX_SIDE = 48


def choose_dct_impl(shape: Sequence[int], device: torch.device = torch.device('cpu')) -> str:
    """Pick the fastest DCT for a (B, H, W, C) tensor on ``device`` with torch's current threads.

    CPU with ducc0 installed: ducc0 (1.8-3.5x faster than pocketfft from 128 px sides on), but the
    cosine matrices for sides up to ``DUCC_MATRIX_MAX_SIDE`` px on more than one thread (training
    patches). CPU without it: the matrices up to ``MATRIX_MAX_SIDE`` px, scipy's pocketfft beyond.
    Other devices: cosine-matrix multiplies run at BLAS speed up to about 768 px sides, beyond
    which the O(log n) FFT path wins. The measured tables are in docs/bench_speed.json (sections
    ``dct`` and ``step``) and docs/speed.md.
    """
    _, h, w, _ = shape
    if torch.device(device).type == 'cpu':
        if ducc0_module() is None:
            return 'matrix' if max(h, w) <= MATRIX_MAX_SIDE else 'scipy'
        return 'matrix' if max(h, w) <= DUCC_MATRIX_MAX_SIDE and torch.get_num_threads() > 1 else 'ducc'
    return 'matrix' if max(h, w) <= 768 else 'fft'


_DCT2 = {'matrix': _dct2_matrix, 'fft': _dct2_fft, 'scipy': partial(_dct2_cpu, 'scipy'),
         'ducc': partial(_dct2_cpu, 'ducc')}


def resolve_dct_impl(impl: str, x: Tensor) -> str:
    """The DCT path that runs for ``impl`` on x (B, H, W, C): 'auto' resolved by :func:`choose_dct_impl`;
    always 'matrix' inside :func:`graph_constants` (the only traceable path; it also keeps the choice
    from depending on symbolic sizes)."""
    if _GRAPH_CONSTANTS is not None:
        return 'matrix'
    return choose_dct_impl(x.shape, x.device) if impl == 'auto' else impl


def _transform(x: Tensor, impl: str, inverse: bool, dtype: torch.dtype, own: bool = False) -> Tensor:
    """The DCT of x by ``impl``; ``own``: x is a temporary the CPU paths may overwrite (under
    inference mode; elsewhere it is ignored)."""
    impl = resolve_dct_impl(impl, x)
    if impl in _CPU_DCT2 and torch.is_inference_mode_enabled():
        # Transform in a buffer of our own: at 600 x 800 x 48 on one thread a copy takes ~13 ms,
        # overwriting saves ~55 ms (pocketfft).
        return _dct2_cpu(impl, x if own and x.dtype == torch.float32 else x.to(torch.float32, copy=True), inverse,
                         overwrite=True)
    return _DCT2[impl](x.to(dtype if impl == 'matrix' else torch.float32), inverse)


def dct2(x: Tensor, impl: str = 'auto', dtype: torch.dtype = torch.float32) -> Tensor:
    """Orthonormal 2-D DCT-II of a channels-last tensor (B, H, W, C) over H and W.

    Matches ``scipy.fft.dctn(x, axes=(1, 2), norm='ortho')``. Computed and returned in
    ``dtype`` by the cosine matrices (bfloat16 is ~2x faster on CPUs with bf16 matmuls,
    relative error ~4e-3), always in float32 by the FFT paths.
    """
    return _transform(x, impl, False, dtype)


def idct2(x: Tensor, impl: str = 'auto', dtype: torch.dtype = torch.float32) -> Tensor:
    """Inverse of :func:`dct2` (orthonormal 2-D DCT-III), same layout and dtype rules."""
    return _transform(x, impl, True, dtype)


@_constant()
def frequency_weights(h: int, w: int, device: torch.device) -> Tensor:
    """w[n, m] = (pi n / H)^2 + (pi m / W)^2, shape (H, W, 1), rad^2 / px^2, float32."""
    wn = (math.pi * torch.arange(h, dtype=torch.float32) / h) ** 2
    wm = (math.pi * torch.arange(w, dtype=torch.float32) / w) ** 2
    return (wn[:, None] + wm[None, :]).unsqueeze(-1).to(device)


# exp(-40) = 4e-18 is far below float32 resolution next to the kept DC term (1), so stronger decays
# change nothing measurable; cut there, they never reach exp's slow underflow path nor create
# denormal numbers, which make every later multiply, FFT and matmul on x86 CPUs many times slower.
MAX_DECAY_EXPONENT = 40.0


def heat_decay(k: Tensor) -> Tensor:
    """Per-frequency attenuation exp(-k * w) for k of shape (H, W, C) in px^2, k >= 0.

    Computed as exp(-k * w), never exp(-w) ** k: the latter underflows to 0 for
    large w and its gradient becomes NaN (0 * log 0) in low precision. k * w is
    capped at ``MAX_DECAY_EXPONENT``, so the decay is >= 4e-18 and never denormal.
    """
    exponent = k.float() * frequency_weights(k.shape[0], k.shape[1], k.device)
    if torch.is_inference_mode_enabled():
        # No graph to keep: one buffer instead of four (the chain ran ~3x faster at 432^2 x 48).
        return exponent.clamp_(max=MAX_DECAY_EXPONENT).neg_().exp_()
    return torch.exp(-exponent.clamp(max=MAX_DECAY_EXPONENT))


def heat_conduct(x: Tensor, k: Tensor, impl: str = 'auto', dtype: torch.dtype = torch.float32) -> Tensor:
    """Let x (B, H, W, C) diffuse with diffusivity-time k (H, W, C) [px^2]: IDCT(DCT(x) * exp(-k w)).

    Returns (B, H, W, C) in ``dtype`` (see :func:`dct2`: float32 whenever an FFT path runs).
    k = 0 is the identity; the DC term (per-channel mean) is always preserved since w[0, 0] = 0.
    """
    spectrum = dct2(x, impl, dtype)
    decay = heat_decay(k).to(spectrum.dtype)
    # The spectrum is a fresh tensor: under inference mode it is attenuated in place.
    if torch.is_inference_mode_enabled():
        return _transform(spectrum.mul_(decay), impl, True, dtype, own=True)
    return idct2(spectrum * decay, impl, dtype)


class FrequencyValueEmbedding(nn.Module):
    """Learnable embedding e(u, v) in R^dim over normalised frequency (u, v) = (n/H, m/W).

    Stored as a ``grid`` x ``grid`` lattice spanning [0, 1]^2; blocks project it to
    a diffusivity lattice (:class:`Diffusivity`) that is then resampled to H x W,
    so the embedding is defined for every image size. Shared by the blocks of a group.
    """

    def __init__(self, dim: int, grid: int = 16):
        super().__init__()
        self.values = nn.Parameter(torch.randn(grid, grid, dim) * 0.02)


class Diffusivity(nn.Module):
    """Per-block k(u, v, c) >= 0 in px^2 from the FVE lattice, then bilinear to H x W.

    ``param`` says how the projection z = Linear(FVE) becomes k:
      'softplus': k = softplus(z). An optimiser step moves z, hence k, by about the
        learning rate, a tiny *relative* change once k >> 1 px^2.
      'log': k = exp(z), so a step changes k by a *factor*; every scale learns equally
        fast. z is capped at ``LOG_K_MAX`` (k <= 1e6 px^2, a kernel ~2000 px wide) so k
        stays finite (inf * w = NaN at the DC term).
    The bias starts k log-spaced over ``k_init`` px^2 across channels, so at
    initialisation the channels diffuse over scales from sub-pixel to global.
    """

    K_INIT = (0.1, 100.0)  # px^2: from sub-pixel to about the size of a 48 px training patch
    PARAMS = ('softplus', 'log')
    LOG_K_MAX = math.log(1e6)

    def __init__(self, embed_dim: int, channels: int, k_init: Tuple[float, float] = K_INIT,
                 param: str = 'softplus'):
        super().__init__()
        if param not in self.PARAMS:
            raise ValueError(f'k_param must be one of {self.PARAMS}, got {param!r}')
        self.param = param
        self.proj = nn.Linear(embed_dim, channels)
        nn.init.normal_(self.proj.weight, std=0.02)
        k0 = self.initial_k(channels, k_init)
        with torch.no_grad():
            if param == 'softplus':
                self.proj.bias.copy_(k0 + torch.log(-torch.expm1(-k0)))  # softplus^-1(k0), stable
            else:
                self.proj.bias.copy_(torch.log(k0))

    @staticmethod
    def initial_k(channels: int, k_init: Tuple[float, float] = K_INIT) -> Tensor:
        """The starting k per channel (C,) in px^2: log-spaced over ``k_init``."""
        return torch.logspace(math.log10(k_init[0]), math.log10(k_init[1]), channels)

    def forward(self, fve: FrequencyValueEmbedding, h: int, w: int) -> Tensor:
        """k of shape (H, W, C), float32."""
        z = self.proj(fve.values.float())
        lattice = F.softplus(z) if self.param == 'softplus' else torch.exp(z.clamp(max=self.LOG_K_MAX))
        return sample_frequency_grid(lattice, h, w)


def _hat_weights(n: int, g: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """(n, g) linear-interpolation weights in ``dtype`` by traceable ops (n may be symbolic).

    Row i reads a g-node lattice over [0, 1] at u = i / n, lattice coordinate p = u (g - 1):
    node j gets the hat function max(0, 1 - |p - j|), i.e. 1 - frac and frac at the two
    nodes around p, 0 elsewhere.
    """
    pos = torch.arange(n, dtype=dtype, device=device) / n * (g - 1)
    nodes = torch.arange(g, dtype=dtype, device=device)
    return torch.relu(1 - (pos[:, None] - nodes[None, :]).abs())


def _graph_interpolation_matrix(n: int, g: int, device: torch.device) -> Tensor:
    return _hat_weights(n, g, device, torch.float32)


@_constant(in_graph=_graph_interpolation_matrix)
def _interpolation_matrix(n: int, g: int, device: torch.device) -> Tensor:
    """(n, g) float32 linear-interpolation weights (:func:`_hat_weights`), computed in float64 and cached."""
    return _hat_weights(n, g, torch.device('cpu'), torch.float64).to(device=device, dtype=torch.float32)


def sample_frequency_grid(values: Tensor, h: int, w: int) -> Tensor:
    """Bilinearly resample a (G, G, C) lattice over [0, 1]^2 at (n/H, m/W): returns (H, W, C).

    Bilinear interpolation is separable, so it is two small matmuls with (H, G) and (W, G)
    weight matrices (cached per size); ``F.grid_sample`` with ``align_corners=True`` gives the
    same values, several times slower on the CPU. Interpolation of non-negative lattice values
    stays non-negative, so a k >= 0 lattice yields k >= 0 at every image size.
    """
    g, _, c = values.shape
    rows = _interpolation_matrix(h, g, values.device).to(values.dtype)
    cols = _interpolation_matrix(w, g, values.device).to(values.dtype)
    along_h = torch.matmul(rows, values.reshape(g, g * c)).reshape(h, g, c)   # (H, G, C)
    return torch.matmul(cols, along_h)                                      # (W, G) @ (H, G, C) -> (H, W, C)
