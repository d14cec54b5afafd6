"""The history checker stays quiet on a history the contract allows and names the guarantee a
broken one breaks, printing the customer's history."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from tests.proof.checker import RECOVERED, Verdict, check
from tests.proof.database import INVARIANTS, KNOWN
from tests.proof.history import History, Letter, Parking, Published
from tests.proof.outcomes import G1, G5, G6, G7, LETTERS, ONE_PER_ACCEPTANCE, ONE_PER_END
from tests.proof.replay import ACCEPT, G2, G3, G4
from tests.unit.proof.story import TTL, Story, customer

ALICE, BOB = customer(1), customer(2)


def good_story() -> Story:
    story = Story()
    first = story.pay(ALICE, "p1")
    s1 = str(first.data["session_id"])
    story.pay(ALICE, "p2")  # rejected: s1 is active
    story.accept(s1)
    story.accept(s1)  # already_accepted
    story.end(s1)
    story.end(s1)  # not live any more: no output
    story.accept(s1)  # completed
    s3 = str(story.pay(ALICE, "p3").data["session_id"])
    story.expire(s3)
    story.accept(s3)  # at or after expires_at: expired
    bob = str(story.pay(BOB, "p4").data["session_id"])
    story.accept(bob)
    story.accept(customer(99))  # unknown_session
    story.malformed()
    return story


def fired(verdict: Verdict) -> set[str]:
    return {v.guarantee for v in verdict.violations}


def without(history: History, record: Published) -> History:
    return replace(history, published=[p for p in history.published if p is not record])


def find(history: History, type_: str, **data: str) -> Published:
    return next(
        p
        for p in history.published
        if p.type == type_ and all(str(p.data.get(k)) == v for k, v in data.items())
    )


def test_a_history_the_contract_allows_has_no_violation() -> None:
    verdict = check(good_story().history())
    assert verdict.violations == []
    assert verdict.per_guarantee()[G1] == 0


def test_copies_of_an_event_with_the_same_id_and_bytes_are_at_least_once_delivery() -> None:
    history = good_story().history()
    copy = replace(history.published[0], offset=10_000)
    assert check(replace(history, published=[*history.published, copy])).violations == []


def test_a_payment_without_an_outcome_breaks_guarantee_1_and_prints_the_customer() -> None:
    history = good_story().history()
    verdict = check(without(history, find(history, "session.rejected")))
    assert G1 in fired(verdict)
    [violation] = [v for v in verdict.violations if v.guarantee == G1]
    assert "p2" in violation.detail and "session.created" in violation.detail
    assert violation.customer == ALICE


def test_a_payment_decided_twice_under_two_ids_breaks_guarantee_1() -> None:
    history = good_story().history()
    rejected = find(history, "session.rejected")
    twice = replace(rejected, id="another-id", offset=10_000)
    assert G1 in fired(check(replace(history, published=[*history.published, twice])))


def test_a_second_session_created_while_one_is_active_breaks_guarantee_2() -> None:
    story = good_story()
    bob_session = find(story.history(), "session.created", customer_id=BOB)
    story.publish(
        BOB, "session.created", dict(bob_session.data) | {"session_id": "s-x"}, None, story.clock
    )
    assert G2 in fired(check(story.history()))


def test_a_rejection_naming_another_session_breaks_guarantee_2() -> None:
    history = good_story().history()
    rejected = find(history, "session.rejected")
    wrong = replace(rejected, data=dict(rejected.data) | {"active_session_id": "s-other"})
    published = [wrong if p is rejected else p for p in history.published]
    assert G2 in fired(check(replace(history, published=published)))


def test_a_cancellation_before_the_expiry_breaks_guarantee_3() -> None:
    history = good_story().history()
    cancelled = find(history, "session.cancelled")
    early = replace(cancelled, data=dict(cancelled.data) | {"cancelled_at": cancelled.time - TTL})
    published = [early if p is cancelled else p for p in history.published]
    assert G3 in fired(check(replace(history, published=published)))


def test_a_session_left_waiting_past_its_expiry_breaks_guarantee_3() -> None:
    story = good_story()
    story.pay(customer(3), "p5")
    history = story.history()
    assert check(history).violations == []
    assert history.ended is not None
    later = history.ended + TTL + 3 * history.sweep_interval
    assert G3 in fired(check(replace(history, ended=later)))


def test_a_late_cancellation_is_excused_only_inside_a_fault_window() -> None:
    story = good_story()
    session = str(story.pay(customer(4), "p6").data["session_id"])
    story.clock += TTL + timedelta(minutes=5)
    story.expire(session)
    history = story.history()
    assert fired(check(history)) == {G3}
    window = (story.clock - timedelta(minutes=6), story.clock)
    excused = check(replace(history, faults=[window]))
    assert excused.violations == [] and excused.late_cancellations_excused == 1


def test_an_acceptance_of_a_cancelled_session_breaks_the_state_machine() -> None:
    history = good_story().history()
    cancelled = find(history, "session.cancelled")
    accepted = replace(
        find(history, "session.accepted", customer_id=BOB),
        key=cancelled.key,
        partition=cancelled.partition,
        offset=cancelled.offset + 1,
        id="acc-x",
        data={"session_id": cancelled.data["session_id"], "mechanic_id": "m"},
    )
    shifted = [
        replace(p, offset=p.offset + 5)
        if p.key == cancelled.key and p.offset > cancelled.offset
        else p
        for p in history.published
    ]
    assert G4 in fired(check(replace(history, published=[*shifted, accepted])))


def test_events_of_a_customer_out_of_order_break_the_state_machine() -> None:
    history = good_story().history()
    created = find(history, "session.created", customer_id=BOB)
    accepted = find(history, "session.accepted", customer_id=BOB)
    swapped = {created.id: accepted.offset, accepted.id: created.offset}
    published = [replace(p, offset=swapped.get(p.id, p.offset)) for p in history.published]
    assert G4 in fired(check(replace(history, published=published)))


def test_a_completion_of_a_waiting_session_breaks_the_state_machine() -> None:
    story = good_story()
    session = str(story.pay(customer(5), "p7").data["session_id"])
    story.publish(
        customer(5),
        "session.completed",
        {"session_id": session, "reason": "ended"},
        None,
        story.clock,
    )
    assert G4 in fired(check(story.history()))


def test_an_acceptance_rejected_for_a_reason_not_true_of_the_session_is_caught() -> None:
    history = good_story().history()
    refused = find(history, "session.acceptance_rejected", reason="already_accepted")
    lying = replace(refused, data=dict(refused.data) | {"reason": "expired"})
    published = [lying if p is refused else p for p in history.published]
    assert fired(check(replace(history, published=published))) == {ACCEPT}


def test_unknown_session_for_a_session_published_before_the_acceptance_is_caught() -> None:
    story = good_story()
    created = find(story.history(), "session.created", customer_id=BOB)
    sent = story.send("acceptance", "mechanic.accepted", {"session_id": "x"}, story.clock)
    story.publish(
        str(created.data["session_id"]),
        "session.acceptance_rejected",
        {"session_id": created.data["session_id"], "mechanic_id": "m", "reason": "unknown_session"},
        sent,
        story.clock,
    )
    assert ACCEPT in fired(check(story.history()))


def test_an_acceptance_without_an_outcome_is_caught() -> None:
    history = good_story().history()
    verdict = check(without(history, find(history, "session.accepted", customer_id=BOB)))
    assert ONE_PER_ACCEPTANCE in fired(verdict)


def test_an_end_completing_twice_is_caught() -> None:
    history = good_story().history()
    completed = find(history, "session.completed")
    again = replace(completed, id="completed-again", offset=completed.offset + 10_000)
    assert ONE_PER_END in fired(check(replace(history, published=[*history.published, again])))


def test_two_different_events_under_one_id_break_guarantee_5() -> None:
    history = good_story().history()
    first, other = history.published[0], history.published[1]
    clash = replace(other, id=first.id)
    published = [clash if p is other else p for p in history.published]
    assert G5 in fired(check(replace(history, published=published)))


def test_a_valid_input_on_the_dlq_or_a_malformed_one_missing_breaks_guarantee_6() -> None:
    history = good_story().history()
    valid = next(s for s in history.sent if not s.malformed)
    extra = replace(history, letters=[*history.letters, Letter(valid.value, "invalid")])
    assert fired(check(extra)) == {G6}
    assert fired(check(replace(history, letters=[]))) == {G6}


def test_an_event_published_while_its_customer_is_parked_breaks_guarantee_7() -> None:
    history = good_story().history()
    bob = [p for p in history.published if p.key == BOB]
    parked = Parking(BOB, bob[0].published_at, bob[-1].published_at + timedelta(seconds=1))
    assert fired(check(replace(history, parkings=[parked]))) == {G7}
    released = Parking(BOB, history.sent[0].sent_at - timedelta(hours=1), bob[0].published_at)
    assert check(replace(history, parkings=[released])).violations == []


def test_a_decision_the_database_does_not_know_is_caught() -> None:
    history = good_story().history()
    bob_session = str(find(history, "session.created", customer_id=BOB).data["session_id"])
    rows = [r for r in history.database.sessions if str(r["id"]) != bob_session]
    verdict = check(replace(history, database=replace(history.database, sessions=rows)))
    assert KNOWN in fired(verdict)
    unprocessed = replace(history.database, processed=frozenset())
    assert fired(check(replace(history, database=unprocessed))) == {KNOWN}


def test_a_database_with_two_active_sessions_or_rows_left_in_the_outbox_is_caught() -> None:
    history = good_story().history()
    rows = [
        dict(r) | ({"status": "waiting", "closed_at": None}) if r["customer_id"] == ALICE else r
        for r in history.database.sessions
    ]
    assert INVARIANTS in fired(
        check(replace(history, database=replace(history.database, sessions=rows)))
    )
    left = replace(history.database, outbox_rows=3)
    assert fired(check(replace(history, database=left))) == {INVARIANTS}


def test_more_letters_of_one_original_than_redrives_and_crashes_allow_are_caught() -> None:
    history = good_story().history()
    [letter] = history.letters
    twice = replace(history, letters=[letter, letter], redrives=1)
    assert check(twice).violations == []
    doubled = replace(history, letters=[letter] * 4, redrives=1, crashes=1)
    assert fired(check(doubled)) == {LETTERS}


def test_a_letter_again_after_an_offset_commit_refused_by_a_rebalance_is_allowed() -> None:
    history = good_story().history()
    [letter] = history.letters
    again = replace(history, letters=[letter, letter])
    assert fired(check(again)) == {LETTERS}
    assert check(replace(again, refused_commits=1)).violations == []


def test_a_fault_the_service_never_recovered_from_is_a_violation_of_its_own() -> None:
    history = good_story().history()
    stuck = check(replace(history, unrecovered=["switchover at 22:50:01"]))
    assert fired(stuck) == {RECOVERED}
    assert "switchover at 22:50:01" in stuck.violations[0].detail
