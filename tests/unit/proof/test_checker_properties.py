"""Over many histories the story model makes (customers paying, accepting, ending, expiring, in
any interleaving): the checker finds nothing in them, nothing in their at-least-once copies, and
always guarantee 1 once one payment's outcome is lost."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.proof.checker import check
from tests.proof.history import History
from tests.proof.outcomes import G1
from tests.unit.proof.story import SWEEP, Story, customer

Step = tuple[str, int]
steps = st.lists(
    st.tuples(
        st.sampled_from(["pay", "accept", "end", "expire", "unknown", "junk"]), st.integers(0, 3)
    ),
    min_size=1,
    max_size=40,
)


def play(script: list[Step]) -> History:
    story = Story()
    payments = 0
    for action, who in script:
        person = customer(who)
        session = story.active.get(person)
        if action == "pay":
            payments += 1
            story.pay(person, f"p{payments}")
        elif action == "accept" and session is not None:
            story.accept(session)
        elif action == "end" and session is not None:
            story.end(session)
        elif action == "expire" and session is not None:
            if story.sessions[session]["status"] == "waiting":
                story.sweep(story.sessions[session]["expires_at"])
        elif action == "unknown":
            story.accept(customer(100 + who))
        elif action == "junk":
            story.malformed(f"junk {len(story.sent)}".encode())
        story.tick()
        # The sweeper runs as time passes: no session stays waiting a sweep past its expiry
        # (the `expire` action moves the clock on to one customer's expiry, past others').
        story.sweep(story.clock - SWEEP)
    return story.history()


@settings(max_examples=150, deadline=None)
@given(steps)
def test_every_history_the_model_makes_passes(script: list[Step]) -> None:
    assert check(play(script)).violations == []


@settings(max_examples=100, deadline=None)
@given(steps, st.data())
def test_copies_of_any_records_change_nothing(script: list[Step], data: st.DataObject) -> None:
    history = play(script)
    if not history.published:
        return
    copies = data.draw(st.lists(st.sampled_from(history.published), max_size=5))
    appended = [replace(c, offset=c.offset + 1000 + i) for i, c in enumerate(copies)]
    assert check(replace(history, published=[*history.published, *appended])).violations == []


@settings(max_examples=100, deadline=None)
@given(steps, st.data())
def test_losing_any_payments_outcome_is_a_violation_of_guarantee_1(
    script: list[Step], data: st.DataObject
) -> None:
    history = play(script)
    outcomes = [p for p in history.published if p.type in ("session.created", "session.rejected")]
    if not outcomes:
        return
    lost = data.draw(st.sampled_from(outcomes))
    kept = [p for p in history.published if p is not lost]
    violations = check(replace(history, published=kept)).violations
    assert G1 in {v.guarantee for v in violations}
    assert any(str(lost.data["payment_id"]) in v.detail for v in violations if v.guarantee == G1)
