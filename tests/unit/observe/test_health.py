"""Readiness as the loops and the watch loop report it."""

from __future__ import annotations

from service.observe.health import NOT_CHECKED, Health


def test_an_instance_is_not_ready_until_every_expected_check_has_passed_once() -> None:
    health = Health()
    health.expect("postgresql", "kafka")

    assert health.problems() == {"postgresql": NOT_CHECKED, "kafka": NOT_CHECKED}
    health.checked("postgresql", None)
    health.checked("kafka", None)
    assert health.problems() == {}


def test_a_failed_check_is_named_with_its_problem_until_it_passes_again() -> None:
    health = Health()
    health.expect("postgresql")
    health.checked("postgresql", "ConnectionRefusedError: refused")

    assert health.problems() == {"postgresql": "ConnectionRefusedError: refused"}
    health.checked("postgresql", None)
    assert health.problems() == {}


def test_a_loop_in_backoff_is_not_ready_until_it_recovers() -> None:
    health = Health()
    health.backing_off("decide", OSError("down"))
    health.backing_off("relay", None)

    assert set(health.problems()) == {"decide loop", "relay loop"}
    assert "OSError('down')" in health.problems()["decide loop"]
    health.recovered("decide")
    health.recovered("sweep")  # never backed off: nothing to forget
    assert set(health.problems()) == {"relay loop"}


def test_one_consumer_s_success_does_not_hide_another_s_backoff() -> None:
    health = Health()
    health.backing_off("consumer 0 decide", OSError("down"))

    health.recovered("consumer 1 decide")

    assert set(health.problems()) == {"consumer 0 decide loop"}
