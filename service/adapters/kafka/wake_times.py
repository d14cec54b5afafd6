"""The relay's wake-ups, timed: from an outbox commit (this process's, or another's through its
notification) to the leader's send of its rows, as `fulfillment_relay_wake_seconds`."""

from __future__ import annotations

import time

from service.observe import metrics

MAX_PENDING = 10_000  # commit times kept while none is sent


class WakeTimes:
    """Commit times not yet followed by a send, handed to each round in turn."""

    def __init__(self) -> None:
        self._pending: list[float] = []
        self._sent_at = 0.0  # the last send's time

    def committed(self, at: float) -> None:
        if len(self._pending) < MAX_PENDING:
            self._pending.append(at)

    def clear(self) -> None:
        """Another process leads and times them."""
        self._pending.clear()

    def take(self) -> list[float]:
        """Those a round's read, starting now, sees the rows of."""
        taken, self._pending = self._pending, []
        return taken

    def waiting(self, commits: list[float]) -> None:
        """Their rows were read but wait (for a batch's end or a hold's end)."""
        self._pending[:0] = commits

    def sent(self, commits: list[float]) -> None:
        self._sent_at = time.time()
        self._observe(commits, self._sent_at)

    def sent_before(self, commits: list[float]) -> None:
        """Told after a round that began before them had already sent their rows (the store
        tells of a commit once PostgreSQL answers it): their wait ended with that send."""
        self._observe(commits, self._sent_at)

    @staticmethod
    def _observe(commits: list[float], sent: float) -> None:
        for at in commits:
            metrics.relay_wake_seconds.observe(max(0.0, sent - at))
