"""The checks over inputs and outputs together: one outcome per payment and per acceptance, at
most one completion per end, nothing waiting past its deadline, one id per event, the DLQ holding
exactly the malformed inputs, nothing published for a parked customer."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import datetime

from tests.proof.history import History, Published, Sent, Violation, distinct
from tests.proof.replay import ACCEPT, G3, Replayed, show

G1 = "G1 exactly one outcome per payment"
G5 = "G5 two different events never share an id"
G6 = "G6 the DLQ holds the malformed inputs and nothing else"
G7 = "G7 nothing published for a parked customer"
ONE_PER_ACCEPTANCE = "exactly one outcome per acceptance"
ONE_PER_END = "at most one completion per end"
LETTERS = "a redrive adds at most one letter per failing original"

PAYMENT = "payment.completed"
ACCEPTANCE = "mechanic.accepted"
ENDED = "session.ended"
OUTCOME_OF_PAYMENT = ("session.created", "session.rejected")
OUTCOME_OF_ACCEPTANCE = ("session.accepted", "session.acceptance_rejected")


def _valid(sent: Iterable[Sent], type_: str) -> list[Sent]:
    return [s for s in sent if not s.malformed and s.type == type_ and s.data is not None]


def _of(published: list[Published], key: str | None) -> list[Published]:
    return [p for p in published if p.key == key]


def one_outcome_per_payment(history: History) -> list[Violation]:
    paid = {str(s.data["payment_id"]): s for s in _valid(history.sent, PAYMENT) if s.data}
    outcomes: dict[str, set[str]] = defaultdict(set)
    for record in history.published:
        if record.type in OUTCOME_OF_PAYMENT:
            outcomes[str(record.data.get("payment_id"))].add(record.id)
    found = []
    for payment_id in sorted(set(paid) | set(outcomes)):
        ids = outcomes.get(payment_id, set())
        if len(ids) == 1 and payment_id in paid:
            continue
        customer = str(paid[payment_id].data["customer_id"]) if payment_id in paid else None  # type: ignore[index]
        why = (
            f"payment {payment_id} was never sent but has {len(ids)} outcome(s)"
            if payment_id not in paid
            else f"payment {payment_id} has {len(ids)} distinct outcomes, not exactly one"
        )
        mine = _of(history.published, customer) if customer else []
        found.append(Violation(G1, f"{why}\n  history of {customer}:\n{show(mine)}", customer))
    return found


def _caused(history: History, types: tuple[str, ...]) -> dict[tuple[str, str], set[str]]:
    by_cause: dict[tuple[str, str], set[str]] = defaultdict(set)
    for record in history.published:
        if record.type in types and record.cause is not None:
            by_cause[record.cause].add(record.id)
    return by_cause


def one_outcome_per_acceptance(history: History) -> list[Violation]:
    outcomes = _caused(history, OUTCOME_OF_ACCEPTANCE)
    found = []
    for identity in sorted({s.identity for s in _valid(history.sent, ACCEPTANCE) if s.identity}):
        ids = outcomes.get(identity, set())
        if len(ids) != 1:
            found.append(
                Violation(ONE_PER_ACCEPTANCE, f"acceptance {identity[1]} has {len(ids)} outcomes")
            )
    return found


def at_most_one_completion_per_end(history: History) -> list[Violation]:
    completions = _caused(history, ("session.completed",))
    found = []
    for identity in sorted({s.identity for s in _valid(history.sent, ENDED) if s.identity}):
        if len(ids := completions.get(identity, set())) > 1:
            found.append(Violation(ONE_PER_END, f"end {identity[1]} completed {len(ids)} times"))
    per_session: dict[str, set[str]] = defaultdict(set)
    for record in history.published:
        if record.type == "session.completed":
            per_session[str(record.data.get("session_id"))].add(record.id)
    for session_id, ids in sorted(per_session.items()):
        if len(ids) > 1:
            found.append(Violation(ONE_PER_END, f"session {session_id} completed {len(ids)} times"))
    return found


def _in_fault(history: History, when: datetime) -> bool:
    return any(start <= when <= end for start, end in history.faults)


def expiry_on_time(history: History, replayed: Replayed) -> tuple[list[Violation], int]:
    """Returns the violations and the number of late cancellations a fault window excused."""
    slack = 2 * history.sweep_interval
    first = {r.id: r for r in distinct(history.published)}
    created = {str(r.data["session_id"]): r for r in first.values() if r.type == "session.created"}
    found, excused = [], 0
    for record in first.values():
        if record.type != "session.cancelled":
            continue
        session_id = str(record.data["session_id"])
        state, origin = replayed.sessions.get(session_id), created.get(session_id)
        if state is None or origin is None:
            continue  # the replay reports a cancellation of a session never created
        deadline = max(state.expires_at, origin.published_at) + slack
        if record.published_at <= deadline:
            continue
        if _in_fault(history, deadline) or _in_fault(history, record.published_at):
            excused += 1
            continue
        found.append(
            Violation(
                G3,
                f"{session_id} cancelled at {record.published_at}, after {deadline} "
                "(expiry, or its creation if later, plus two sweep intervals)",
                record.key,
            )
        )
    if history.ended is not None:
        for session_id, state in sorted(replayed.sessions.items()):
            origin = created[session_id]
            if state.status == "waiting" and (
                max(state.expires_at, origin.published_at) + slack < history.ended
            ):
                mine = _of(history.published, origin.key)
                found.append(
                    Violation(
                        G3,
                        f"{session_id} still waiting at the end, expired {state.expires_at}\n"
                        f"  history of {origin.key}:\n{show(mine)}",
                        origin.key,
                    )
                )
    return found, excused


def one_id_one_event(history: History) -> list[Violation]:
    seen: dict[str, Published] = {}
    found = []
    for record in history.published:
        earlier = seen.setdefault(record.id, record)
        if (earlier.key, earlier.value) != (record.key, record.value):
            found.append(
                Violation(
                    G5,
                    f"id {record.id}: p{earlier.partition}@{earlier.offset} {earlier.type} and "
                    f"p{record.partition}@{record.offset} {record.type} differ",
                    record.key,
                )
            )
    return found


def dlq_is_the_malformed_inputs(history: History) -> list[Violation]:
    malformed = {s.value: s for s in history.sent if s.malformed}
    lettered = set()
    found = []
    for letter in history.letters:
        if letter.placeholder:
            found.append(Violation(G6, f"a placeholder letter ({letter.kind})"))
        elif letter.value not in malformed:
            found.append(
                Violation(
                    G6, f"a valid input dead-lettered ({letter.kind}): {letter.value[:200]!r}"
                )
            )
        lettered.add(letter.value)
    counts = Counter(letter.value for letter in history.letters)
    bound = 1 + history.redrives + history.crashes + history.refused_commits
    for value, n in sorted(counts.items()):
        if n > bound:
            found.append(
                Violation(
                    LETTERS,
                    f"{n} letters of one original after {history.redrives} redrives and "
                    f"{history.crashes} crashes, {history.refused_commits} refused offset "
                    f"commits (at most {bound}): {value[:200]!r}",
                )
            )
    for value, sent in malformed.items():
        if value not in lettered:
            found.append(
                Violation(G6, f"malformed {sent.kind} never reached the DLQ: {value[:200]!r}")
            )
    return found


def nothing_while_parked(history: History) -> list[Violation]:
    found = []
    for parking in history.parkings:
        mine = _of(history.published, parking.customer_id)
        for record in mine:
            if record.published_at >= parking.since and (
                parking.released is None or record.published_at < parking.released
            ):
                found.append(
                    Violation(
                        G7,
                        f"{record.type} {record.id} published at {record.published_at}, while "
                        f"parked (from {parking.since} until {parking.released})\n"
                        f"  history of {parking.customer_id}:\n{show(mine)}",
                        parking.customer_id,
                    )
                )
    return found


def unknown_only_when_unknown(history: History) -> list[Violation]:
    """An acceptance refused as `unknown_session` must have been sent before its session's
    `session.created` was published (the workload sends acceptances only for sessions seen
    created, so none should be)."""
    inputs = {s.identity: s for s in history.sent if s.identity is not None}
    created = {
        str(r.data["session_id"]): r for r in history.published if r.type == "session.created"
    }
    found = []
    for record in distinct(history.published):
        if record.type != "session.acceptance_rejected":
            continue
        if record.data.get("reason") != "unknown_session":
            continue
        origin = created.get(str(record.data.get("session_id")))
        sent = inputs.get(record.cause) if record.cause else None
        if origin is not None and sent is not None and origin.published_at < sent.sent_at:
            found.append(
                Violation(
                    ACCEPT,
                    f"{record.id}: unknown_session, but {origin.data['session_id']} was "
                    f"published as created at {origin.published_at}, before the acceptance "
                    f"was sent at {sent.sent_at}\n  history of {origin.key}:\n"
                    f"{show(_of(history.published, origin.key))}",
                    origin.key,
                )
            )
    return found
