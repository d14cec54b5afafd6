"""`fulfillment replay` plans the same resets as Kafka's own `kafka-consumer-groups.sh
--reset-offsets`, run from the broker's jars against the same group (`make up` puts them in
`.local/kafka/libs`)."""

from __future__ import annotations

import asyncio
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import TopicPartition

from service.adapters.kafka.admin import committed_offsets, topic_partitions
from service.bootstrap.factory import Clients
from service.config.settings import Settings
from service.entrypoints.replay import replay
from service.reprocess.replay_targets import export_csv
from tests.harness import Producer, payment

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

LIBS = Path(__file__).resolve().parents[2] / ".local" / "kafka" / "libs"
TOOL = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"
PER_PARTITION = 12
BASE = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)  # record timestamps, one second apart
COMMITTED = {0: 10, 1: 7, 2: 12}


def kafka_plan(settings: Settings, *spec: str) -> list[str]:
    """The CSV plan of Kafka's tool, in a dry run."""
    if not any(LIBS.glob("kafka-tools-*.jar")):
        pytest.fail(f"Kafka's jars are not in {LIBS}: run `make up` first")
    command = [
        "java", "-cp", f"{LIBS}/*", TOOL,
        "--bootstrap-server", settings.kafka_bootstrap_servers,
        "--group", settings.group_id,
        "--reset-offsets", *spec, "--dry-run", "--export",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return sorted(line for line in done.stdout.splitlines() if line.count(",") == 2)


async def ours(settings: Settings, capsys: pytest.CaptureFixture[str], **how: Any) -> list[str]:
    capsys.readouterr()
    code = await replay(settings, export=True, **how)
    out = capsys.readouterr().out
    assert code == 0, out
    return sorted(line for line in out.splitlines() if line.count(",") == 2)


async def group_offsets(settings: Settings) -> dict[TopicPartition, int]:
    async with Clients(settings).started_admin() as admin:
        tps = await topic_partitions(admin, list(settings.topics.input_types()))
        found = await committed_offsets(admin, settings.group_id, tps)
    return {tp: found[tp].offset for tp in tps}


async def prepared(make_settings: Any) -> Settings:
    """Payments with known timestamps in each partition, and the group committed at
    different offsets of each; the other input topics empty and uncommitted."""
    settings: Settings = make_settings()
    topic = settings.topic_payments
    async with Producer(settings) as producer:
        for partition in range(3):
            for i in range(PER_PARTITION):
                at = BASE + timedelta(seconds=i)
                value = payment(settings_customer(partition), f"pi-{partition}-{i}", time=at)
                await producer.send(
                    topic, value, partition=partition, timestamp_ms=int(at.timestamp() * 1000)
                )
    consumer = Clients(settings).consumer()
    await consumer.start()
    try:
        tps = {p: TopicPartition(topic, p) for p in range(3)}
        consumer.assign(list(tps.values()))
        await consumer.commit({tps[p]: offset for p, offset in COMMITTED.items()})
    finally:
        await consumer.stop()
    return settings


def settings_customer(partition: int) -> Any:
    import uuid

    return uuid.UUID(int=partition + 1)


CASES = [
    # The earlier forms apply unless told otherwise, as they always did.
    (("--to-earliest",), {"to_earliest": True, "dry_run": True}),
    (("--to-offset", "4"), {"to_offset": 4}),
    (("--to-offset", "99"), {"to_offset": 99}),
    (("--shift-by", "-3"), {"shift_by": -3}),
    (("--shift-by", "-50"), {"shift_by": -50}),
    (
        ("--to-datetime", "2026-03-01T12:00:05.500Z"),
        {"to_datetime": BASE + timedelta(seconds=5.5), "dry_run": True},
    ),
    (("--by-duration", "P9000D"), {"by_duration": timedelta(days=9000)}),
]


@pytest.mark.parametrize(("spec", "how"), CASES, ids=[" ".join(c[0]) for c in CASES])
async def test_a_replay_plan_matches_kafka_s_own_reset_tool(
    make_settings: Any, capsys: pytest.CaptureFixture[str], spec: tuple[str, ...], how: Any
) -> None:
    settings = await prepared(make_settings)
    before = await group_offsets(settings)
    scope = f"{settings.topic_payments}:0,2"

    theirs = await asyncio.to_thread(kafka_plan, settings, *spec, "--topic", scope)
    mine = await ours(settings, capsys, topics=[scope], **how)

    # Never past the committed offset (to-offset 99 is held back where Kafka's tool would skip).
    if "to_offset" in how and how["to_offset"] > min(COMMITTED.values()):
        held = export_csv([(settings.topic_payments, p, COMMITTED[p]) for p in (0, 2)])
        assert mine == held.splitlines()
        assert (
            theirs
            == export_csv(
                [(settings.topic_payments, p, PER_PARTITION) for p in (0, 2)]
            ).splitlines()
        )
    else:
        assert mine == theirs
    assert await group_offsets(settings) == before  # a plan that only reads never commits


async def test_a_replay_with_execute_commits_the_plan_and_without_it_commits_nothing(
    make_settings: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = await prepared(make_settings)
    topic = settings.topic_payments
    before = await group_offsets(settings)

    planned = await ours(settings, capsys, shift_by=-2, topics=[f"{topic}:1"])
    assert await group_offsets(settings) == before
    capsys.readouterr()
    assert await replay(settings, shift_by=-2, topics=[f"{topic}:1"], execute=True) == 0

    after = await group_offsets(settings)
    assert planned == export_csv([(topic, 1, COMMITTED[1] - 2)]).splitlines()
    assert after[TopicPartition(topic, 1)] == COMMITTED[1] - 2
    assert {tp: o for tp, o in after.items() if tp.partition != 1 or tp.topic != topic} == {
        tp: o for tp, o in before.items() if tp.partition != 1 or tp.topic != topic
    }


async def test_a_replay_refuses_a_partition_the_topic_does_not_have(
    make_settings: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = await prepared(make_settings)

    code = await replay(settings, to_offset=0, topics=[f"{settings.topic_payments}:0,7"])

    assert code == 1
    assert f"no such partition: {settings.topic_payments}:7" in capsys.readouterr().err
