"""Where the tests find real servers: environment first, then testcontainers, else a clear error.

Never a silent skip: a test that needs Kafka or PostgreSQL and cannot have them fails, naming
`make up`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class Servers:
    kafka_bootstrap: str
    database_url: str


class NoServers(RuntimeError):
    pass


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()
        return True
    except Exception:
        return False


@contextmanager
def provide() -> Iterator[Servers]:
    kafka = os.environ.get("TEST_KAFKA_BOOTSTRAP_SERVERS")
    database = os.environ.get("TEST_DATABASE_URL")
    if kafka and database:
        yield Servers(kafka, database)
        return
    if not _docker_answers():
        raise NoServers(
            "no Kafka/PostgreSQL for the tests: set TEST_KAFKA_BOOTSTRAP_SERVERS and "
            "TEST_DATABASE_URL (run `make up` and use `make test`), or start a Docker daemon "
            "for testcontainers"
        )
    from testcontainers.kafka import KafkaContainer
    from testcontainers.postgres import PostgresContainer

    with ExitStack() as stack:
        if not kafka:
            container = stack.enter_context(KafkaContainer("apache/kafka:4.1.1").with_kraft())
            kafka = container.get_bootstrap_server()
        if not database:
            pg = stack.enter_context(PostgresContainer("postgres:15", driver=None))
            database = pg.get_connection_url()
        yield Servers(kafka, database)
