"""Where the tests find real servers: environment first, then testcontainers, else a clear error.

Never a silent skip: a test that needs Kafka or PostgreSQL and cannot have them fails, naming
`make up`. The same goes for the secured endpoints (Kafka SASL_SSL and mutual TLS, PostgreSQL
over verified TLS): `Servers.secured()` fails, naming the variables and `make up`, when the
environment does not provide them (testcontainers does not).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path


class NoServers(RuntimeError):
    pass


# Environment variable -> what `make up` puts behind it (see deploy/README.md).
SECURED_ENV = {
    "TEST_KAFKA_SASL_SSL_BOOTSTRAP_SERVERS": "Kafka SASL_SSL (SCRAM-SHA-512) listener, host:port",
    "TEST_KAFKA_MTLS_BOOTSTRAP_SERVERS": "Kafka mutual-TLS listener, host:port",
    "TEST_KAFKA_TLS_DIR": "directory with ca.pem, client.pem and client-key.pem",
    "TEST_DATABASE_TLS_URL": "PostgreSQL URL of the TLS-only role, sslmode=verify-full",
}


@dataclass(frozen=True)
class SecuredServers:
    kafka_sasl_ssl_bootstrap: str
    kafka_mtls_bootstrap: str
    kafka_tls_dir: Path
    kafka_sasl_username: str
    kafka_sasl_password: str
    database_tls_url: str

    @property
    def kafka_ca(self) -> Path:
        return self.kafka_tls_dir / "ca.pem"

    @property
    def kafka_client_cert(self) -> Path:
        return self.kafka_tls_dir / "client.pem"

    @property
    def kafka_client_key(self) -> Path:
        return self.kafka_tls_dir / "client-key.pem"


@dataclass(frozen=True)
class Servers:
    kafka_bootstrap: str
    database_url: str
    kafka_sasl_ssl_bootstrap: str | None = None
    kafka_mtls_bootstrap: str | None = None
    kafka_tls_dir: str | None = None
    database_tls_url: str | None = None
    # The SCRAM user deploy/local/stack.sh creates, unless the environment names another.
    kafka_sasl_username: str = "fulfillment"
    kafka_sasl_password: str = "fulfillment-secret"

    def secured(self) -> SecuredServers:
        """The secured endpoints, or NoServers (a failure, not a skip) naming what is missing."""
        values = {
            "TEST_KAFKA_SASL_SSL_BOOTSTRAP_SERVERS": self.kafka_sasl_ssl_bootstrap,
            "TEST_KAFKA_MTLS_BOOTSTRAP_SERVERS": self.kafka_mtls_bootstrap,
            "TEST_KAFKA_TLS_DIR": self.kafka_tls_dir,
            "TEST_DATABASE_TLS_URL": self.database_tls_url,
        }
        missing = [f"{name} ({SECURED_ENV[name]})" for name, value in values.items() if not value]
        if missing:
            raise NoServers(
                "no secured Kafka/PostgreSQL endpoints for this test: set "
                + "; ".join(missing)
                + " (run `make up` and use `make test`, which sets them)"
            )
        assert self.kafka_sasl_ssl_bootstrap and self.kafka_mtls_bootstrap
        assert self.kafka_tls_dir and self.database_tls_url
        tls_dir = Path(self.kafka_tls_dir)
        absent = [
            str(tls_dir / name)
            for name in ("ca.pem", "client.pem", "client-key.pem")
            if not (tls_dir / name).is_file()
        ]
        if absent:
            raise NoServers(
                f"TEST_KAFKA_TLS_DIR lacks {', '.join(absent)}: run `make up`, which generates them"
            )
        return SecuredServers(
            kafka_sasl_ssl_bootstrap=self.kafka_sasl_ssl_bootstrap,
            kafka_mtls_bootstrap=self.kafka_mtls_bootstrap,
            kafka_tls_dir=tls_dir,
            kafka_sasl_username=self.kafka_sasl_username,
            kafka_sasl_password=self.kafka_sasl_password,
            database_tls_url=self.database_tls_url,
        )


def _secured_from_env() -> dict[str, str]:
    found = {
        "kafka_sasl_ssl_bootstrap": os.environ.get("TEST_KAFKA_SASL_SSL_BOOTSTRAP_SERVERS"),
        "kafka_mtls_bootstrap": os.environ.get("TEST_KAFKA_MTLS_BOOTSTRAP_SERVERS"),
        "kafka_tls_dir": os.environ.get("TEST_KAFKA_TLS_DIR"),
        "database_tls_url": os.environ.get("TEST_DATABASE_TLS_URL"),
        "kafka_sasl_username": os.environ.get("TEST_KAFKA_SASL_USERNAME"),
        "kafka_sasl_password": os.environ.get("TEST_KAFKA_SASL_PASSWORD"),
    }
    return {name: value for name, value in found.items() if value}


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
    secured = _secured_from_env()
    if kafka and database:
        yield Servers(kafka, database, **secured)
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
            broker = KafkaContainer("apache/kafka:4.1.1").with_kraft()
            # As the local stacks: offset commits without the coordinator's 5 ms linger.
            broker = broker.with_env("KAFKA_GROUP_COORDINATOR_APPEND_LINGER_MS", "0")
            container = stack.enter_context(broker)
            kafka = container.get_bootstrap_server()
        if not database:
            pg = stack.enter_context(PostgresContainer("postgres:15", driver=None))
            database = pg.get_connection_url()
        yield Servers(kafka, database, **secured)
