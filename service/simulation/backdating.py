"""Which simulated payments are backdated, and how far: what makes expiry visible in the first
seconds of a simulation instead of a TTL after its start. Pure: seeded draws of its own, so the
rest of the stream's random sequence is the same with or without it.

- stale: delivered late, already past its TTL; its customer pays nothing more until the sweeper
  (every 10 s by default) has cancelled the session, so it is the sweeper that does.
- expiring: dated so that its session expires a few seconds from now, just when its customer
  pays again; the purge inside that payment's transaction cancels it.
"""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta
from typing import Final, Literal

SHARE: Final = 0.04  # of the payments by customers without a session, for each of the two
SWEEPER_GRACE: Final = timedelta(seconds=20)  # more than a sweep interval

Backdate = Literal["stale", "expiring"]


class Backdating:
    def __init__(self, seed: int, request_ttl: timedelta) -> None:
        self._rng = random.Random(f"{seed}|backdating")
        self._ttl = request_ttl
        self._payments = 0
        self._reserved: dict[uuid.UUID, datetime] = {}

    def choose(self) -> Backdate | None:
        """For a payment by a customer without a session: the first of a run is expiring, the
        second stale, then each with probability SHARE."""
        self._payments += 1
        if self._payments <= 2:
            return "expiring" if self._payments == 1 else "stale"
        roll = self._rng.random()
        return "expiring" if roll < SHARE else "stale" if roll < 2 * SHARE else None

    def stale(self, customer: uuid.UUID, now: datetime) -> datetime:
        """The event time of a stale payment sent `now`; the customer is kept from paying
        again until the sweeper has been."""
        self._reserved[customer] = now + SWEEPER_GRACE
        return now - self._ttl - timedelta(seconds=self._rng.uniform(1, 5))

    def expiring(self) -> timedelta:
        """How soon an expiring payment's session expires (and its customer pays again)."""
        return min(timedelta(seconds=self._rng.uniform(2, 5)), self._ttl / 2)

    def reserved(self, customer: uuid.UUID, now: datetime) -> bool:
        until = self._reserved.get(customer)
        return until is not None and now < until
