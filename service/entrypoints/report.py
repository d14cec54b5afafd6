"""What the operator commands print: JSON for machines (`--json`), aligned text for people, and
progress with rate and ETA on stderr when it is a terminal."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

import orjson

# Exit codes shared by the operator commands (the README's Commands table).
OK = 0
FAILED = 1  # a server unreachable, or refused
NOT_FOUND = 3  # nothing matched what was asked for
PARTLY = 4  # done, except what still fails (left where it was)


def emit_json(value: Any, out: TextIO | None = None) -> None:
    out = out or sys.stdout  # read at the call: tests and callers may replace it
    out.write(orjson.dumps(value, option=orjson.OPT_INDENT_2, default=str).decode() + "\n")


def table(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[str], out: TextIO = sys.stdout
) -> None:
    """Rows as aligned columns under a header; None prints as '-'."""
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    for line in [list(columns), *cells]:
        out.write("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() + "\n")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)


class Progress:
    """`done/total, rate/s, ETA` on one rewritten stderr line, only when stderr is a terminal."""

    def __init__(self, what: str, total: int, err: TextIO | None = None) -> None:
        self._what = what
        self._total = total
        self._err = err = err or sys.stderr
        self._shown = err.isatty() and total > 1
        self._started = time.monotonic()
        self.done = 0

    def step(self, count: int = 1) -> None:
        self.done += count
        if not self._shown:
            return
        elapsed = max(time.monotonic() - self._started, 1e-6)
        rate = self.done / elapsed
        left = (self._total - self.done) / rate if rate else 0.0
        self._err.write(
            f"\r{self._what}: {self.done}/{self._total}, {rate:.1f}/s, ETA {left:.0f}s   "
        )
        self._err.flush()

    def finish(self) -> None:
        if self._shown:
            self._err.write("\n")
