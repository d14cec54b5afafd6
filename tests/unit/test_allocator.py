"""glibc's thresholds fixed at start-up: a large buffer stays mapped, so freeing it returns it."""

from __future__ import annotations

import ctypes
import subprocess
import sys

import pytest

# Run in a fresh interpreter each time: the thresholds are process-wide and inherited.
PROBE = """
import ctypes, sys
from service.bootstrap.allocator import return_large_buffers

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
print(return_large_buffers())
big = bytearray(4 << 20)  # mapped; freeing it raises glibc's dynamic threshold to 4 MiB
del big
before = libc.mallinfo2().hblkhd
buffer = bytearray(512 << 10)
print(libc.mallinfo2().hblkhd - before)
"""


def _glibc_has_mallinfo2() -> bool:
    try:
        ctypes.CDLL(None).mallinfo2  # noqa: B018
    except (OSError, AttributeError):
        return False
    return True


pytestmark = pytest.mark.skipif(not _glibc_has_mallinfo2(), reason="needs glibc >= 2.33")


def _probe(env: dict[str, str]) -> tuple[str, int]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
    )
    tuned, mapped = done.stdout.split()
    return tuned, int(mapped)


def test_a_large_buffer_allocated_after_a_larger_one_was_freed_is_still_mapped() -> None:
    tuned, mapped = _probe({"PATH": "/usr/bin:/bin"})
    assert tuned == "True"
    assert mapped >= 512 << 10


def test_glibc_left_to_itself_serves_it_from_the_heap_it_keeps() -> None:
    # What the tuning is for: glibc's default (any of its own variables set turns ours off).
    tuned, mapped = _probe({"PATH": "/usr/bin:/bin", "GLIBC_TUNABLES": "glibc.malloc.check=0"})
    assert tuned == "False"
    assert mapped == 0


def test_an_operators_own_threshold_is_left_alone() -> None:
    tuned, mapped = _probe({"PATH": "/usr/bin:/bin", "MALLOC_MMAP_THRESHOLD_": "131072"})
    assert tuned == "False"
    assert mapped >= 512 << 10  # glibc applied the operator's value itself
