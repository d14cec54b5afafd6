"""A restore's fold: the state the published outputs imply is the state the live run left."""

from __future__ import annotations

import pytest
from hypothesis import given, settings

import schemas
from service.reprocess.changelog import published
from service.reprocess.restore_state import Inconsistent, restore_state
from tests.unit.reprocess.test_replay_order import actions, live_run


@settings(max_examples=200, deadline=None)
@given(actions)
def test_the_outputs_of_a_live_run_fold_into_the_state_it_left(
    steps: list[tuple[str, int, int]],
) -> None:
    live = live_run(steps)

    state = restore_state(live.changelog)

    assert state.sessions == live.handlers.sessions
    assert state.payments == live.handlers.payments
    decided = set(live.handlers.db.tables.processed)
    assert set(state.claims) <= decided
    assert set(state.claims) == {o.causation for o in live.changelog if not o.timer}


def test_a_changelog_that_starts_mid_session_is_refused_by_name() -> None:
    live = live_run([("pay", 0, 0), ("accept", 0, 1)])
    accepted = next(o for o in live.changelog if o.type == schemas.SESSION_ACCEPTED)

    with pytest.raises(Inconsistent, match=str(accepted.data["session_id"])):
        restore_state([accepted])


def test_a_copy_published_again_counts_once() -> None:
    live = live_run([("pay", 0, 0)])
    (created,) = live.changelog
    again = published(
        created.key.encode(), created.value, timestamp=9, partition=created.partition, offset=1
    )

    assert restore_state([created, again]).outputs == 1
