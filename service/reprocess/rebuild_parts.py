"""A rebuild's runs applied in parts (`replay_runs.parts`): the first by the command itself, each
other by a worker process with its own connection, all at once, so that both cores decide while
PostgreSQL writes. The parts touch disjoint things (customers, payment ids, inputs), so their
runs commute: the database ends as the runs applied one part after another would leave it.

A worker is this module run as `python -m service.reprocess.rebuild_parts`, started before the
topics are read and told the settings at once (its start-up and its connection overlap the
reads). Both ways go frames, a length then a pickle. In: its runs, one frame each, sent while
the command applies its own part, with the inputs as the bytes read from the topics (decoded
again there: far cheaper to send than the decoded events). Out: after each run, how many events
it decided and the outputs it re-made as bytes (`Remade`); at the end what it parked, or the
error that stopped it.
"""

from __future__ import annotations

import asyncio
import fcntl
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
# What a step costs a worker against the command: the worker decodes its inputs again and
# sends its outputs back. Measured on a 200,000-output rebuild with two parts of equal steps:
# the worker's took 1.18 to 1.22 times as long as the command's.
WORKER_STEP_COST = 1.2
_LENGTH = 8
_LIMIT = 2**26  # bytes a frame may hold, at most


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
    """One worker process: told the settings at once, so that it connects while the topics
    are read; then its runs, one frame each, while it applies them."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    def prepare(self, settings: Settings, publishing: bool) -> None:
        """Sent before its runs: it connects meanwhile."""
        assert self.process.stdin is not None
        _write_to(self.process.stdin, settings, publishing)

    async def apply(
        self, runs: Sequence[Run], advance: Advance
    ) -> tuple[list[Remade], list[ParkedEvent]]:
        """Raises what stopped the worker (asyncpg's errors as they are), or WorkerFailed."""
        sending = asyncio.ensure_future(self._send(runs))
        try:
            return await self._receive(advance)
        finally:
            sending.cancel()
            await asyncio.gather(sending, return_exceptions=True)

    async def _send(self, runs: Sequence[Run]) -> None:
        # A run at a time, while this process decides its own part and waits on PostgreSQL:
        # the worker starts on its first run at once.
        stdin = self.process.stdin
        assert stdin is not None
        for run in runs:
            _write_to(stdin, _sent(run))
            await stdin.drain()
        _write_to(stdin, None)
        await stdin.drain()
        stdin.close()

    async def _receive(self, advance: Advance) -> tuple[list[Remade], list[ParkedEvent]]:
        stdout = self.process.stdout
        assert stdout is not None
        made: list[Remade] = []
        while True:
            try:
                size = int.from_bytes(await stdout.readexactly(_LENGTH), "big")
                kind, *body = pickle.loads(await stdout.readexactly(size))
            except asyncio.IncompleteReadError:
                code = await self.process.wait()
                raise WorkerFailed(f"a rebuild worker exited {code} without its result") from None
            if kind == "advance":
                decided, outputs = body
                made += [Remade(cause, key, value) for cause, key, value in outputs]
                advance(decided, len(outputs))
            elif kind == "failed":
                raise body[0]
            else:
                return made, body[0]


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
                limit=_LIMIT,
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


def _frame(*body: object) -> bytes:
    data = pickle.dumps(body if len(body) != 1 else body[0], protocol=5)
    return len(data).to_bytes(_LENGTH, "big") + data


def _write_to(stream: asyncio.StreamWriter, *body: object) -> None:
    stream.write(_frame(*body))


def _write(out: BinaryIO, *frame: object) -> None:
    out.write(_frame(*frame))
    out.flush()


async def _frames() -> AsyncIterator[Any]:
    """What the command sends on stdin, frame by frame."""
    reader = asyncio.StreamReader(limit=_LIMIT)
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer)
    while True:
        try:
            size = int.from_bytes(await reader.readexactly(_LENGTH), "big")
        except asyncio.IncompleteReadError:
            return  # the command needed no worker after all, or is gone
        yield pickle.loads(await reader.readexactly(size))


async def _work(out: BinaryIO) -> None:
    frames = _frames()
    first = await anext(frames, None)
    if first is None:
        return
    settings, publishing = first
    from service.observe.logs import configure_logging

    configure_logging(settings.log_level, settings.log_format, secrets=settings.secrets)
    decoder = schemas.Decoder(settings.topics.input_types())
    pool = await Clients(settings).pool(size=1)
    try:
        async with connection(pool) as conn:
            store = Remaking(conn, publishing=publishing)
            parked: list[ParkedEvent] = []
            while (sent := await anext(frames, None)) is not None:
                run = _received(sent, decoder)
                parked += await apply_runs(store, [run], settings.policy, {}, _no_advance)
                # The outputs as plain tuples: a named tuple pickles by a call per item.
                decided = len(run.records) if isinstance(run, DecideRun) else 0
                _write(out, "advance", decided, [tuple(r) for r in store.made])
                store.made.clear()
            _write(out, "done", parked)
    finally:
        await pool.close()


def _no_advance(decided: int, made: int) -> None:
    pass


def _widen(fd: int) -> None:
    """The pipe of `fd` 1 MiB long instead of 64 KiB (Linux): a run's outputs fit, so the
    worker goes on to its next run while the command, busy with its own part, has not read
    them yet (blocked, a worker spent 1.1 s of a 200,000-output rebuild writing)."""
    try:
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, 1 << 20)
    except OSError:
        pass  # over /proc/sys/fs/pipe-max-size: the pipe keeps its size


def main() -> None:
    # The frames go to the stdout the command reads; anything else printed goes to stderr.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    _widen(out.fileno())
    tune_garbage_collector()
    try:
        asyncio.run(_work(out))
    except Exception as error:
        try:
            _write(out, "failed", error)
        except Exception:  # not picklable: its text, which failure_line may still read
            _write(out, "failed", WorkerFailed(f"{type(error).__name__}: {error}"))
        sys.exit(1)


if __name__ == "__main__":
    main()
