"""glibc malloc settings: freed large blocks are reused after reuse_freed_memory()."""
import ctypes
import ctypes.util
import subprocess
import sys

import pytest

from vheatir import allocator

CHILD = r"""
import ctypes, ctypes.util, sys
from vheatir import allocator
libc = ctypes.CDLL(ctypes.util.find_library('c'))

class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                'arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost'.split()]

libc.mallinfo2.restype = MallInfo2
libc.malloc.restype = ctypes.c_void_p
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


def test_thresholds_beyond_a_c_int_are_clamped_not_wrapped():
    # 2 x 2 GiB would wrap to a negative trim threshold in a C int.
    if allocator._libc() is None:
        pytest.skip('no glibc')
    assert allocator.set_mmap_threshold(2 ** 30)
    assert allocator.set_mmap_threshold(32 * 2 ** 20)   # back to the default ceiling for the other tests
