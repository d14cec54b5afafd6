"""The proof's seeded workload: the realistic mixed stream of `fulfillment simulate`
(service/simulation/stream.py) reshaped as the proof needs it.

- A mechanic app accepts only sessions it has seen created: acceptances (in time, racing, and
  their redeliveries) wait until `session.created` of their session has been read back from
  `sessions.events`; a session seen created already expired (a stale payment's) gets a late
  acceptance. Ends wait until their session was seen accepted (the runtime ends live sessions).
- A share of the valid messages goes in binary content mode (chosen by event id, so a
  redelivery keeps its mode), and a share of broken binary messages (a `ce_id` header missing)
  joins the stream's broken structured ones.
- Poison customers' payments are sent on request (`poison`), for the runner's parking faults.

The shape of the stream is fixed by the seed; what waits for the service depends on its timing.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

import schemas
from schemas.content_modes import binary_from_structured
from service.simulation import stream as sim
from tests.proof.history import Sent

BINARY_SHARE = 0.25
BROKEN_BINARY_SHARE = 0.01
LATE_SHARE = 0.5
GATED = frozenset({sim.Kind.ACCEPTANCE, sim.Kind.SECOND_ACCEPTANCE, sim.Kind.LATE_ACCEPTANCE})


@dataclass(frozen=True)
class Outgoing:
    """A message ready to send, and what the history records of it."""

    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]
    kind: str
    malformed: bool
    event: dict[str, Any] | None  # the structured event, for a valid message

    def sent(self, at: datetime) -> Sent:
        if self.event is None:
            return Sent(self.kind, self.topic, self.value, at, malformed=True)
        return Sent(
            self.kind,
            self.topic,
            self.value,
            at,
            type=self.event["type"],
            source=self.event["source"],
            event_id=self.event["id"],
            time=datetime.fromisoformat(self.event["time"]),
            data=self.event["data"],
        )


@dataclass
class Workload:
    seed: int
    topics: schemas.Topics
    customers: int = 200
    rate: float = 20.0
    held: dict[str, list[sim.Message]] = field(default_factory=dict)  # session id -> waiting
    seen_created: set[str] = field(default_factory=set)
    seen_accepted: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._rng = random.Random(f"{self.seed}|proof")
        self._simulation = sim.Simulation(self.customers, self.seed, topics=self.topics)
        self._ready: list[Outgoing] = []

    def stream(self, start: datetime) -> Iterator[Outgoing]:
        """The endless stream, one message per 1/rate s of event time, plus what was released
        since (sent as soon as it is due)."""
        for message in self._simulation.messages(start, rate=self.rate):
            while self._ready:
                yield self._ready.pop(0)
            if self._rng.random() < BROKEN_BINARY_SHARE:
                yield self._broken_binary(message)
            session = _session_of(message)
            gate = self._gate(message, session)
            if gate is not None:
                self.held.setdefault(gate, []).append(message)
                continue
            yield self._outgoing(message)

    def _gate(self, message: sim.Message, session: str | None) -> str | None:
        """The key the message waits under, if it must wait: `created:<session>` or
        `accepted:<session>`."""
        if session is None or not message.valid:
            return None
        if message.topic == self.topics.mechanics_accepted and session not in self.seen_created:
            return f"created:{session}"
        if message.topic == self.topics.sessions_ended and session not in self.seen_accepted:
            return f"accepted:{session}"
        return None

    def saw(self, record_value: bytes, now: datetime) -> None:
        """An event read back from `sessions.events`: releases what waited for it."""
        event = orjson.loads(record_value)
        data, type_ = event.get("data", {}), event.get("type")
        session = str(data.get("session_id"))
        if type_ == schemas.SESSION_CREATED and session not in self.seen_created:
            self.seen_created.add(session)
            self._release(f"created:{session}")
            expires = datetime.fromisoformat(data["expires_at"])
            if expires <= now and self._rng.random() < LATE_SHARE:
                self._ready.append(self._late_acceptance(uuid.UUID(session), now))
        elif type_ == schemas.SESSION_ACCEPTED and session not in self.seen_accepted:
            self.seen_accepted.add(session)
            self._release(f"accepted:{session}")

    def payments(
        self, customer: uuid.UUID, n: int, now: datetime, kind: str = "poison_payment"
    ) -> list[Outgoing]:
        """`n` payments of one customer at once: a poison customer's, or the runner's probes."""
        made = []
        for _ in range(n):
            data = {
                "payment_id": f"pi_{kind}_{customer.hex[:8]}_{self._rng.getrandbits(48):012x}",
                "customer_id": str(customer),
                "amount_cents": 2999,
                "currency": "USD",
                "session_type": "video",
            }
            value = sim.event(
                schemas.PAYMENT_COMPLETED,
                data,
                id=str(uuid.UUID(int=self._rng.getrandbits(128), version=4)),
                source=sim.PAYMENT_SOURCE,
                time=now,
            )
            message = sim.Message(
                self.topics.payments_completed, str(customer).encode(), value, now, sim.Kind.PAYMENT
            )
            made.append(replace_kind(self._outgoing(message), kind))
        return made

    def _release(self, gate: str) -> None:
        for message in self.held.pop(gate, []):
            self._ready.append(self._outgoing(message))

    def _late_acceptance(self, session: uuid.UUID, now: datetime) -> Outgoing:
        mechanic = uuid.UUID(int=self._rng.getrandbits(128), version=4)
        data = {"session_id": str(session), "mechanic_id": str(mechanic)}
        value = sim.event(
            schemas.MECHANIC_ACCEPTED,
            data,
            id=str(uuid.UUID(int=self._rng.getrandbits(128), version=4)),
            source=sim.MECHANIC_SOURCE,
            time=now,
        )
        message = sim.Message(
            self.topics.mechanics_accepted, str(session).encode(), value, now, sim.Kind.ACCEPTANCE
        )
        return replace_kind(self._outgoing(message), sim.Kind.LATE_ACCEPTANCE.value)

    def _outgoing(self, message: sim.Message) -> Outgoing:
        if not message.valid:
            return Outgoing(
                message.topic,
                message.key,
                message.value,
                list(message.headers),
                message.kind.value,
                True,
                None,
            )
        event = orjson.loads(message.value)
        headers, value = list(message.headers), message.value
        if _share(event["id"]) < BINARY_SHARE:
            headers, value = binary_from_structured(message.value)
        return Outgoing(
            message.topic, message.key, value, headers, message.kind.value, False, event
        )

    def _broken_binary(self, message: sim.Message) -> Outgoing:
        """A payment in binary mode without its `ce_id` header: dead-lettered as invalid."""
        customer = str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
        data: dict[str, Any] = {
            "payment_id": f"pi_broken_{self._rng.getrandbits(64):016x}",
            "customer_id": customer,
            "amount_cents": 100,
            "currency": "USD",
            "session_type": "chat",
        }
        value = sim.event(
            schemas.PAYMENT_COMPLETED, data, id="x", source=sim.PAYMENT_SOURCE, time=message.time
        )
        headers, body = binary_from_structured(value)
        headers = [(k, v) for k, v in headers if k != "ce_id"]
        return Outgoing(
            self.topics.payments_completed,
            customer.encode(),
            body,
            headers,
            "broken_binary",
            True,
            None,
        )


def replace_kind(outgoing: Outgoing, kind: str) -> Outgoing:
    return Outgoing(
        outgoing.topic,
        outgoing.key,
        outgoing.value,
        outgoing.headers,
        kind,
        outgoing.malformed,
        outgoing.event,
    )


def _session_of(message: sim.Message) -> str | None:
    if message.kind in GATED or message.kind is sim.Kind.ENDED:
        return message.key.decode() if message.key else None
    if message.kind is sim.Kind.REDELIVERY and message.valid:
        event = orjson.loads(message.value)
        session = event.get("data", {}).get("session_id")
        return str(session) if session else None
    return None


def _share(event_id: str) -> float:
    """A fraction in [0, 1) fixed by the event id."""
    return int.from_bytes(hashlib.sha256(event_id.encode()).digest()[:4], "big") / 2**32
