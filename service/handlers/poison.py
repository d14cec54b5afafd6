"""Containing a poison batch: a batch whose decision fails for a reason that is not an outage.

Tried `FULFILLMENT_POISON_RETRIES` more times with backoff (a flaky dependency deserves a second
chance), the batch is then searched for the event that fails: trial decisions, each rolled back,
of ever shorter prefixes (binary search), find the first event that makes its prefix fail. That
event is marked poison and the search repeats until a trial of the whole batch passes. Then the
batch commits once, in one transaction: every other customer's events decided, the poison
events and their customers' later events parked (service/core/parking.py). Nothing is decided
twice (the trials roll back) and each customer's order holds (parked events keep theirs).

Each search finds at most `MAX_NEW_POISON` events, then backs off and goes on: the cost of a
search stays bounded, and a failure that hits every event (a broken deployment) parks customers
slowly (`fulfillment parked release --all` brings them back once it is fixed). An outage
during the search ends it: the batch is retried as any other.

Policy, not an adapter: it does no I/O of its own. What it needs of the outside world (which
failures are outages, where its retries and findings are reported) the wiring passes in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import schemas
from service.core.batch import BatchResult
from service.core.parking import EventKey, key_of
from service.core.ports import DecideBatch

MAX_REASON_CHARS = 1000
MAX_NEW_POISON = 16

IsOutage = Callable[[BaseException], bool]


class Watch(Protocol):
    """Who hears of a batch's containment (service/observe/poison_watch.py in the service)."""

    def retried(self) -> None:
        """A failing batch is tried again before it is searched."""

    def found(self, key: EventKey, reason: str) -> None:
        """An event is poison: it is parked with its customer when the batch commits."""

    def paused(self, found: int) -> None:
        """A search stopped after `MAX_NEW_POISON` new poison events; the batch still fails."""


@dataclass(frozen=True)
class PoisonPolicy:
    retries: int  # FULFILLMENT_POISON_RETRIES
    is_outage: IsOutage  # the failure classification's outage: retried, never poison
    watch: Watch


class PoisonGuard:
    """One batch's attempts: call it again after each failure (the loop's backoff in between).
    Raises what the decision raises until the retries are spent, then contains the poison."""

    def __init__(
        self,
        decide: DecideBatch,
        policy: PoisonPolicy,
        events: Sequence[schemas.InputEvent],
        traces: Mapping[str, str],
    ) -> None:
        self._decide = decide
        self._policy = policy
        self._events = events
        self._traces = traces
        self._failures = 0
        self.poison: dict[EventKey, str] = {}

    async def __call__(self) -> BatchResult:
        events, traces, policy = self._events, self._traces, self._policy
        try:
            return await self._decide(events, traces=traces, poison=self.poison)
        except Exception as error:
            if policy.is_outage(error):
                raise
            self._failures += 1
            if self._failures <= policy.retries:
                policy.watch.retried()
                raise
        known = set(self.poison)
        try:
            self.poison = await find_poison(
                self._decide, events, self.poison, is_outage=policy.is_outage, traces=traces
            )
        except SearchPaused as paused:
            # Many events failing at once: keep what was found, back off, search on. A batch
            # failing everywhere (a broken deployment) then parks at most MAX_NEW_POISON events'
            # customers per backoff, and a revocation can take the partitions in between.
            self.poison = paused.poison
            policy.watch.paused(len(self.poison))
            raise paused.failure from None
        for key, reason in self.poison.items():
            if key not in known:
                policy.watch.found(key, reason)
        return await self._decide(events, traces=traces, poison=self.poison)


class SearchPaused(Exception):
    """`MAX_NEW_POISON` poison events found in one search; the batch still fails."""

    def __init__(self, poison: dict[EventKey, str], failure: Exception) -> None:
        super().__init__(f"{len(poison)} poison events so far")
        self.poison = poison
        self.failure = failure


async def find_poison(
    decide: DecideBatch,
    events: Sequence[schemas.InputEvent],
    known: Mapping[EventKey, str],
    *,
    is_outage: IsOutage,
    traces: Mapping[str, str] | None = None,
) -> dict[EventKey, str]:
    """The poison events of `events` (with `known` ones), by key, each with its failure.

    Raises the failure itself when parking the poison events does not make the batch pass (the
    parking fails too), SearchPaused after finding `MAX_NEW_POISON` (each costs a binary search
    of trial decisions), and outages (`is_outage`) as they come."""
    poison = dict(known)
    while True:
        failure = await _trial(decide, events, poison, is_outage, traces)
        if failure is None:
            return poison
        if len(poison) - len(known) >= MAX_NEW_POISON:
            raise SearchPaused(poison, failure)
        # events[:passing] decides, events[:failing] does not; the empty prefix decides nothing.
        passing, failing = 0, len(events)
        while failing - passing > 1:
            middle = (passing + failing) // 2
            error = await _trial(decide, events[:middle], poison, is_outage, traces)
            if error is None:
                passing = middle
            else:
                failing, failure = middle, error
        key = key_of(events[failing - 1])
        if key in poison:
            raise failure
        poison[key] = reason_of(failure)


async def _trial(
    decide: DecideBatch,
    events: Sequence[schemas.InputEvent],
    poison: Mapping[EventKey, str],
    is_outage: IsOutage,
    traces: Mapping[str, str] | None,
) -> Exception | None:
    try:
        await decide(events, traces=traces, poison=poison, trial=True)
    except Exception as error:
        if is_outage(error):
            raise
        return error
    return None


def reason_of(error: Exception) -> str:
    text = " ".join(f"{type(error).__name__}: {error}".split())
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 3] + "..."
