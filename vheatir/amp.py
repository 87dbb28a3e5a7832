"""Mixed precision: which autocast dtypes we offer, and whether this machine runs them natively."""
from contextlib import nullcontext
from typing import Callable, ContextManager, Optional

import torch

AMP_DTYPES = {'bf16': torch.bfloat16, 'fp16': torch.float16}


def check_amp(amp: Optional[str]) -> None:
    """Raise ValueError unless ``amp`` is None, 'auto', 'fp32' or a key of AMP_DTYPES."""
    if amp not in (None, 'auto', 'fp32', False) and amp not in AMP_DTYPES:
        raise ValueError(f"amp must be one of None, 'auto', 'fp32', 'bf16', 'fp16'; got {amp!r}")


def auto_amp(device: torch.device) -> Optional[str]:
    """What amp='auto' runs inference in: 'bf16' on a CPU with native bf16 kernels, else None (float32).

    There, shipped gray denoising on BSD68 at sigma 25 scores 28.92 dB in bf16 and in float32
    (-0.006 dB; docs/results/denoise_gray_vheatir_BSD68_s25_bf16.json) and restore() runs 1.25-1.4x
    faster (docs/speed.md). GPUs keep float32: not measured there.
    """
    return 'bf16' if device.type == 'cpu' and cpu_has_native_bf16() else None


def cpu_has_native_bf16() -> bool:
    """True where oneDNN has bf16 kernels for this CPU (x86 with AVX-512)."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def slow_amp_reason(device: torch.device, amp: Optional[str]) -> Optional[str]:
    """Why ``amp`` autocast would run far slower than float32 on ``device``, or None.

    CPU bf16 convolutions and matrix products go through oneDNN only where it has bf16
    kernels (:func:`cpu_has_native_bf16`); elsewhere PyTorch falls back to reference loops.
    On an AVX2-only EPYC a vHeatIR-S training step took about 31 s in bf16 against 2.5 s
    in float32 (one-off count of iterations, 2026-12-01).
    """
    if amp == 'bf16' and device.type == 'cpu' and not cpu_has_native_bf16():
        return f'this CPU ({torch.backends.cpu.get_cpu_capability()}) has no native bf16 kernels'
    return None


def native_amp(device: torch.device, amp: Optional[str], warn: Callable[[str], None]) -> Optional[str]:
    """The autocast dtype name to use: ``amp`` itself, :func:`auto_amp` for 'auto', or None
    (float32) for None/'fp32' and where :func:`slow_amp_reason` finds ``amp`` slow on ``device``.

    ``warn`` receives the one-line reason, e.g. "amp bf16 ignored, this CPU (AVX2) has no
    native bf16 kernels: float32 instead"; each caller routes it to its own channel.
    """
    check_amp(amp)
    if amp == 'auto':
        return auto_amp(device)
    if amp in (None, 'fp32', False):
        return None
    reason = slow_amp_reason(device, amp)
    if reason is None:
        return amp
    warn(f'amp {amp} ignored, {reason}: float32 instead')
    return None


def autocast_context(device: torch.device, amp: Optional[str]) -> ContextManager:
    """``torch.autocast`` for amp in {'bf16', 'fp16'} on ``device``; a no-op for None/'fp32'."""
    check_amp(amp)
    if amp in (None, 'fp32', False):
        return nullcontext()
    return torch.autocast(device.type, dtype=AMP_DTYPES[amp])
