"""Replaying `sessions.events` per customer, in partition order, through the contract's state
machine: every event must be a transition the contract allows from the state the earlier ones
left, and every `acceptance_rejected` reason must be true of the session at that point."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from typing import Any

from tests.proof.history import Published, Sent, Violation, distinct

G2 = "G2 at most one active session per customer"
G3 = "G3 a waiting session is cancelled once, at its expiry"
G4 = "G4 a customer's events follow the state machine in order"
ACCEPT = "acceptance reasons true of the session"
ACTIVE = ("waiting", "live")


@dataclass
class SessionState:
    id: str
    status: str
    expires_at: datetime
    mechanic_id: str | None = None


@dataclass
class Replayed:
    """What the replay leaves: each session's last status, and the violations found."""

    sessions: dict[str, SessionState]
    violations: list[Violation]


def _time(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def when_decided(record: Published, inputs: Mapping[tuple[str, str], Sent]) -> datetime:
    """The business time the decision was made at: the input's own `time` when the cause is
    known, else the output's `time` (which the service copies from it)."""
    cause = record.cause
    sent = inputs.get(cause) if cause is not None else None
    if sent is not None and sent.time is not None:
        return sent.time
    return record.time


class _Customer:
    def __init__(self, key: str | None, inputs: Mapping[tuple[str, str], Sent]) -> None:
        self.key = key
        self.inputs = inputs
        self.sessions: dict[str, SessionState] = {}
        self.active: SessionState | None = None
        self.problems: list[tuple[str, str]] = []

    def fail(self, guarantee: str, record: Published, why: str) -> None:
        self.problems.append(
            (guarantee, f"{record.type} {record.id} at offset {record.offset}: {why}")
        )

    def apply(self, record: Published) -> None:
        data = record.data
        session_id = str(data.get("session_id", ""))
        handler = getattr(self, "_" + record.type.removeprefix("session."), None)
        if handler is None:
            self.fail(G4, record, "not a session.* output type")
            return
        handler(record, data, session_id)

    def _created(self, record: Published, data: Mapping[str, Any], session_id: str) -> None:
        if self.active is not None:
            self.fail(G2, record, f"created while {self.active.id} is {self.active.status}")
        if session_id in self.sessions:
            self.fail(G4, record, "the session was created before")
        state = SessionState(session_id, "waiting", _time(data["expires_at"]))
        self.sessions[session_id] = self.active = state

    def _rejected(self, record: Published, data: Mapping[str, Any], _: str) -> None:
        named = str(data.get("active_session_id"))
        if self.active is None:
            self.fail(G2, record, f"rejected naming {named}, but no session is active")
        elif self.active.id != named:
            self.fail(G2, record, f"names {named}, the active one is {self.active.id}")
        elif self.active.status == "waiting" and when_decided(record, self.inputs) >= (
            self.active.expires_at
        ):
            self.fail(G3, record, f"rejected by {named}, which had expired (not purged)")

    def _cancelled(self, record: Published, data: Mapping[str, Any], session_id: str) -> None:
        state = self.sessions.get(session_id)
        if state is None or state.status != "waiting":
            was = state.status if state else "never created"
            self.fail(G3, record, f"cancelled from {was}, not from waiting")
            return
        if _time(data["cancelled_at"]) < state.expires_at:
            self.fail(G3, record, f"cancelled_at before expires_at {state.expires_at}")
        self._close(state, "cancelled")

    def _accepted(self, record: Published, data: Mapping[str, Any], session_id: str) -> None:
        state = self.sessions.get(session_id)
        if state is None or state.status != "waiting":
            was = state.status if state else "never created"
            self.fail(G4, record, f"accepted from {was}, not from waiting")
            return
        at = when_decided(record, self.inputs)
        if at >= state.expires_at:
            self.fail(G4, record, f"accepted at {at}, at or after expires_at {state.expires_at}")
        state.status, state.mechanic_id = "live", str(data.get("mechanic_id"))

    def _completed(self, record: Published, data: Mapping[str, Any], session_id: str) -> None:
        state = self.sessions.get(session_id)
        if state is None or state.status != "live":
            was = state.status if state else "never created"
            self.fail(G4, record, f"completed from {was}, not from live")
            return
        cause = self.inputs.get(record.cause) if record.cause else None
        if data.get("reason") == "ended" and cause is not None and cause.data is not None:
            if str(cause.data.get("session_id")) != session_id:
                self.fail(G4, record, "completed as ended by the end of another session")
        self._close(state, "completed")

    def _acceptance_rejected(
        self, record: Published, data: Mapping[str, Any], session_id: str
    ) -> None:
        reason, state = data.get("reason"), self.sessions.get(session_id)
        at = when_decided(record, self.inputs)
        if state is None:
            if reason != "unknown_session":
                self.fail(ACCEPT, record, f"reason {reason}, but the session is unknown here")
            return
        truth = {
            "unknown_session": False,
            "already_accepted": state.status == "live",
            "completed": state.status == "completed",
            "expired": state.status in ("waiting", "cancelled") and at >= state.expires_at,
            "cancelled": state.status == "cancelled" and at < state.expires_at,
        }
        if not truth.get(str(reason), False):
            self.fail(
                ACCEPT,
                record,
                f"reason {reason}, but at {at} the session was {state.status} "
                f"(expires_at {state.expires_at})",
            )

    def _close(self, state: SessionState, status: str) -> None:
        state.status = status
        if self.active is state:
            self.active = None


def show(records: Iterable[Published]) -> str:
    """A customer's history, one line per event, as a failing check prints it."""
    lines = []
    for r in records:
        about = {k: v for k, v in r.data.items() if k not in ("customer_id",)}
        lines.append(
            f"    p{r.partition}@{r.offset} {r.published_at:%H:%M:%S.%f} {r.type} id={r.id} "
            f"cause={r.causationid} {about}"
        )
    return "\n".join(lines)


def replay(published: list[Published], inputs: Mapping[tuple[str, str], Sent]) -> Replayed:
    """Every customer's distinct events (copies by id dropped) through the state machine."""
    records = sorted(distinct(published), key=lambda r: (r.key or "", r.partition, r.offset))
    sessions: dict[str, SessionState] = {}
    violations: list[Violation] = []
    for key, group in groupby(records, key=lambda r: r.key):
        mine = list(group)
        customer = _Customer(key, inputs)
        partitions = {r.partition for r in mine}
        if len(partitions) > 1:
            customer.problems.append((G4, f"published on partitions {sorted(partitions)}"))
        for record in sorted(mine, key=lambda r: (r.partition, r.offset)):
            customer.apply(record)
        sessions.update(customer.sessions)
        for guarantee, why in customer.problems:
            violations.append(
                Violation(guarantee, f"{why}\n  history of {key}:\n{show(mine)}", customer=key)
            )
    return Replayed(sessions, violations)
