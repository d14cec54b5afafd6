"""The three-node Kafka cluster of `make up-cluster`, for tests of partial failure.

Each node is a broker and a KRaft controller; topics get three replicas and
`min.insync.replicas=2` by default (deploy/local/kafka/cluster.properties). Tests find it
through `TEST_KAFKA_CLUSTER_BOOTSTRAP_SERVERS` (`make test` sets it) and stop, kill and start
its brokers with the `deploy/local/stack.sh` that started it: this checkout's, or the one
`TEST_KAFKA_CLUSTER_STACK` names. Without the variable a test using the cluster fails, naming
it: never a silent skip.

A test that stops a broker starts it again before it ends (`brokers_down` does), so the next
test finds the whole cluster.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from tests.servers import NoServers

BOOTSTRAP_ENV = "TEST_KAFKA_CLUSTER_BOOTSTRAP_SERVERS"
STACK_ENV = "TEST_KAFKA_CLUSTER_STACK"
NODES = (1, 2, 3)
THIS_STACK = Path(__file__).resolve().parents[1] / "deploy" / "local" / "stack.sh"


@dataclass(frozen=True)
class PartitionState:
    """One partition as the cluster's metadata has it; `leader` is -1 while there is none."""

    leader: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


@dataclass(frozen=True)
class Cluster:
    bootstrap: str
    stack: Path

    async def stop_broker(self, node: int) -> None:
        """SIGTERM (a controlled shutdown: its leaderships move first); returns once it exited."""
        await self._broker("stop", node)

    async def kill_broker(self, node: int) -> None:
        """SIGKILL; returns once the process is gone. The controller notices when the broker's
        session times out (`broker.session.timeout.ms`, 9 s)."""
        await self._broker("kill", node)

    async def start_broker(self, node: int) -> None:
        """Starts a stopped node; returns once it serves (registered, unfenced, listening). Its
        replicas catch up afterwards: `wait_for_isr` waits for that."""
        await self._broker("start", node)

    @asynccontextmanager
    async def brokers_down(self, *nodes: int, kill: bool = False) -> AsyncIterator[None]:
        """The brokers stopped (or killed), one after another, for the block; however it ends,
        all are started again at once and the block's exit returns once they serve."""
        try:
            for node in nodes:
                if kill:
                    await self.kill_broker(node)
                else:
                    await self.stop_broker(node)
            yield
        finally:
            await self._start_all(nodes)

    async def ensure_whole(self) -> None:
        """Every node running and serving (starts those that are not)."""
        await self._start_all(NODES)

    async def _start_all(self, nodes: tuple[int, ...]) -> None:
        results = await asyncio.gather(
            *(self.start_broker(node) for node in nodes), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def partition(self, topic: str, partition: int) -> PartitionState:
        """The partition's leader, replicas and in-sync replicas, from the metadata."""
        described = await self._admin(lambda admin: admin.describe_topics([topic]))
        for found in described:
            for p in found["partitions"]:
                if found["topic"] == topic and p["partition"] == partition:
                    return PartitionState(p["leader"], tuple(p["replicas"]), tuple(p["isr"]))
        raise LookupError(f"no partition {topic}-{partition} in the cluster's metadata")

    async def leader_of(self, topic: str, partition: int) -> int:
        """The node leading the partition (-1 while none does)."""
        return (await self.partition(topic, partition)).leader

    async def serving_brokers(self) -> set[int]:
        """The nodes the metadata lists as brokers (registered and not fenced)."""
        described = await self._admin(lambda admin: admin.describe_cluster())
        return {broker["node_id"] for broker in described["brokers"]}

    async def wait_for(
        self,
        topic: str,
        partition: int,
        condition: Callable[[PartitionState], bool],
        what: str,
        *,
        within: float = 60.0,
    ) -> PartitionState:
        """Polls the partition's state until `condition` holds; fails naming `what` and the last
        state seen after `within` seconds."""
        deadline = time.monotonic() + within
        while True:
            state = await self.partition(topic, partition)
            if condition(state):
                return state
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{topic}-{partition}: not {what} after {within:.0f} s; last seen {state}"
                )
            await asyncio.sleep(0.25)

    async def wait_for_isr(
        self, topic: str, partition: int, *, size: int | None = None, within: float = 60.0
    ) -> PartitionState:
        """Waits until the partition has `size` in-sync replicas (default: all its replicas,
        i.e. the ISR is full again)."""

        def reached(state: PartitionState) -> bool:
            want = len(state.replicas) if size is None else size
            return state.leader >= 0 and len(state.isr) == want

        what = "with a full ISR" if size is None else f"with {size} in-sync replicas"
        return await self.wait_for(topic, partition, reached, what, within=within)

    async def wait_for_leader(
        self, topic: str, partition: int, *, not_on: int, within: float = 60.0
    ) -> int:
        """Waits until a node other than `not_on` leads the partition; returns it."""
        state = await self.wait_for(
            topic,
            partition,
            lambda s: s.leader >= 0 and s.leader != not_on,
            f"led by a node other than {not_on}",
            within=within,
        )
        return state.leader

    async def _broker(self, action: str, node: int) -> None:
        if node not in NODES:
            raise ValueError(f"no node {node} in the cluster (nodes {NODES})")
        proc = await asyncio.create_subprocess_exec(
            "bash",
            str(self.stack),
            "broker",
            action,
            str(node),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(
                f"`{self.stack} broker {action} {node}` failed (exit {proc.returncode}; it acts "
                f"on the cluster that script started, {STACK_ENV} names another):\n"
                + output.decode(errors="replace")
            )

    async def _admin(self, call: Callable[[AIOKafkaAdminClient], Any]) -> Any:
        """One metadata call on a fresh client, tried again while a node it picked is down."""
        deadline = time.monotonic() + 30
        while True:
            admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=5000)
            try:
                await admin.start()
                return await call(admin)
            except KafkaError:
                if time.monotonic() > deadline:
                    raise
            finally:
                await admin.close()
            await asyncio.sleep(0.25)


def provide() -> Cluster:
    """The cluster the environment names, or NoServers (a failure, not a skip)."""
    bootstrap = os.environ.get(BOOTSTRAP_ENV)
    if not bootstrap:
        raise NoServers(
            f"no three-broker Kafka cluster for this test: set {BOOTSTRAP_ENV} "
            "(run `make up-cluster` and use `make test`, which sets it)"
        )
    stack = Path(os.environ.get(STACK_ENV) or THIS_STACK)
    if not stack.is_file():
        raise NoServers(f"{STACK_ENV}={stack}: no such file (the cluster's deploy/local/stack.sh)")
    return Cluster(bootstrap, stack)
