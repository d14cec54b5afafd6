"""W3C Trace Context (https://www.w3.org/TR/trace-context/): which `traceparent` values are
valid, and the trace id in one. A value that is not valid is ignored, as the recommendation asks
of a receiver: a bad trace header never makes an event bad."""

from __future__ import annotations

import re

HEADER = "traceparent"

# version "-" trace-id "-" parent-id "-" trace-flags; a later version may append "-" fields.
_FORMAT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")
_ZERO_TRACE = "0" * 32
_ZERO_PARENT = "0" * 16


def parse(value: str) -> str | None:
    """`value` if it is a valid traceparent, else None."""
    match = _FORMAT.fullmatch(value)
    if match is None:
        return None
    version, trace, parent, _, rest = match.groups()
    if version == "ff" or (version == "00" and rest is not None):
        return None
    if trace == _ZERO_TRACE or parent == _ZERO_PARENT:
        return None
    return value


def trace_id(traceparent: str) -> str:
    """The 32-hex-digit trace id of a valid traceparent."""
    return traceparent[3:35]
