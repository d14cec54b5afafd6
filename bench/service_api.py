"""The service's internals the benchmarks use, in one place.

A benchmark drives the product through its public surface: the `fulfillment` command line
(`bench/service_proc.py`, `bench/stack.py`), the `schemas` contract and the settings
(`service.config.settings`). What it cannot reach that way (deciding a batch in process, the
stores, the client factory, the simulated streams) it imports from here, and only from here:
`tests/unit/test_architecture.py` holds bench to that, and this module to the list below, so a
refactor of the service changes this file, not the benchmarks.
"""

from service.adapters.kafka.relay import partition_for
from service.adapters.memory_store import MemoryDatabase
from service.adapters.postgres.sql import (
    BEGIN,
    COMMIT_AND_NOTIFY,
    ENSURE_CUSTOMERS,
    LOAD_AND_CLAIM,
    LOCK_CUSTOMERS,
)
from service.adapters.postgres.store import PostgresStore
from service.bootstrap.allocator import return_large_buffers
from service.bootstrap.factory import Clients
from service.bootstrap.service import create_topics, tune_garbage_collector
from service.handlers.consume import handle_batch
from service.handlers.outbox import outbox_row
from service.observe import batch_metrics
from service.observe.logs import configure_logging, log_decisions
from service.simulation.payments import payments_only
from service.simulation.stream import Message, Simulation

__all__ = [
    "BEGIN",
    "COMMIT_AND_NOTIFY",
    "ENSURE_CUSTOMERS",
    "LOAD_AND_CLAIM",
    "LOCK_CUSTOMERS",
    "Clients",
    "MemoryDatabase",
    "Message",
    "PostgresStore",
    "Simulation",
    "batch_metrics",
    "configure_logging",
    "create_topics",
    "handle_batch",
    "log_decisions",
    "outbox_row",
    "partition_for",
    "payments_only",
    "return_large_buffers",
    "tune_garbage_collector",
]
