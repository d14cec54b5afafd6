"""A realistic mixed input stream as plain data: what `fulfillment simulate` sends and the
benchmark replays. Pure: seeded randomness, times derived from the start passed in, no I/O.

The stream is a small discrete-event simulation. Every message takes the next slot of a clock
that advances by 1/rate; follow-ups (an acceptance, a session's end, a redelivery) are scheduled
for a later instant and take the first free slot at or after it, stamped with that slot's time,
so event times never go backwards except in redeliveries (the original bytes) and backdated
payments (`backdating`), which show expiry at once: past its TTL for the sweeper
(`STALE_PAYMENT`), or expiring as its customer pays again, for the purge (`EXPIRING_PAYMENT`).
"""

from __future__ import annotations

import heapq
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from functools import partial
from itertools import count
from typing import Any, Final

import orjson

import schemas
from service.simulation.backdating import Backdating

HEADERS: Final = (("content-type", schemas.CLOUDEVENTS_CONTENT_TYPE.encode()),)
PAYMENT_SOURCE: Final = "payment-pipeline"
MECHANIC_SOURCE: Final = "mechanic-app"
RUNTIME_SOURCE: Final = "session-runtime"
PRICES: Final = {"chat": 1499, "video": 2999, "diagnostic": 4999}
# One broken field each, as a buggy producer might send them.
FLAWS: Final[dict[str, object]] = {"amount_cents": -500, "currency": "usd", "customer_id": "cus_42"}


class Kind(StrEnum):
    """Why the generator sent a message; the service never sees this."""

    PAYMENT = "payment"
    PAYMENT_RETRY = "payment_retry"  # the same payment_id under a new event id
    REDELIVERY = "redelivery"  # an earlier message again, byte for byte (same event id)
    ACCEPTANCE = "acceptance"  # a mechanic, within the TTL
    SECOND_ACCEPTANCE = "second_acceptance"  # another mechanic, moments after the first
    LATE_ACCEPTANCE = "late_acceptance"  # at or after expires_at
    UNKNOWN_ACCEPTANCE = "unknown_acceptance"  # a session id nobody paid for
    ENDED = "ended"
    STALE_PAYMENT = "stale_payment"  # dated past its TTL: the sweeper cancels its session
    EXPIRING_PAYMENT = "expiring_payment"  # its session expires as the customer pays again
    NOT_JSON = "not_json"
    BAD_FIELD = "bad_field"


MALFORMED: Final = frozenset({Kind.NOT_JSON, Kind.BAD_FIELD})
BACKDATED: Final = frozenset({Kind.STALE_PAYMENT, Kind.EXPIRING_PAYMENT})
# Who is expected to cancel the session of each backdated kind.
CANCELLED_BY: Final = {Kind.STALE_PAYMENT: "sweeper", Kind.EXPIRING_PAYMENT: "purge"}


@dataclass(frozen=True, slots=True)
class Message:
    """One Kafka message; `time` is the event's own `time`: the slot it was stamped with, or
    earlier for a backdated payment."""

    topic: str
    key: bytes | None
    value: bytes
    time: datetime
    kind: Kind
    headers: tuple[tuple[str, bytes], ...] = HEADERS

    @property
    def valid(self) -> bool:
        return self.kind not in MALFORMED


def event(type_: str, data: dict[str, Any], *, id: str, source: str, time: datetime) -> bytes:
    """A structured-mode CloudEvent, as the producers upstream of the service write them."""
    return orjson.dumps(
        {
            "specversion": "1.0",
            "id": id,
            "source": source,
            "type": type_,
            "time": schemas.rfc3339_utc(time),
            "datacontenttype": "application/json",
            "data": data,
        }
    )


def random_uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


# A follow-up: builds its message when its slot comes, stamped with that slot's time.
Make = Callable[[datetime], Message]


class Simulation:
    """Customers paying, mechanics accepting (on time, late, two at once), sessions ending,
    producers retrying, and a few broken messages.

    `seed` fixes the shape of the stream (who does what, when); `salt` changes every id without
    changing that shape, so a repeated run against the same database is not one big duplicate.
    """

    def __init__(
        self,
        customers: int,
        seed: int | None = None,
        *,
        topics: schemas.Topics = schemas.DEFAULT_TOPICS,
        request_ttl: timedelta = timedelta(minutes=15),
        max_live: timedelta = timedelta(hours=4),
        salt: str = "",
    ) -> None:
        if customers < 1:
            raise ValueError(f"need at least one customer, got {customers}")
        self.customers = customers
        # Without a seed, draw one, so that a run can still be told how to repeat itself.
        self.seed = seed if seed is not None else random.randrange(2**32)
        self.topics = topics
        self.request_ttl = request_ttl
        self.max_live = max_live
        self.salt = salt

    def messages(self, start: datetime, *, rate: float = 20.0) -> Iterator[Message]:
        """The endless stream, one message per 1/`rate` seconds of event time from `start`;
        each call starts the same stream afresh."""
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        run = _Run(self)
        for slot in count():
            yield run.next(start + timedelta(seconds=slot / rate))


class _Run:
    """The state of one pass over the stream: the schedule and what the customers are doing."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.topics = sim.topics
        self.rng = random.Random(sim.seed)
        self.ids = random.Random(f"{sim.seed}|{sim.salt}")
        self.customers = [random_uuid(self.ids) for _ in range(sim.customers)]
        self.mechanics = [random_uuid(self.ids) for _ in range(max(3, sim.customers // 3))]
        self.due: list[tuple[datetime, int, Make]] = []  # a heap; the int breaks ties in order
        self.seq = count()
        # When each customer's current session is expected to stop being active (no longer
        # waiting or live); a payment before then is expected to be rejected.
        self.busy_until: dict[uuid.UUID, datetime] = {}
        self.backdating = Backdating(sim.seed, sim.request_ttl)

    def next(self, now: datetime) -> Message:
        if self.due and self.due[0][0] <= now:
            return heapq.heappop(self.due)[2](now)
        roll = self.rng.random()
        if roll < 0.01:
            return self.not_json(now)
        if roll < 0.02:
            return self.bad_field(now)
        if roll < 0.04:
            return self.acceptance(
                random_uuid(self.ids), self.mechanic(), Kind.UNKNOWN_ACCEPTANCE, now
            )
        return self.payment(now)

    def at(self, when: datetime, make: Make) -> None:
        heapq.heappush(self.due, (when, next(self.seq), make))

    def seconds(self, low: float, high: float) -> timedelta:
        return timedelta(seconds=self.rng.uniform(low, high))

    def new_id(self) -> str:
        return str(random_uuid(self.ids))

    def payment(self, now: datetime) -> Message:
        customer = self.pick_customer(now)
        data = self.payment_data(customer)
        if now >= self.busy_until.get(customer, now):
            backdate = self.backdating.choose()
            if backdate is not None:
                return (self.expiring if backdate == "expiring" else self.stale)(
                    customer, data, now
                )
        message = self.paid(data, Kind.PAYMENT, now)
        if now >= self.busy_until.get(customer, now):
            self.plan_session(customer, schemas.session_id_for_payment(data["payment_id"]), now)
        if self.rng.random() < 0.03:
            # The payment pipeline retried with a fresh event id: one payment all the same.
            self.at(now + self.seconds(0.5, 5), partial(self.paid, data, Kind.PAYMENT_RETRY))
        return self.maybe_redeliver(message, now)

    def stale(self, customer: uuid.UUID, data: dict[str, Any], now: datetime) -> Message:
        self.busy_until[customer] = now
        return self.paid(data, Kind.STALE_PAYMENT, self.backdating.stale(customer, now))

    def expiring(self, customer: uuid.UUID, data: dict[str, Any], now: datetime) -> Message:
        lead = self.backdating.expiring()
        self.busy_until[customer] = datetime.max.replace(tzinfo=now.tzinfo)
        self.at(now + lead, partial(self.paid_again, customer))
        return self.paid(data, Kind.EXPIRING_PAYMENT, now + lead - self.sim.request_ttl)

    def paid_again(self, customer: uuid.UUID, now: datetime) -> Message:
        data = self.payment_data(customer)
        self.plan_session(customer, schemas.session_id_for_payment(data["payment_id"]), now)
        return self.paid(data, Kind.PAYMENT, now)

    def pick_customer(self, now: datetime) -> uuid.UUID:
        # Mostly customers without a session pay; the busier everyone is, the more often one
        # pays again while a session is still active (and is rejected).
        for _ in range(3):
            customer = self.rng.choice(self.customers)
            if now >= self.busy_until.get(customer, now) and not self.backdating.reserved(
                customer, now
            ):
                return customer
        for _ in range(10):  # a stale payment's customer waits for the sweeper, if others can pay
            if not self.backdating.reserved(customer := self.rng.choice(self.customers), now):
                break
        return customer

    def payment_data(self, customer: uuid.UUID) -> dict[str, Any]:
        session_type = self.rng.choice(tuple(PRICES))
        return {
            "payment_id": f"pi_{self.ids.getrandbits(96):024x}",
            "customer_id": str(customer),
            "amount_cents": PRICES[session_type],
            "currency": self.rng.choice(("USD", "USD", "USD", "EUR")),
            "session_type": session_type,
        }

    def paid(self, data: dict[str, Any], kind: Kind, now: datetime) -> Message:
        value = event(
            schemas.PAYMENT_COMPLETED, data, id=self.new_id(), source=PAYMENT_SOURCE, time=now
        )
        key = str(data["customer_id"]).encode()
        return Message(self.topics.payments_completed, key, value, now, kind)

    def plan_session(self, customer: uuid.UUID, session_id: uuid.UUID, now: datetime) -> None:
        """What happens to a session this payment is expected to create."""
        ttl, rng = self.sim.request_ttl, self.rng
        expires = now + ttl
        self.busy_until[customer] = expires
        roll = rng.random()
        if roll < 0.9:
            delay = self.seconds(1, 8)
            if delay >= ttl:
                delay = ttl * rng.uniform(0.1, 0.8)
            accepted = now + delay
            first = self.mechanic()
            self.at(accepted, partial(self.acceptance, session_id, first, Kind.ACCEPTANCE))
            if rng.random() < 0.15:
                second = accepted + self.seconds(0.1, 3)
                other = self.mechanic(other_than=first)
                self.at(second, partial(self.acceptance, session_id, other, Kind.SECOND_ACCEPTANCE))
            if rng.random() < 0.97:
                # Busy until the end is actually sent: it may take a later slot than planned.
                self.busy_until[customer] = datetime.max.replace(tzinfo=now.tzinfo)
                ends = accepted + self.seconds(2, 15)
                self.at(ends, partial(self.ended, customer, session_id))
            else:
                self.busy_until[customer] = accepted + self.sim.max_live
        elif roll < 0.95:
            late = expires + self.seconds(0, 30)
            mechanic = self.mechanic()
            self.at(late, partial(self.acceptance, session_id, mechanic, Kind.LATE_ACCEPTANCE))
        # Otherwise nobody accepts it: the sweeper, or the customer's next payment, cancels it.

    def mechanic(self, *, other_than: uuid.UUID | None = None) -> uuid.UUID:
        while (chosen := self.rng.choice(self.mechanics)) == other_than:
            pass
        return chosen

    def acceptance(
        self, session_id: uuid.UUID, mechanic: uuid.UUID, kind: Kind, now: datetime
    ) -> Message:
        data = {"session_id": str(session_id), "mechanic_id": str(mechanic)}
        value = event(
            schemas.MECHANIC_ACCEPTED, data, id=self.new_id(), source=MECHANIC_SOURCE, time=now
        )
        key = str(session_id).encode()
        return self.maybe_redeliver(
            Message(self.topics.mechanics_accepted, key, value, now, kind), now
        )

    def ended(self, customer: uuid.UUID, session_id: uuid.UUID, now: datetime) -> Message:
        self.busy_until[customer] = now
        data = {"session_id": str(session_id)}
        value = event(
            schemas.SESSION_ENDED, data, id=self.new_id(), source=RUNTIME_SOURCE, time=now
        )
        key = str(session_id).encode()
        return self.maybe_redeliver(
            Message(self.topics.sessions_ended, key, value, now, Kind.ENDED), now
        )

    def maybe_redeliver(self, message: Message, now: datetime) -> Message:
        # At-least-once upstream: a producer retry sends the very same bytes again.
        if self.rng.random() < 0.04:
            again = replace(message, kind=Kind.REDELIVERY)
            self.at(now + self.seconds(0.2, 5), partial(_unchanged, again))
        return message

    def not_json(self, now: datetime) -> Message:
        key = str(self.rng.choice(self.customers)).encode()
        value = b'{"specversion": "1.0", "id": "' + self.new_id().encode() + b'", "da'
        return Message(self.topics.payments_completed, key, value, now, Kind.NOT_JSON)

    def bad_field(self, now: datetime) -> Message:
        data = self.payment_data(self.rng.choice(self.customers))
        flaw = self.rng.choice(tuple(FLAWS))
        return self.paid(data | {flaw: FLAWS[flaw]}, Kind.BAD_FIELD, now)


def _unchanged(message: Message, _now: datetime) -> Message:
    return message
