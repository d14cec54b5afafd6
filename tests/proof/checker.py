"""The history checker: every guarantee of docs/contract.md, one by one, over a run's history.
Pure: plain data in (tests/proof/history.py), violations out."""

from __future__ import annotations

from dataclasses import dataclass

from tests.proof import database, outcomes, replay
from tests.proof.history import History, Violation

RECOVERED = "the service recovers from every fault"

GUARANTEES = (
    outcomes.G1,
    replay.G2,
    replay.G3,
    replay.G4,
    outcomes.G5,
    outcomes.G6,
    outcomes.G7,
    replay.ACCEPT,
    outcomes.ONE_PER_ACCEPTANCE,
    outcomes.ONE_PER_END,
    outcomes.LETTERS,
    database.KNOWN,
    database.INVARIANTS,
    RECOVERED,
)


@dataclass(frozen=True)
class Verdict:
    violations: list[Violation]
    late_cancellations_excused: int  # late sweeps inside a fault window

    def per_guarantee(self) -> dict[str, int]:
        counts = dict.fromkeys(GUARANTEES, 0)
        for violation in self.violations:
            counts[violation.guarantee] = counts.get(violation.guarantee, 0) + 1
        return counts


def check(history: History) -> Verdict:
    inputs = {s.identity: s for s in history.sent if s.identity is not None and not s.malformed}
    replayed = replay.replay(history.published, inputs)
    late, excused = outcomes.expiry_on_time(history, replayed)
    found = [
        *replayed.violations,
        *outcomes.one_outcome_per_payment(history),
        *outcomes.one_outcome_per_acceptance(history),
        *outcomes.at_most_one_completion_per_end(history),
        *late,
        *outcomes.unknown_only_when_unknown(history),
        *outcomes.one_id_one_event(history),
        *outcomes.dlq_is_the_malformed_inputs(history),
        *outcomes.nothing_while_parked(history),
        *database.decisions_known(history, replayed),
        *database.invariants(history),
        *recovered(history),
    ]
    return Verdict(found, excused)


def recovered(history: History) -> list[Violation]:
    """Each fault after which a probe payment on every partition had no outcome within the
    bound: the service stayed down (e.g. kept asking a demoted primary)."""
    return [
        Violation(RECOVERED, f"no probe decided within the bound after the fault {fault}")
        for fault in history.unrecovered
    ]
