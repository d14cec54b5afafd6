"""glibc's allocator, told to give large buffers back to the system once they are freed.

A batch passes through a few large buffers (a fetch response, a COPY's data, the relay's page,
its record batches), each allocated and freed once per batch. By default glibc serves a block
of 128 KiB or more with its own mapping, but the first time such a block is freed it raises that
threshold to the block's size (up to 32 MiB), so from then on these buffers come from the heap,
whose freed space stays with the process. Fixing the thresholds keeps them mapped and returned on
free. Peak RSS of both instances draining 200,000 payments
(`python -m bench.throughput --n 200000 --mixed-n 0 --skip-references`): 200 to 204 MiB without
(three runs), 193 to 195 with the same thresholds set through glibc's variables, 188 to 191 with
this function (three runs each, the code otherwise the same).

Only glibc has `mallopt`; elsewhere, or where the operator set either threshold through glibc's
own variables, nothing changes.
"""

from __future__ import annotations

import ctypes
import os
from typing import Final

# From glibc's <malloc.h>.
M_TRIM_THRESHOLD: Final = -1
M_MMAP_THRESHOLD: Final = -3
MMAP_THRESHOLD: Final = 128 * 1024  # glibc's own starting value, kept instead of raised
TRIM_THRESHOLD: Final = 256 * 1024
# glibc reads these at start-up; an operator who set one of the two thresholds has chosen.
OPERATOR_VARIABLES: Final = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")
OPERATOR_TUNABLES: Final = frozenset({"glibc.malloc.mmap_threshold", "glibc.malloc.trim_threshold"})
# Every variable through which the environment can decide for us (tests run without them).
GLIBC_VARIABLES: Final = (*OPERATOR_VARIABLES, "GLIBC_TUNABLES")


def operator_chose() -> bool:
    """Whether the environment sets either threshold itself (glibc's variables, or its
    tunables: `GLIBC_TUNABLES=name=value:name=value`, any other tunable leaves them to us)."""
    if any(name in os.environ for name in OPERATOR_VARIABLES):
        return True
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    return any(item.partition("=")[0] in OPERATOR_TUNABLES for item in tunables.split(":"))


def return_large_buffers() -> bool:
    """Fix glibc's mmap and trim thresholds; True when they were set (the `started` line says
    which). Inherited by forks; calling it again changes nothing."""
    if operator_chose():
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to tune
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success.
    return bool(
        mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
