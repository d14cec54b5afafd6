"""Consistent histories made by hand: a tiny model of the service that records what it was sent,
what it published and the rows it left, so a test can break one thing and see the checker fire."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.proof.history import Database, History, Letter, Published, Sent

T0 = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
TTL = timedelta(minutes=15)
SWEEP = timedelta(seconds=10)


class Story:
    def __init__(self, partitions: int = 3) -> None:
        self.partitions = partitions
        self.sent: list[Sent] = []
        self.published: list[Published] = []
        self.letters: list[Letter] = []
        self.sessions: dict[str, dict[str, Any]] = {}
        self.payments: dict[str, dict[str, Any]] = {}
        self.active: dict[str, str] = {}  # customer -> session id
        self.processed: set[tuple[str, str]] = set()
        self.offsets = [0] * partitions
        self.clock = T0
        self.ids = 0

    def tick(self, seconds: float = 1.0) -> datetime:
        self.clock += timedelta(seconds=seconds)
        return self.clock

    def _id(self) -> str:
        self.ids += 1
        return str(uuid.UUID(int=self.ids))

    def send(self, kind: str, type_: str, data: dict[str, Any], at: datetime) -> Sent:
        sent = Sent(
            kind,
            type_.split(".")[0],
            f"{type_}{data}{self.ids}".encode(),
            self.tick(),
            type=type_,
            source="tests",
            event_id=self._id(),
            time=at,
            data=data,
        )
        self.sent.append(sent)
        self.processed.add(("tests", str(sent.event_id)))
        return sent

    def publish(
        self,
        key: str,
        type_: str,
        data: dict[str, Any],
        cause: Sent | None,
        time: datetime,
        causation: str | None = None,
    ) -> Published:
        partition = int(uuid.UUID(key)) % self.partitions
        record = Published(
            partition,
            self.offsets[partition],
            key,
            f"{type_}|{data}".encode(),
            self._id(),
            type_,
            time,
            self.tick(0.1),
            causation or (cause.event_id if cause else None),
            cause.source if cause else "session-fulfillment",
            data,
        )
        self.offsets[partition] += 1
        self.published.append(record)
        return record

    def pay(self, customer: str, payment_id: str, at: datetime | None = None) -> Published:
        at = at or self.clock
        sent = self.send(
            "payment", "payment.completed", {"payment_id": payment_id, "customer_id": customer}, at
        )
        active = self.active.get(customer)
        if (
            active is not None
            and self.sessions[active]["status"] == "waiting"
            and (self.sessions[active]["expires_at"] <= at)
        ):
            self.expire(active)
            active = None
        if active is not None:
            self.payments[payment_id] = {
                "payment_id": payment_id,
                "outcome": "rejected",
                "session_id": active,
            }
            return self.publish(
                customer,
                "session.rejected",
                {
                    "payment_id": payment_id,
                    "customer_id": customer,
                    "active_session_id": active,
                },
                sent,
                at,
            )
        session_id = str(uuid.uuid5(uuid.NAMESPACE_URL, payment_id))
        self.sessions[session_id] = {
            "id": session_id,
            "customer_id": customer,
            "payment_id": payment_id,
            "status": "waiting",
            "expires_at": at + TTL,
            "mechanic_id": None,
            "accepted_at": None,
            "closed_at": None,
        }
        self.payments[payment_id] = {
            "payment_id": payment_id,
            "outcome": "created",
            "session_id": session_id,
        }
        self.active[customer] = session_id
        return self.publish(
            customer,
            "session.created",
            {
                "session_id": session_id,
                "customer_id": customer,
                "payment_id": payment_id,
                "created_at": at,
                "expires_at": at + TTL,
            },
            sent,
            at,
        )

    def accept(self, session_id: str, at: datetime | None = None) -> Published:
        at = at or self.clock
        mechanic = self._id()
        sent = self.send(
            "acceptance",
            "mechanic.accepted",
            {"session_id": session_id, "mechanic_id": mechanic},
            at,
        )
        row = self.sessions.get(session_id)
        data: dict[str, Any] = {"session_id": session_id, "mechanic_id": mechanic}
        if row is None:
            return self.publish(
                session_id,
                "session.acceptance_rejected",
                data | {"reason": "unknown_session"},
                sent,
                at,
            )
        status = row["status"]
        reason = {"live": "already_accepted", "completed": "completed"}.get(status)
        if reason is None and at >= row["expires_at"]:
            reason = "expired"
        elif reason is None and status == "cancelled":
            reason = "cancelled"
        customer = row["customer_id"]
        if reason is not None:
            return self.publish(
                customer, "session.acceptance_rejected", data | {"reason": reason}, sent, at
            )
        row.update(status="live", mechanic_id=mechanic, accepted_at=at)
        return self.publish(
            customer,
            "session.accepted",
            data | {"customer_id": customer, "accepted_at": at},
            sent,
            at,
        )

    def end(self, session_id: str) -> Published | None:
        sent = self.send("ended", "session.ended", {"session_id": session_id}, self.clock)
        row = self.sessions[session_id]
        if row["status"] != "live":
            return None
        return self._close(row, "completed", sent, {"reason": "ended", "completed_at": self.clock})

    def expire(self, session_id: str) -> Published:
        row = self.sessions[session_id]
        created = next(p for p in self.published if p.data.get("session_id") == session_id)
        self.clock = max(self.clock, row["expires_at"])
        return self._close(
            row,
            "cancelled",
            None,
            {
                "payment_id": row["payment_id"],
                "reason": "expired",
                "cancelled_at": row["expires_at"],
            },
            causation=created.id,
        )

    def sweep(self, until: datetime) -> None:
        """The sweeper at `until`: every waiting session expired by then, in expiry order."""
        due = [r for r in self.sessions.values() if r["status"] == "waiting"]
        for row in sorted(due, key=lambda r: r["expires_at"]):
            if row["expires_at"] <= until:
                self.expire(row["id"])

    def _close(
        self,
        row: dict[str, Any],
        status: str,
        cause: Sent | None,
        data: dict[str, Any],
        causation: str | None = None,
    ) -> Published:
        row.update(status=status, closed_at=self.clock)
        self.active.pop(row["customer_id"], None)
        return self.publish(
            row["customer_id"],
            f"session.{status}",
            {"session_id": row["id"], "customer_id": row["customer_id"]} | data,
            cause,
            self.clock,
            causation,
        )

    def malformed(self, value: bytes = b'{"not json') -> Sent:
        sent = Sent("not_json", "payments", value, self.tick(), malformed=True)
        self.sent.append(sent)
        self.letters.append(Letter(value, "not_json"))
        return sent

    def history(self, **changes: Any) -> History:
        made = History(
            sent=list(self.sent),
            published=list(self.published),
            letters=list(self.letters),
            database=Database(
                sessions=[dict(r) for r in self.sessions.values()],
                payments=[dict(p) for p in self.payments.values()],
                processed=frozenset(self.processed),
            ),
            ended=self.tick(),
            sweep_interval=SWEEP,
        )
        return replace(made, **changes)


def customer(n: int) -> str:
    return str(uuid.UUID(int=10**6 + n))
