"""What a rebuild compares and how it reads: re-made outputs are paired with the published ones
by cause and read back only where their bytes differ; the changelog and the inputs are read at
once, and a failing read stops the other and is the error raised."""

from __future__ import annotations

import asyncio
import json

import pytest

from service.reprocess.changelog import Published, published
from service.reprocess.differences import Explanation, Remade, differences
from service.reprocess.history import MissingTopic
from service.reprocess.rebuild import together


def _output(id_: str, cause: str, reason: str) -> bytes:
    return json.dumps(
        {
            "id": id_,
            "type": "session.rejected",
            "causationsource": "payments",
            "causationid": cause,
            "data": {"payment_id": cause, "reason": reason},
        }
    ).encode()


def _published(id_: str, cause: str, reason: str) -> Published:
    return published(b"k", _output(id_, cause, reason), timestamp=1, partition=0, offset=0)


def test_re_made_outputs_with_the_published_bytes_differ_in_nothing() -> None:
    changelog = [_published("o1", "p1", "late"), _published("o2", "p2", "late")]
    remade = [
        Remade(("payments", f"p{i}"), b"k", _output(f"o{i}", f"p{i}", "late")) for i in (1, 2)
    ]

    assert differences(changelog, remade) == []


def test_a_changed_missing_or_new_output_is_shown_read_back() -> None:
    changelog = [_published("o1", "p1", "late"), _published("o2", "p2", "late")]
    remade = [
        Remade(("payments", "p1"), b"k", _output("o1", "p1", "duplicate")),
        Remade(("payments", "p3"), b"k", _output("o3", "p3", "late")),
    ]

    found = differences(changelog, remade)

    assert [(d.id, d.explanation) for d in found] == [
        ("o1", Explanation.UNEXPLAINED),
        ("o2", Explanation.UNEXPLAINED),
        ("o3", Explanation.UNEXPLAINED),
    ]
    changed, missing, new = found
    assert changed.got is not None and changed.got.data["reason"] == "duplicate"
    assert changed.expected == changelog[0]
    assert missing.got is None and missing.expected == changelog[1]
    assert new.expected is None and new.got is not None and new.got.causation == ("payments", "p3")


def test_a_re_made_output_under_another_key_differs() -> None:
    changelog = [_published("o1", "p1", "late")]
    remade = [Remade(("payments", "p1"), b"other", _output("o1", "p1", "late"))]

    assert [d.id for d in differences(changelog, remade)] == ["o1"]


async def test_both_reads_give_both_results() -> None:
    async def read(value: int) -> int:
        await asyncio.sleep(0)
        return value

    assert await together(read(1), read(2)) == (1, 2)


async def test_a_failing_read_stops_the_other_and_is_the_error_raised() -> None:
    stopped = asyncio.Event()

    async def endless() -> int:
        try:
            await asyncio.Event().wait()
        finally:
            stopped.set()
        return 0

    async def missing() -> int:
        raise MissingTopic("bench.payments")

    with pytest.raises(MissingTopic):
        await together(endless(), missing())
    assert stopped.is_set()


async def test_when_both_reads_fail_the_first_s_error_is_raised() -> None:
    async def failing(error: Exception) -> int:
        raise error

    with pytest.raises(MissingTopic, match="changelog"):
        await together(failing(MissingTopic("changelog")), failing(MissingTopic("inputs")))
