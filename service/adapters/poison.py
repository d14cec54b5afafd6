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
during the search (TRANSIENT) ends it: the batch is retried as any other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import structlog

import schemas
from service.adapters.failures import TRANSIENT
from service.core.batch import BatchResult
from service.core.parking import EventKey, key_of
from service.core.ports import DecideBatch
from service.observe import metrics

log = structlog.get_logger("service.poison")

MAX_REASON_CHARS = 1000
MAX_NEW_POISON = 16


class PoisonGuard:
    """One batch's attempts: call it again after each failure (the loop's backoff in between).
    Raises what the decision raises until the retries are spent, then contains the poison."""

    def __init__(self, decide: DecideBatch, *, retries: int) -> None:
        self._decide = decide
        self._retries = retries
        self._failures = 0
        self.poison: dict[EventKey, str] = {}

    async def __call__(self, events: Sequence[schemas.InputEvent]) -> BatchResult:
        try:
            return await self._decide(events, poison=self.poison)
        except TRANSIENT:
            raise
        except Exception:
            self._failures += 1
            if self._failures <= self._retries:
                metrics.poison_retries.inc()
                raise
        known = set(self.poison)
        try:
            self.poison = await find_poison(self._decide, events, self.poison)
        except SearchPaused as paused:
            # Many events failing at once: keep what was found, back off, search on. A batch
            # failing everywhere (a broken deployment) then parks at most MAX_NEW_POISON events'
            # customers per backoff, and a revocation can take the partitions in between.
            self.poison = paused.poison
            log.error("poison_search_paused", found=len(self.poison))
            raise paused.failure from None
        for (source, event_id), reason in self.poison.items():
            if (source, event_id) not in known:
                log.error("poison_parked", source=source, event_id=event_id, reason=reason)
        return await self._decide(events, poison=self.poison)


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
) -> dict[EventKey, str]:
    """The poison events of `events` (with `known` ones), by key, each with its failure.

    Raises the failure itself when parking the poison events does not make the batch pass (the
    parking fails too), SearchPaused after finding `MAX_NEW_POISON` (each costs a binary search
    of trial decisions), and TRANSIENT errors as they come."""
    poison = dict(known)
    while True:
        failure = await _trial(decide, events, poison)
        if failure is None:
            return poison
        if len(poison) - len(known) >= MAX_NEW_POISON:
            raise SearchPaused(poison, failure)
        # events[:passing] decides, events[:failing] does not; the empty prefix decides nothing.
        passing, failing = 0, len(events)
        while failing - passing > 1:
            middle = (passing + failing) // 2
            error = await _trial(decide, events[:middle], poison)
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
) -> Exception | None:
    try:
        await decide(events, poison=poison, trial=True)
    except TRANSIENT:
        raise
    except Exception as error:
        return error
    return None


def reason_of(error: Exception) -> str:
    text = " ".join(f"{type(error).__name__}: {error}".split())
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 3] + "..."
