"""Memory allocator settings for full-image inference on the CPU: glibc's, and jemalloc in its place.

PyTorch's CPU tensors come straight from ``malloc``. glibc serves every block above its mmap
threshold (dynamic, never above 32 MiB) with fresh pages from ``mmap``: the kernel zeroes each
4 KiB page on first touch and the block goes back to the OS on ``free``. One float32 feature map
of vHeatIR-S (48 channels) passes 32 MiB from about 420 x 420 pixels on, so above that size every
intermediate of every block paid page faults and zeroing: a 512 x 512 colour forward spent more
than half its time there (``python scripts/bench_speed.py --sections malloc``).

:func:`reuse_freed_memory` raises the threshold so such blocks come from the heap, where freed
blocks are reused, at the price of a higher resident set (freed blocks stay mapped). The command
lines (``inference.py``, ``scripts/benchmark.py``, ``vheatir/train.py``) call it; importing
the library does not, so a host program keeps its own malloc settings.

glibc still places blocks loosely: the first 0.5 MP forward grows its heap to about 1.5 GB for
0.6 GB live at a block's peak, and a new process pays the kernel for every fresh page.
jemalloc packs the same forwards into half the memory. :func:`reexec_under_jemalloc` restarts
``inference.py`` with jemalloc preloaded when the system has it (Debian/Ubuntu: ``apt-get install
libjemalloc2``); ``VHEATIR_ALLOCATOR=system`` keeps the C library's malloc.
"""
import ctypes
import ctypes.util
import os
import sys
from typing import Dict, Mapping, Optional

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
INT_MAX = 2 ** 31 - 1

# Above the largest feature map of the images we restore whole (a 2048^2 map of 48 channels is
# 768 MiB); larger requests (tiles are chosen smaller) still get their own mapping.
REUSE_MMAP_THRESHOLD = 2 ** 30


def _libc() -> Optional[ctypes.CDLL]:
    name = ctypes.util.find_library('c')
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    return libc if hasattr(libc, 'mallopt') else None


def set_mmap_threshold(threshold: int) -> bool:
    """Fix glibc's mmap threshold at ``threshold`` bytes and the heap-trim threshold at twice that.

    Returns False (and changes nothing) where the C library is not glibc or refuses the value.
    """
    libc = _libc()
    if libc is None:
        return False
    ok = libc.mallopt(M_MMAP_THRESHOLD, int(threshold))
    return bool(ok) and bool(libc.mallopt(M_TRIM_THRESHOLD, min(2 * int(threshold), INT_MAX)))


def reuse_freed_memory() -> bool:
    """Let freed blocks of up to :data:`REUSE_MMAP_THRESHOLD` bytes be reused instead of unmapped.

    Returns whether the setting took effect (False on a C library without ``mallopt``).
    """
    return set_mmap_threshold(REUSE_MMAP_THRESHOLD)


def release_free_memory() -> None:
    """Hand free heap memory back to the OS (``malloc_trim(0)``), where glibc is the C library."""
    libc = _libc()
    if libc is not None and hasattr(libc, 'malloc_trim'):
        libc.malloc_trim(0)


ALLOCATOR_ENV = 'VHEATIR_ALLOCATOR'
# Freed pages stay with jemalloc for the next tile or image instead of going back to the kernel,
# which would zero them again on the next touch (the cost glibc's setting above avoids too).
JEMALLOC_CONF = 'dirty_decay_ms:-1,muzzy_decay_ms:-1'


def find_jemalloc() -> Optional[str]:
    """The shared-library name of jemalloc known to the dynamic linker, or None when not installed."""
    return ctypes.util.find_library('jemalloc')


def jemalloc_environment(environ: Mapping[str, str]) -> Optional[Dict[str, str]]:
    """``environ`` with jemalloc added to ``LD_PRELOAD`` (and :data:`JEMALLOC_CONF` unless
    ``MALLOC_CONF`` is set), or None when the process should run as it is: not Linux,
    ``VHEATIR_ALLOCATOR=system``, jemalloc already preloaded, or jemalloc not installed."""
    if not sys.platform.startswith('linux') or environ.get(ALLOCATOR_ENV, '').lower() == 'system':
        return None
    preload = environ.get('LD_PRELOAD', '')
    if 'jemalloc' in preload:   # also stops a second re-execution
        return None
    library = find_jemalloc()
    if library is None:
        return None
    env = dict(environ)
    env['LD_PRELOAD'] = f'{library} {preload}'.strip()
    env.setdefault('MALLOC_CONF', JEMALLOC_CONF)
    return env


def reexec_under_jemalloc() -> None:
    """Replace this process by the same command line with jemalloc preloaded, where
    :func:`jemalloc_environment` allows it; otherwise (or if the exec fails) return and go on.

    Call it first thing in a script's ``__main__`` block, before anything has been written.
    """
    env = jemalloc_environment(os.environ)
    if env is None:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)
    except OSError:
        return
