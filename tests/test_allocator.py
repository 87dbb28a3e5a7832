"""Allocator settings: glibc reuses freed large blocks after reuse_freed_memory(); command lines
re-execute themselves under jemalloc where it is installed."""
import ctypes
import ctypes.util
import os
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


# ------------------------------------------------------------------ jemalloc in glibc's place
def test_jemalloc_environment_preloads_the_library_and_keeps_the_users_settings(monkeypatch):
    monkeypatch.setattr(allocator, 'find_jemalloc', lambda: 'libjemalloc.so.2')
    monkeypatch.setattr(allocator.sys, 'platform', 'linux')
    env = allocator.jemalloc_environment({'PATH': '/bin', 'LD_PRELOAD': 'libother.so'})
    assert env['LD_PRELOAD'] == 'libjemalloc.so.2 libother.so' and env['PATH'] == '/bin'
    assert env['MALLOC_CONF'] == allocator.JEMALLOC_CONF
    assert allocator.jemalloc_environment({'MALLOC_CONF': 'narenas:1'})['MALLOC_CONF'] == 'narenas:1'


@pytest.mark.parametrize('environ, found, platform', [
    ({'VHEATIR_ALLOCATOR': 'system'}, 'libjemalloc.so.2', 'linux'),          # opted out
    ({'LD_PRELOAD': '/usr/lib/libjemalloc.so.2'}, 'libjemalloc.so.2', 'linux'),  # already there
    ({}, None, 'linux'),                                                     # not installed
    ({}, 'libjemalloc.2.dylib', 'darwin'),                                   # no LD_PRELOAD there
])
def test_jemalloc_environment_leaves_the_process_alone(monkeypatch, environ, found, platform):
    monkeypatch.setattr(allocator, 'find_jemalloc', lambda: found)
    monkeypatch.setattr(allocator.sys, 'platform', platform)
    assert allocator.jemalloc_environment(environ) is None


# A child that re-executes itself, then reports its arguments, whether jemalloc is mapped into it,
# and what it printed before the re-execution (flushed once, not lost or doubled).
REEXEC = r"""
import os, sys
sys.path.insert(0, sys.argv[1])
from vheatir import allocator
if 'LD_PRELOAD' not in os.environ:
    print('before', flush=False)
allocator.reexec_under_jemalloc()
with open('/proc/self/maps') as maps:
    print('jemalloc' if 'jemalloc' in maps.read() else 'glibc', *sys.argv[2:])
"""


@pytest.mark.skipif(not sys.platform.startswith('linux') or allocator.find_jemalloc() is None,
                    reason='needs Linux with jemalloc installed (apt-get install libjemalloc2)')
@pytest.mark.parametrize('setting, expected', [('', 'jemalloc'), ('system', 'glibc')])
def test_reexec_under_jemalloc_maps_it_into_the_same_command(setting, expected):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {k: v for k, v in os.environ.items() if k not in ('LD_PRELOAD', 'MALLOC_CONF')}
    env['VHEATIR_ALLOCATOR'] = setting
    proc = subprocess.run([sys.executable, '-c', REEXEC, root, 'a b', "it's"], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ['before', f"{expected} a b it's"]
