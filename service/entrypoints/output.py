"""Everything a command prints, in one place: the exit codes, JSON for machines (`--json`),
aligned text for people, the one error line, and progress with rate and ETA on a terminal."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

import orjson

from service.bootstrap.fixable import print_error

# Exit codes shared by the commands (the README's Commands table).
OK = 0
FAILED = 1  # a server unreachable, or refused
INVALID = 2  # invalid configuration or arguments
NOT_FOUND = 3  # nothing matched what was asked for
PARTLY = 4  # done, except what still fails (left where it was)
INTERRUPTED = 130  # SIGINT

PROGRESS_INTERVAL_SECONDS = 0.5


def error(message: str, *, command: str | None = None) -> None:
    """`fulfillment: message` (or `fulfillment COMMAND: message`) on stderr, one line."""
    print_error(message, command=command)


def emit_json(value: Any, out: TextIO | None = None, *, one_line: bool = False) -> None:
    """Indented, or (`one_line`, rebuild's and restore's summary) on one line."""
    out = out or sys.stdout  # read at the call: tests and callers may replace it
    if one_line:
        out.write(json.dumps(value) + "\n")
        return
    out.write(orjson.dumps(value, option=orjson.OPT_INDENT_2, default=str).decode() + "\n")


def table(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[str], out: TextIO | None = None
) -> None:
    """Rows as aligned columns under a header; None prints as '-'."""
    out = out or sys.stdout
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
    """`done/total  rate/s  ETA` (and the changelog left) on one rewritten stderr line, only
    when stderr is a terminal, so scripts and `--json` get clean output."""

    def __init__(self, what: str, total: int, *, stream: TextIO | None = None) -> None:
        self.what = what
        self.total = total
        self.done = 0
        self.stream = stream or sys.stderr
        self.shown = self.stream.isatty()
        self.started = time.monotonic()
        self._last = 0.0

    def advance(self, count: int = 1, *, lag: int | None = None) -> None:
        self.done += count
        now = time.monotonic()
        if self.shown and now - self._last >= PROGRESS_INTERVAL_SECONDS:
            self._last = now
            self.stream.write("\r" + self.line(now, lag) + "\x1b[K")
            self.stream.flush()

    def line(self, now: float, lag: int | None = None) -> str:
        rate = self.rate(now)
        left = max(0, self.total - self.done)
        eta = "-" if rate <= 0 else _duration(left / rate)
        text = f"{self.what}: {self.done:,}/{self.total:,}  {rate:,.0f}/s  ETA {eta}"
        return text if lag is None else f"{text}  changelog lag {lag:,}"

    def rate(self, now: float | None = None) -> float:
        elapsed = (now or time.monotonic()) - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started

    def finish(self) -> None:
        if self.shown:
            self.stream.write("\r" + self.line(time.monotonic()) + "\x1b[K\n")
            self.stream.flush()


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
