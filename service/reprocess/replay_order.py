"""The order a rebuild re-decides the inputs in: the live service's own, as the changelog tells it.

The live service decided each input partition in offset order, and each customer's events in the
order their outputs appear on `sessions.events` (one customer, one key, one partition). The
sweeper's closings come in that same per-customer order, so a closing is applied exactly where
it was published: a payment stamped just before an expiry the sweeper had already acted on
finds the session cancelled, as it did live. So a rebuild walks the input partitions together
and takes next, among the events at their heads, one whose output is the next one published
for its key. On top of that:

- An acceptance refused as `unknown_session` was decided before its session existed: the
  payment creating that session waits for it.
- An input that caused no output (a duplicate, an ignored end) has no place in the changelog;
  it goes at its place in its own partition, but not before the outputs published before it was
  produced (an end stamped before a timeout the sweeper had already acted on was decided after
  it), and a second payment for a payment id not before the first.
- Every copy of one input (same source and id) counts as that input: whichever comes first
  decides, the others are duplicates.
- An end that caused no output found its session not live, and the acceptance of that session
  was decided after it when the session was later completed by an end behind it in the same
  partition (or never closed): that acceptance waits for it, though it was produced earlier
  (another topic, met in another order). Nor does such an end go while its session is live.

Pure: plain data in, a list of steps out.
"""

from __future__ import annotations

import bisect
import heapq
from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

import schemas
from service.reprocess.changelog import Published


@dataclass(frozen=True, slots=True)
class InputRecord:
    event: schemas.InputEvent
    timestamp: int  # the record's Kafka timestamp, in milliseconds
    partition: str  # "topic:partition"
    offset: int
    # The record as read (value and headers, either content mode): what a rebuild's worker
    # process decodes again (`rebuild_parts`), far cheaper to send it than the decoded event.
    value: bytes = b""
    headers: Sequence[tuple[str, bytes | None]] = ()

    @property
    def identity(self) -> tuple[str, str]:
        return (self.event.source, self.event.id)


@dataclass(frozen=True, slots=True)
class Decide:
    record: InputRecord


@dataclass(frozen=True, slots=True)
class Close:
    """Apply a timer (a sweep of one customer) at the deadline the published closing names."""

    customer_id: UUID
    at: datetime
    published: Published


Step = Decide | Close


@dataclass(slots=True)
class Plan:
    steps: list[Step] = field(default_factory=list)
    # Published outputs no step can re-make: their cause is not on the input topics any more.
    unreachable: list[Published] = field(default_factory=list)
    forced: int = 0  # steps taken against the changelog's order, to get past a contradiction
    # Each session's customer, as its `session.created` names it (or the payment that would
    # create it): whom an acceptance or an end touches, even one decided before it existed.
    owners: dict[UUID, UUID] = field(default_factory=dict)


def in_published_order(
    partitions: Sequence[Sequence[InputRecord]], changelog: Sequence[Published]
) -> Plan:
    """`partitions` each in offset order, `changelog` in (partition, offset) order."""
    return _Walk(partitions, changelog).run()


def in_arrival_order(partitions: Sequence[Sequence[InputRecord]]) -> Plan:
    """The inputs by their records' timestamps, ties by partition, with no changelog to follow:
    what this code decides when it meets the inputs as they arrived."""
    merged = heapq.merge(*partitions, key=lambda r: (r.timestamp, r.partition, r.offset))
    return Plan(steps=[Decide(r) for r in merged], owners=_payers(partitions, {}))


def _payers(
    partitions: Sequence[Sequence[InputRecord]], known: dict[tuple[str, str], Published]
) -> dict[UUID, UUID]:
    """The session each payment creates if decided so (not `known` to have created it), and
    its customer: whom an acceptance or an end of it touches, were it created here."""
    return {
        schemas.session_id_for_payment(event.data.payment_id): event.data.customer_id
        for records in partitions
        for record in records
        if isinstance(event := record.event, schemas.PaymentCompletedEvent)
        and getattr(known.get(record.identity), "type", None) != schemas.SESSION_CREATED
    }


@dataclass(slots=True)
class _Head:
    index: int  # of its partition
    record: InputRecord
    key: tuple[str, str]
    out: Published | None  # what it caused, by the changelog
    creates: str | None  # the session its output creates, for a payment that created one
    decider: tuple[str, str] | None  # for a payment without output: who decided its payment id

    @property
    def place(self) -> tuple[int, str, int]:
        return (self.record.timestamp, self.record.partition, self.index)


class _Walk:
    def __init__(
        self, partitions: Sequence[Sequence[InputRecord]], changelog: Sequence[Published]
    ) -> None:
        self.partitions = [deque(p) for p in partitions]
        present = {(r.event.source, r.event.id) for p in partitions for r in p}
        self.plan = Plan()
        self.queues: dict[str, deque[Published]] = defaultdict(deque)
        self.output_of: dict[tuple[str, str], Published] = {}
        self.decider_of_payment: dict[str, tuple[str, str]] = {}
        self.unknown_first: dict[str, set[tuple[str, str]]] = defaultdict(set)
        self.pending: list[tuple[int, int]] = []  # (timestamp, serial) of outputs, by time
        self.first = 0  # those before it in `pending` are consumed
        self.serial: dict[str, int] = {}
        seen: set[str] = set()
        created: list[Published] = []
        for out in changelog:
            if out.id in seen:
                continue  # at-least-once: a copy published again after a relay's restart
            seen.add(out.id)
            timer = out.timer
            if not timer and out.causation not in present:
                self.plan.unreachable.append(out)
                continue
            self.queues[out.key].append(out)
            number = self.serial[out.id] = len(self.serial)
            self.pending.append((out.timestamp, number))
            if timer:
                continue
            self.output_of[out.causation] = out
            if out.type in (schemas.SESSION_CREATED, schemas.SESSION_REJECTED):
                self.decider_of_payment[str(out.data["payment_id"])] = out.causation
            if out.type == schemas.SESSION_CREATED:
                created.append(out)
                owner = UUID(str(out.data["customer_id"]))
                self.plan.owners[UUID(str(out.data["session_id"]))] = owner
            if out.unknown_session:
                self.unknown_first[str(out.data["session_id"])].add(out.causation)
        self.pending.sort()  # its keys are unique: in the order a heap would pop them
        # The payments that create a session some acceptance refused as unknown waits for.
        sessions = {out.causation: str(out.data["session_id"]) for out in created}
        self.creates = {key: s for key, s in sessions.items() if s in self.unknown_first}
        # Owners too of the sessions only a changed rule would create.
        self.plan.owners = _payers(partitions, self.output_of) | self.plan.owners
        self.ended_first = _ended_first(partitions, changelog, self.output_of)
        self.live: set[str] = set()  # sessions accepted and not yet closed, as far as consumed
        self.consumed: set[int] = set()
        self.decided: set[tuple[str, str]] = set()
        # Keys whose next output is a timer: checked after every step, so kept as a set.
        self.timer_heads = {key for key, queue in self.queues.items() if queue[0].timer}

    def run(self) -> Plan:
        heads = {i: h for i in range(len(self.partitions)) if (h := self._head(i)) is not None}
        # The heads by (timestamp, partition): the first ready one is the earliest ready one,
        # and usually the first looked at.
        order = sorted(h.place for h in heads.values())
        while order:
            self._close_due_timers()
            place = next((p for p in order if self._ready(heads[p[2]], strict=True)), None)
            if place is None:
                # Clocks disagree a little: an input without output may precede an earlier output.
                place = next((p for p in order if self._ready(heads[p[2]], strict=False)), None)
            if place is None:
                # The changelog contradicts the inputs (a lost record, a copy out of order):
                # decide the earliest head anyway, and let the comparison show what differs.
                place = order[0]
                self.plan.forced += 1
            order.remove(place)
            head = heads.pop(index := place[2])
            self.partitions[index].popleft()
            following = self._head(index)
            if following is not None:
                heads[index] = following
                bisect.insort(order, following.place)
            self._decide(head)
        self._close_due_timers()
        return self.plan

    def _head(self, index: int) -> _Head | None:
        """What is known of a partition's next record before the walk reaches it, worked out
        once rather than at every step it waits."""
        partition = self.partitions[index]
        if not partition:
            return None
        record = partition[0]
        key = record.identity
        out = self.output_of.get(key)
        event = record.event
        creates = decider = None
        if out is not None:
            creates = self.creates.get(key)  # only looked at by _ready
        elif isinstance(event, schemas.PaymentCompletedEvent):
            decider = self.decider_of_payment.get(event.data.payment_id)
        return _Head(index, record, key, out, creates, decider)

    def _close_due_timers(self) -> None:
        while self.timer_heads:
            queue = self.queues[self.timer_heads.pop()]
            while queue and queue[0].timer:
                out = queue.popleft()
                self._consume(out)
                at = out.data.get("cancelled_at") or out.data["completed_at"]
                customer = UUID(str(out.data["customer_id"]))
                self.plan.steps.append(Close(customer, datetime.fromisoformat(str(at)), out))

    def _ready(self, head: _Head, *, strict: bool) -> bool:
        if head.key in self.decided:
            return True
        out = head.out
        if out is not None:
            queue = self.queues[out.key]
            if not queue or queue[0] is not out:
                return False
            if out.type == schemas.SESSION_ACCEPTED:
                ended = self.ended_first
                return not ended or not ended.get(str(out.data["session_id"]))
            if head.creates is not None:
                # Only the payment that creates the session makes it known; a rejected one
                # does not, and may come before the acceptances refused as unknown.
                return not self.unknown_first.get(head.creates)
            return True
        if head.decider is not None and head.decider not in self.decided:
            return False
        event = head.record.event
        if isinstance(event, schemas.SessionEndedEvent) and str(event.data.session_id) in self.live:
            return False
        return not strict or self._published_before_consumed(head.record.timestamp)

    def _published_before_consumed(self, timestamp: int) -> bool:
        pending, consumed = self.pending, self.consumed
        while self.first < len(pending) and pending[self.first][1] in consumed:
            self.first += 1
        return self.first == len(pending) or pending[self.first][0] > timestamp

    def _decide(self, head: _Head) -> None:
        record, key = head.record, head.key
        self.plan.steps.append(Decide(record))
        if key in self.decided:
            return
        self.decided.add(key)
        if self.ended_first and isinstance(record.event, schemas.SessionEndedEvent):
            self.ended_first.get(str(record.event.data.session_id), set()).discard(key)
        out = head.out
        if out is None:
            return
        queue = self.queues[out.key]
        if queue and queue[0] is out:
            queue.popleft()
        else:  # forced: taken out of its place
            queue.remove(out)
        if queue and queue[0].timer:
            self.timer_heads.add(out.key)
        self._consume(out)
        if out.unknown_session:
            self.unknown_first[str(out.data["session_id"])].discard(key)

    def _consume(self, out: Published) -> None:
        self.consumed.add(self.serial[out.id])
        session = str(out.data.get("session_id"))
        if out.type == schemas.SESSION_ACCEPTED:
            self.live.add(session)
        elif out.type in (schemas.SESSION_COMPLETED, schemas.SESSION_CANCELLED):
            self.live.discard(session)


def _ended_first(
    partitions: Sequence[Sequence[InputRecord]],
    changelog: Sequence[Published],
    output_of: dict[tuple[str, str], Published],
) -> dict[str, set[tuple[str, str]]]:
    """Session -> the ends without output its acceptance came after: those before the end that
    completed it in its partition, or every one when nothing (no end, no timer) closed it."""
    closing = (schemas.SESSION_COMPLETED, schemas.SESSION_CANCELLED)
    closed = {str(out.data.get("session_id")) for out in changelog if out.type in closing}
    closing_at = {
        cause: str(out.data["session_id"])
        for cause, out in output_of.items()
        if out.type == schemas.SESSION_COMPLETED
    }
    found: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for records in partitions:
        ahead: dict[str, set[tuple[str, str]]] = defaultdict(set)
        for record in records:
            identity = (record.event.source, record.event.id)
            if identity in closing_at:
                session = str(getattr(record.event.data, "session_id", ""))
                found[session] |= ahead.pop(session, set())
            elif isinstance(record.event, schemas.SessionEndedEvent):
                if identity not in output_of:
                    ahead[str(record.event.data.session_id)].add(identity)
        for session, ends in ahead.items():
            if session not in closed:
                found[session] |= ends
    return found
