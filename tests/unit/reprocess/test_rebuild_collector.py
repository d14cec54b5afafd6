"""A rebuild builds its plan with the cyclic collector off, and hands the process back with it
on, whether the planning finished or failed."""

from __future__ import annotations

import gc

import pytest

from service.reprocess.rebuild import _collector_paused


def test_the_collector_is_off_while_the_plan_is_built_and_on_again_after() -> None:
    assert gc.isenabled()
    with _collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_the_collector_is_on_again_after_a_planning_that_failed() -> None:
    with pytest.raises(ValueError, match="bad history"), _collector_paused():
        raise ValueError("bad history")
    assert gc.isenabled()


def test_what_the_planning_built_is_frozen_out_of_later_collections() -> None:
    before = gc.get_freeze_count()
    with _collector_paused():
        built = [[n] for n in range(1_000)]
    assert gc.get_freeze_count() >= before + len(built)
