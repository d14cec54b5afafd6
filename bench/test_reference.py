"""The bench's own check of bench/reference.py, kept beside it (tests/ do not import bench): a
pgbench transaction of reference (b) sends the store's own statements for a batch of 100 new
customers' payments, in the store's order, with every parameter bound to a variable the script
sets, so that the share of the ceiling compares the same SQL."""

from __future__ import annotations

import re

from bench.reference import PGBENCH_SCRIPT
from bench.service_api import (
    BEGIN,
    COMMIT_AND_NOTIFY,
    ENSURE_CUSTOMERS,
    LOAD_AND_CLAIM,
    LOCK_CUSTOMERS,
)

_VARIABLE = re.compile(r"(?<![:\w]):(\w+)")  # pgbench's `:name`, not a `::type` cast
_PARAMETER = re.compile(r"\$[0-9]+")
_GSET = "\\gset"


def _lines() -> list[str]:
    return PGBENCH_SCRIPT.splitlines()


def _statements() -> list[str]:
    """The SQL after the prelude's \\gset, one a line, without meta-commands or semicolons."""
    lines = _lines()
    return [line.removesuffix(";") for line in lines[lines.index(_GSET) + 1 :] if line[0] != "\\"]


def _shape(statement: str) -> str:
    return _PARAMETER.sub("?", _VARIABLE.sub("?", statement))


def test_a_transaction_sends_the_stores_statements_in_the_stores_order() -> None:
    statements = _statements()
    store_sends = [ENSURE_CUSTOMERS, BEGIN, LOCK_CUSTOMERS, LOAD_AND_CLAIM]
    assert [_shape(s) for s in statements[:4]] == [_shape(s) for s in store_sends]
    # Where the store sends three COPYs (300 rows), the INSERTs that pgbench can send.
    tables = [s.removeprefix("INSERT INTO ").split()[0] for s in statements[4:7]]
    assert tables == ["sessions", "payments", "outbox"]
    assert statements[7:] == COMMIT_AND_NOTIFY.split("; ")


def test_the_commit_and_its_notification_go_in_one_pipeline_as_in_one_round_trip() -> None:
    lines = _lines()
    start, end = lines.index("\\startpipeline"), lines.index("\\endpipeline")
    assert [line.removesuffix(";") for line in lines[start + 1 : end]] == (
        COMMIT_AND_NOTIFY.split("; ")
    )
    assert end == len(lines) - 1


def test_every_parameter_is_a_variable_the_prelude_sets() -> None:
    lines = _lines()
    prelude = " ".join(lines[: lines.index(_GSET)])
    named = set(re.findall(r"\bAS (\w+)", prelude)) | {"run"}
    used = {name for s in _statements() for name in _VARIABLE.findall(s)}
    assert not any(_PARAMETER.search(s) for s in _statements())
    assert used and used <= named, sorted(used - named)
