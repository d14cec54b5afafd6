"""The two yardsticks the service's drain rate is read against.

(a) `per_event`: what a user writes first: one message, one transaction, one awaited produce
    per output event, one offset commit; the same decision code (`handle_batch` with a batch of
    one). Nothing is batched, so it measures the round trips the service exists to avoid.
(b) `pgbench_ceiling`: PostgreSQL's own ceiling for the SQL one batch of 100 payments runs,
    generated server-side by pgbench with no Python, no Kafka and no relay in the way.
"""

from __future__ import annotations

import asyncio
import glob
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import OffsetAndMetadata, TopicPartition

import schemas
from bench.service_api import (
    BEGIN,
    COMMIT_AND_NOTIFY,
    ENSURE_CUSTOMERS,
    LOAD_AND_CLAIM,
    LOCK_CUSTOMERS,
    PostgresStore,
    handle_batch,
)
from service.config.settings import Settings

# Read and delete what the handler just wrote to the outbox, as a user without a relay would.
TAKE_OUTBOX = "DELETE FROM outbox RETURNING seq, key, value"


class Stalled(Exception):
    """Nothing arrived for the stall limit: the figure would be meaningless."""


@dataclass(frozen=True, slots=True)
class PerEvent:
    events: int
    seconds: float  # from the first message received to the last offset committed
    steps_ms: dict[str, float]  # mean milliseconds per event in each step

    @property
    def rate(self) -> float:
        return self.events / self.seconds


async def per_event(settings: Settings, n: int, *, stall: float = 60.0) -> PerEvent:
    """Consumes `n` messages already on `settings.topic_payments`, one at a time.

    Raises Stalled when no message comes for `stall` seconds, asyncpg/aiokafka errors as they
    come (a reference that failed halfway is no reference)."""
    policy = settings.policy
    decoder = schemas.Decoder(settings.topics.input_types())
    consumer = AIOKafkaConsumer(
        settings.topic_payments,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=settings.group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    # What a user writes first (as tests/harness.py does): idempotent, so acks=all like the
    # service's relay, and otherwise aiokafka's defaults (no linger).
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers, enable_idempotence=True
    )
    conn = await asyncpg.connect(settings.dsn)
    store = PostgresStore(conn)
    await consumer.start()
    await producer.start()
    steps = dict.fromkeys(("consume", "decide", "outbox", "produce", "commit"), 0.0)
    try:
        done, first = 0, 0.0
        while done < n:
            began = time.perf_counter()
            try:
                message = await asyncio.wait_for(consumer.getone(), stall)
            except TimeoutError:
                raise Stalled(f"per-event reference: nothing for {stall:.0f} s at {done}") from None
            mark = time.perf_counter()
            if done == 0:
                first = mark
            else:
                steps["consume"] += mark - began
            event = decoder.decode(message.value, message.topic)
            await handle_batch(store, [event], policy=policy)
            mark = _lap(steps, "decide", mark)
            rows = sorted(await conn.fetch(TAKE_OUTBOX), key=lambda r: r["seq"])
            mark = _lap(steps, "outbox", mark)
            for row in rows:
                await producer.send_and_wait(
                    settings.topic_sessions, value=row["value"], key=row["key"]
                )
            mark = _lap(steps, "produce", mark)
            partition = TopicPartition(message.topic, message.partition)
            await consumer.commit({partition: OffsetAndMetadata(message.offset + 1, "")})
            _lap(steps, "commit", mark)
            done += 1
        ms = {k: v / done * 1000 for k, v in steps.items()}
        return PerEvent(done, time.perf_counter() - first, ms)
    finally:
        await producer.stop()
        await consumer.stop()
        await conn.close()


def _lap(steps: dict[str, float], step: str, since: float) -> float:
    now = time.perf_counter()
    steps[step] += now - since
    return now


# One pgbench "transaction" = one batch of 100 payments from 100 new customers: what
# handle_batch has the store send for it, in the store's own statements (`sql`) with pgbench's
# variables for their parameters (`_bound`). Its 200 ids and 300 rows are over the limits of
# the store's one-round-trip forms (sql.LITERAL_IDS_MAX, sql.WRITE_ROWS_MAX), as a drain's
# batches of hundreds are: the customers' lock rows in a commit of their own that does not wait
# for the WAL flush, BEGIN, the lock, the claim with the snapshot's read in one statement, then
# sessions, payments and outbox rows (~600-byte values) as three INSERTs where the store sends
# three COPYs (pgbench sends no COPY data), and the COMMIT with the notification after it in
# one round trip, as in an instance whose relay does not lead (the leader's commits notify
# nobody): `-M prepared` sends no statements joined in one message, so a pipeline sends them.
# Ids are random per run (gen_random_uuid, md5(random())); sessions and payments share ids.
# Arrays are passed as parameters, as asyncpg passes them: a subquery in their place once made
# the payments lookup a sequential scan under a plan cached while the table was empty.
_PARAMETER = re.compile(r"\$([0-9]+)")


def _bound(statement: str, *variables: str) -> str:
    """`statement` with its parameters $1, $2, ... as the pgbench variables named, in order."""
    return _PARAMETER.sub(lambda m: ":" + variables[int(m[1]) - 1], statement)


# Its statements one a line, each sent on its own in the pipeline.
_COMMIT_AND_NOTIFY = ";\n".join(COMMIT_AND_NOTIFY.split("; "))
PGBENCH_SCRIPT = f"""\
SELECT (SELECT array_agg(c ORDER BY c) FROM \
(SELECT gen_random_uuid() AS c FROM generate_series(1, 100)) AS g) AS cs, run, \
(SELECT array_agg('pi_' || run || '_' || i) FROM generate_series(1, 100) AS i) AS pids, \
(SELECT array_agg('evt_' || run || '_' || i) FROM generate_series(1, 100) AS i) AS eids, \
array_fill('payment-pipeline'::text, ARRAY[100]) AS sources, '{{}}' AS named \
FROM (SELECT md5(random()::text) AS run) AS r
\\gset
{_bound(ENSURE_CUSTOMERS, "cs")};
{BEGIN};
{_bound(LOCK_CUSTOMERS, "cs")};
{_bound(LOAD_AND_CLAIM, "cs", "named", "pids", "sources", "eids")};
INSERT INTO sessions (id, customer_id, payment_id, session_type, status, created_at, \
expires_at, created_event_id) \
SELECT md5('s' || :run || o)::uuid, c, 'pi_' || :run || '_' || o, 'video', 'waiting', now(), \
now() + interval '15 minutes', md5('e' || :run || o)::uuid \
FROM unnest(:cs::uuid[]) WITH ORDINALITY AS u(c, o);
INSERT INTO payments (payment_id, customer_id, event_id, outcome, session_id) \
SELECT 'pi_' || :run || '_' || o, c, 'evt_' || :run || '_' || o, 'created', \
md5('s' || :run || o)::uuid FROM unnest(:cs::uuid[]) WITH ORDINALITY AS u(c, o);
INSERT INTO outbox (event_id, key, value) \
SELECT md5('o' || :run || o)::uuid, convert_to(c::text, 'UTF8'), \
convert_to(repeat(md5(:run || o), 19), 'UTF8') \
FROM unnest(:cs::uuid[]) WITH ORDINALITY AS u(c, o);
\\startpipeline
{_COMMIT_AND_NOTIFY};
\\endpipeline
"""
EVENTS_PER_TRANSACTION = 100
_TPS = re.compile(r"^tps = ([0-9.]+) \(without initial connection time\)", re.MULTILINE)


def find_pgbench() -> str | None:
    found = shutil.which("pgbench")
    if found:
        return found
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pgbench"))
    return candidates[-1] if candidates else None


@dataclass(frozen=True, slots=True)
class Ceiling:
    tps: float
    command: str

    @property
    def rate(self) -> float:
        return self.tps * EVENTS_PER_TRANSACTION


# The service's tables, analysed after the warm-up (naming them skips the shared catalogs,
# which only a superuser may analyse).
ANALYZE_TABLES = "ANALYZE customers, sessions, payments, processed_events, outbox"
WARM_UP_TRANSACTIONS = 20


async def pgbench_ceiling(
    pgbench: str, dsn: str, *, seconds: int = 15, clients: int = 2
) -> Ceiling:
    """Runs the script against `dsn` (a migrated scratch database) with prepared statements, as
    asyncpg does. Raises RuntimeError with pgbench's output when it fails or reports no tps.

    A short warm-up and an ANALYZE come first. Without statistics, the plan PostgreSQL caches
    for a prepared statement after five runs is the plan for an empty table: the payments
    lookup becomes a sequential scan that gets slower as the table grows, and the figure drops
    from about 26,000 to 5,000 events/s depending on the moment autovacuum analyses the table."""
    with tempfile.TemporaryDirectory(prefix="bench-pgbench-") as tmp:
        script = Path(tmp) / "batch_of_100.sql"
        script.write_text(PGBENCH_SCRIPT)
        warm = ["-n", "-M", "prepared", "-c", "1", "-t", str(WARM_UP_TRANSACTIONS)]
        await _pgbench(pgbench, [*warm, "-f", str(script), dsn], within=60)
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(ANALYZE_TABLES)
        finally:
            await conn.close()
        args = ["-n", "-M", "prepared", "-c", str(clients), "-j", str(clients)]
        args += ["-T", str(seconds), "-f", str(script)]
        text = await _pgbench(pgbench, [*args, dsn], within=seconds + 60)
    match = _TPS.search(text)
    if not match:
        raise RuntimeError(f"pgbench reported no tps:\n{text}")
    shown = " ".join(["pgbench", *args[:-1], "<script>", "<scratch db>"])
    return Ceiling(float(match[1]), shown)


async def _pgbench(pgbench: str, args: list[str], *, within: float) -> str:
    """pgbench's output. Raises RuntimeError when it fails or runs over `within` seconds."""
    process = await asyncio.create_subprocess_exec(
        pgbench, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), within)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise RuntimeError(f"pgbench did not finish within {within:.0f} s") from None
    text = output.decode(errors="replace")
    if process.returncode != 0:
        raise RuntimeError(f"pgbench failed (exit {process.returncode}):\n{text}")
    return text
