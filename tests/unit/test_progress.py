"""Progress on a terminal: done, rate, ETA and the changelog left; nothing when not a terminal."""

from __future__ import annotations

import io

from service.entrypoints.output import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_on_a_terminal_shows_rate_eta_and_the_changelog_left() -> None:
    stream = Terminal()
    progress = Progress("rebuild", 1000, stream=stream)
    progress.started -= 2.0  # two seconds in

    progress.advance(500, lag=40)
    progress.finish()

    first = stream.getvalue().split("\r")[1]
    assert first.startswith("rebuild: 500/1,000  250/s  ETA 2s  changelog lag 40")
    assert stream.getvalue().endswith("\n")


def test_progress_off_a_terminal_writes_nothing() -> None:
    stream = io.StringIO()
    progress = Progress("restore", 10, stream=stream)

    progress.advance(10)
    progress.finish()

    assert stream.getvalue() == ""
