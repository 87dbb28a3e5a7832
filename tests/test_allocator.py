"""glibc malloc settings: freed large blocks are reused after reuse_freed_memory()."""
import ctypes
import ctypes.util
import subprocess
import sys

import pytest

from vheatir import allocator

# A child process reading glibc's counters (mallinfo2) through ctypes.
MALLINFO = r"""
import ctypes, ctypes.util, sys
from vheatir import allocator
libc = ctypes.CDLL(ctypes.util.find_library('c'))

class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                'arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost'.split()]

libc.mallinfo2.restype = MallInfo2
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
"""

CHILD = MALLINFO + r"""
if sys.argv[1] == 'reuse':
    assert allocator.reuse_freed_memory()
else:
    assert allocator.set_mmap_threshold(32 * 2 ** 20)
before = libc.mallinfo2().hblkhd   # bytes held in separate mmap'd blocks
block = libc.malloc(100 * 2 ** 20)   # a 100 MiB feature map
print((libc.mallinfo2().hblkhd - before) // 2 ** 20)
"""


def _glibc_with_mallinfo2() -> bool:
    name = ctypes.util.find_library('c')
    try:
        return hasattr(ctypes.CDLL(name), 'mallinfo2')
    except OSError:
        return False


@pytest.mark.skipif(not _glibc_with_mallinfo2(), reason='needs glibc >= 2.33 (mallinfo2)')
@pytest.mark.parametrize('setting, mmapped_mib', [('glibc', 100), ('reuse', 0)])
def test_large_blocks_come_from_the_heap_only_after_reuse_freed_memory(setting, mmapped_mib):
    out = subprocess.run([sys.executable, '-c', CHILD, setting], capture_output=True, text=True, check=True)
    assert int(out.stdout.split()[-1]) == mmapped_mib


TRIM_CHILD = MALLINFO + r"""
assert allocator.set_mmap_threshold(2 ** 30)   # trim threshold 2 x 1 GiB: beyond a C int
for gib in (1.8, 2.2):
    # Four blocks below the mmap threshold come from the heap; untouched, they cost no RAM.
    blocks = [libc.malloc(int(gib * 2 ** 30 / 4)) for _ in range(4)]
    assert all(blocks)
    grown = libc.mallinfo2().arena
    for b in reversed(blocks):
        libc.free(b)
    print(grown // 2 ** 20, libc.mallinfo2().arena // 2 ** 20)
"""


@pytest.mark.skipif(not _glibc_with_mallinfo2(), reason='needs glibc >= 2.33 (mallinfo2)')
def test_thresholds_beyond_a_c_int_are_clamped_not_wrapped():
    # Freed memory at the top of the heap goes back to the OS once it exceeds the trim threshold.
    # Clamped to INT_MAX (2 GiB - 1 byte), 1.8 GiB freed is kept and 2.2 GiB is trimmed; wrapped to a
    # negative int (read as a huge size_t) nothing would ever be trimmed.
    out = subprocess.run([sys.executable, '-c', TRIM_CHILD], capture_output=True, text=True, check=True)
    (grown_18, after_18), (grown_22, after_22) = [map(int, line.split()) for line in out.stdout.split('\n')[:2]]
    assert grown_18 >= 1800 and after_18 == grown_18          # below the threshold: kept
    assert grown_22 >= 2200 and after_22 < 1024               # above it: handed back
