"""A rebuild's runs applied in parts (`replay_runs.parts`): the first by the command itself, each
other by a worker process with its own connection, all at once, so that both cores decide while
PostgreSQL writes. The parts touch disjoint things (customers, payment ids, inputs), so their
runs commute: the database ends as the runs applied one part after another would leave it.

A worker is this module run as `python -m service.reprocess.rebuild_parts`, started before the
topics are read (its start-up overlaps the reads). Its job comes on its stdin, pickled: the
settings, whether to keep the outbox rows, and its runs, with the inputs as the bytes read from
the topics (decoded again there: far cheaper to send than the decoded events). It answers on
its stdout in frames (a length, then a pickle): how many events each run decided, then the
outputs it re-made as bytes (`Remade`), or the error that stopped it.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, BinaryIO, TypeVar
from uuid import UUID

import schemas
from service.adapters.postgres import Connection, PostgresStore
from service.adapters.postgres.pool import connection
from service.bootstrap.factory import Clients
from service.bootstrap.service import tune_garbage_collector
from service.config.settings import Settings
from service.core.batch import BatchResult
from service.core.parking import EventKey, ParkedEvent
from service.core.ports import OutboxRow, Store
from service.core.sessions import Policy
from service.handlers.consume import handle_batch
from service.handlers.sweep import sweep_customers
from service.reprocess.differences import Remade
from service.reprocess.replay_order import InputRecord
from service.reprocess.replay_runs import CloseRun, DecideRun, Run

T = TypeVar("T")
# What `apply_runs` reports after each run: events decided, outputs re-made.
Advance = Callable[[int, int], None]
_LENGTH = 8


class Remaking(PostgresStore):
    """The service's store, except that the outbox rows the handlers write are kept here, as
    the re-made outputs, and go to the database's outbox only when they are to be published
    (a shadow topic); with nobody to wake, there is nothing to announce."""

    def __init__(self, conn: Connection, *, publishing: bool) -> None:
        super().__init__(conn)
        self.publishing = publishing
        self.made: list[Remade] = []

    async def write_result(self, result: BatchResult, outbox: Sequence[OutboxRow]) -> None:
        await super().write_result(result, outbox if self.publishing else [])
        # One row per output, in order (`outbox_rows`): the cause from the decision itself,
        # not parsed back out of the bytes.
        self.made += [
            Remade((e.causation_source, e.causation_id), row.key, row.value)
            for e, row in zip(result.emitted, outbox, strict=True)
        ]

    async def announce_outbox(self) -> None:
        pass


async def apply_runs(
    store: Remaking,
    runs: Sequence[Run],
    policy: Policy,
    poison: dict[EventKey, str],
    advance: Advance,
) -> list[ParkedEvent]:
    """`runs` in order; what they parked (the events parked live, and their customers' later
    events behind them, as live), in order. The re-made outputs are in `store.made`."""
    parked: list[ParkedEvent] = []
    for run in runs:
        before = len(store.made)
        result = await _apply(store, run, policy, poison)
        parked += result.parked
        advance(len(run.records) if isinstance(run, DecideRun) else 0, len(store.made) - before)
    return parked


async def _apply(
    store: Store, run: Run, policy: Policy, poison: dict[EventKey, str]
) -> BatchResult:
    match run:
        case DecideRun(events=events):
            return await handle_batch(store, events, policy=policy, poison=poison)
        case CloseRun(customers=customers, now=now):
            return await sweep_customers(store, customers, now=now, policy=policy)


async def all_of(*awaitables: Awaitable[T]) -> list[T]:
    """All, concurrently; when one fails the others are cancelled, and its error is raised (the
    first's in the order given, when several failed)."""
    tasks = [asyncio.ensure_future(a) for a in awaitables]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in tasks:
        if not task.cancelled() and (error := task.exception()) is not None:
            raise error
    return [task.result() for task in tasks]


class WorkerFailed(Exception):
    """A worker process ended without its answer (its own error went to stderr)."""


class Worker:
    """One worker process, started and waiting for its job."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    async def apply(
        self, settings: Settings, runs: Sequence[Run], publishing: bool, advance: Advance
    ) -> tuple[list[Remade], list[ParkedEvent]]:
        """Raises what stopped the worker (asyncpg's errors as they are), or WorkerFailed."""
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None
        job = pickle.dumps((settings, publishing, [_sent(r) for r in runs]), protocol=5)
        stdin.write(len(job).to_bytes(_LENGTH, "big"))
        stdin.write(job)
        await stdin.drain()
        stdin.close()
        while True:
            try:
                size = int.from_bytes(await stdout.readexactly(_LENGTH), "big")
                kind, *body = pickle.loads(await stdout.readexactly(size))
            except asyncio.IncompleteReadError:
                code = await self.process.wait()
                raise WorkerFailed(f"a rebuild worker exited {code} without its result") from None
            if kind == "advance":
                advance(*body)
            elif kind == "failed":
                raise body[0]
            else:
                made, parked = body
                return [Remade(cause, key, value) for cause, key, value in made], parked


@asynccontextmanager
async def started_workers(count: int) -> AsyncIterator[list[Worker]]:
    """`count` worker processes, ended on the way out (killed if still running)."""
    workers: list[Worker] = []
    try:
        for _ in range(count):
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                __name__,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
            workers.append(Worker(process))
        yield workers
    finally:
        for worker in workers:
            if worker.process.returncode is None:
                worker.process.kill()
            await worker.process.wait()


# ("d", [(value, topic, headers)], None) or ("c", [customer's bytes], now)
_Sent = tuple[str, list[Any], datetime | None]


def _sent(run: Run) -> _Sent:
    """A run as sent to a worker: the inputs as read, the customers as their bytes."""
    if isinstance(run, DecideRun):
        inputs = [(r.value, r.partition.rpartition(":")[0], r.headers) for r in run.records]
        return ("d", inputs, None)
    return ("c", [c.bytes for c in run.customers], run.now)


def _received(sent: _Sent, decoder: schemas.Decoder) -> Run:
    kind, items, now = sent
    if kind == "d":
        decode = decoder.decode
        return DecideRun(tuple(InputRecord(decode(v, t, h), 0, t, 0) for v, t, h in items))
    assert now is not None
    return CloseRun(tuple(UUID(bytes=c) for c in items), now)


def _write(out: BinaryIO, *frame: object) -> None:
    body = pickle.dumps(frame, protocol=5)
    out.write(len(body).to_bytes(_LENGTH, "big") + body)
    out.flush()


async def _work(settings: Settings, publishing: bool, runs: list[Run], out: BinaryIO) -> None:
    pool = await Clients(settings).pool(size=1)
    try:
        async with connection(pool) as conn:
            store = Remaking(conn, publishing=publishing)
            parked = await apply_runs(
                store,
                runs,
                settings.policy,
                {},
                lambda decided, made: _write(out, "advance", decided, made),
            )
            # As plain tuples: a named tuple pickles by a call per item.
            _write(out, "done", [tuple(r) for r in store.made], parked)
    finally:
        await pool.close()


def main() -> None:
    # The frames go to the stdout the command reads; anything else printed goes to stderr.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    job = sys.stdin.buffer.read(int.from_bytes(sys.stdin.buffer.read(_LENGTH), "big"))
    if not job:
        return  # the command needed no worker after all
    settings, publishing, sent = pickle.loads(job)
    from service.observe.logs import configure_logging

    configure_logging(settings.log_level, settings.log_format, secrets=settings.secrets)
    tune_garbage_collector()
    decoder = schemas.Decoder(settings.topics.input_types())
    runs = [_received(s, decoder) for s in sent]
    del sent, job
    try:
        asyncio.run(_work(settings, publishing, runs, out))
    except Exception as error:
        try:
            _write(out, "failed", error)
        except Exception:  # not picklable: its text, which failure_line may still read
            _write(out, "failed", WorkerFailed(f"{type(error).__name__}: {error}"))
        sys.exit(1)


if __name__ == "__main__":
    main()
