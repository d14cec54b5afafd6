"""glibc's thresholds fixed at start-up: a large buffer stays mapped, so freeing it returns it."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys

import pytest

from service.bootstrap.allocator import GLIBC_VARIABLES, operator_chose

# Run in a fresh interpreter each time: the thresholds are process-wide and inherited. With
# "skip" as its argument the probe leaves glibc to itself: what the tuning is there to change.
PROBE = """
import ctypes, sys
from service.bootstrap.allocator import return_large_buffers

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
print("skipped" if sys.argv[1:] == ["skip"] else return_large_buffers())
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


glibc_only = pytest.mark.skipif(not _glibc_has_mallinfo2(), reason="needs glibc >= 2.33")


def _probe(*args: str, **variables: str) -> tuple[str, int]:
    env = {k: v for k, v in os.environ.items() if k not in GLIBC_VARIABLES} | variables
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    tuned, mapped = done.stdout.split()
    return tuned, int(mapped)


@glibc_only
def test_a_large_buffer_allocated_after_a_larger_one_was_freed_is_still_mapped() -> None:
    tuned, mapped = _probe()
    assert tuned == "True"
    assert mapped >= 512 << 10


@glibc_only
def test_glibc_left_to_itself_serves_it_from_the_heap_it_keeps() -> None:
    assert _probe("skip") == ("skipped", 0)


@glibc_only
def test_an_operators_own_threshold_is_left_alone() -> None:
    tuned, mapped = _probe(MALLOC_MMAP_THRESHOLD_="131072")
    assert tuned == "False"
    assert mapped >= 512 << 10  # glibc applied the operator's value itself


@glibc_only
def test_a_tunable_about_something_else_still_gets_the_tuning() -> None:
    tuned, mapped = _probe(GLIBC_TUNABLES="glibc.pthread.rseq=0")
    assert tuned == "True"
    assert mapped >= 512 << 10


@pytest.mark.parametrize(
    ("variables", "chose"),
    [
        ({}, False),
        ({"MALLOC_TRIM_THRESHOLD_": "1048576"}, True),
        ({"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=262144"}, True),
        ({"GLIBC_TUNABLES": "glibc.pthread.rseq=0:glibc.malloc.trim_threshold=0"}, True),
        ({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2:glibc.pthread.rseq=0"}, False),
    ],
)
def test_only_a_threshold_the_operator_set_turns_the_tuning_off(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], chose: bool
) -> None:
    for name in GLIBC_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    assert operator_chose() is chose
