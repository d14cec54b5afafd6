"""A one-line progress report on a terminal (stderr): done, rate, ETA, and what is left of the
changelog. Silent when stderr is not a terminal, so scripts and `--json` get clean output."""

from __future__ import annotations

import sys
import time
from typing import TextIO

INTERVAL_SECONDS = 0.5


class Progress:
    def __init__(self, what: str, total: int, *, stream: TextIO | None = None) -> None:
        self.what = what
        self.total = total
        self.done = 0
        self.stream = stream or sys.stderr
        self.shown = self.stream.isatty()
        self.started = time.monotonic()
        self._last = 0.0

    def advance(self, count: int, *, lag: int | None = None) -> None:
        self.done += count
        now = time.monotonic()
        if self.shown and now - self._last >= INTERVAL_SECONDS:
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
