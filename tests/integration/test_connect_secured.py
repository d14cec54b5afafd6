"""The service on a secured pipeline, configured only by the documented variables: Kafka over
SASL_SSL (SCRAM-SHA-512) or mutual TLS, PostgreSQL with verify-full; and each refusal ends in one
line naming the system, the address and the cause."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest

import schemas
from service.bootstrap.factory import Clients
from service.bootstrap.fixable import one_line
from service.bootstrap.reach import Unreachable
from service.config.settings import Settings
from tests.commands import fulfillment, make_ca, running
from tests.harness import Outcomes, Producer
from tests.servers import SecuredServers, Servers
from tests.settings_env import environment_of

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture
def secured(servers: Servers) -> SecuredServers:
    return servers.secured()


@pytest.fixture(scope="module")
def foreign_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_ca(tmp_path_factory.mktemp("foreign-ca"))


def sasl_ssl(secured: SecuredServers, **changes: Any) -> dict[str, Any]:
    return {
        "kafka_bootstrap_servers": secured.kafka_sasl_ssl_bootstrap,
        "kafka_security_protocol": "SASL_SSL",
        "kafka_sasl_mechanism": "SCRAM-SHA-512",
        "kafka_sasl_username": secured.kafka_sasl_username,
        "kafka_sasl_password": secured.kafka_sasl_password,
        "kafka_ssl_cafile": secured.kafka_ca,
    } | changes


def mtls(secured: SecuredServers) -> dict[str, Any]:
    return {
        "kafka_bootstrap_servers": secured.kafka_mtls_bootstrap,
        "kafka_security_protocol": "SSL",
        "kafka_ssl_cafile": secured.kafka_ca,
        "kafka_ssl_certfile": secured.kafka_client_cert,
        "kafka_ssl_keyfile": secured.kafka_client_key,
    }


def with_query(url: str, **params: str | None) -> str:
    parts = urlsplit(url)
    query = {k: v for k, v in (dict(parse_qsl(parts.query)) | params).items() if v is not None}
    return urlunsplit(parts._replace(query=urlencode(query)))


def as_files(env: dict[str, str], directory: Path, *names: str) -> dict[str, str]:
    """`env` with each named secret moved into a file, named by NAME_FILE (as on Kubernetes)."""
    moved = dict(env)
    for name in names:
        path = directory / name.lower()
        path.write_text(moved.pop(name) + "\n", "utf-8")
        moved[name + "_FILE"] = str(path)
    return moved


@pytest.mark.parametrize("listener", ["sasl_ssl", "mtls"])
async def test_the_service_fulfils_a_payment_through_a_secured_listener(
    make_settings: Any, secured: SecuredServers, tmp_path: Path, listener: str
) -> None:
    options = sasl_ssl(secured) if listener == "sasl_ssl" else mtls(secured)
    settings: Settings = make_settings(consumers=1, **options)
    env = as_files(
        environment_of(settings),
        tmp_path,
        *(["FULFILLMENT_KAFKA_SASL_PASSWORD"] if listener == "sasl_ssl" else []),
        "FULFILLMENT_DATABASE_URL",
    )
    customer = uuid.uuid4()
    async with Outcomes(settings) as outcomes, Producer(settings) as producer:
        async with running("run", env=env) as service:
            await producer.pay(customer, f"pi_{listener}", time=datetime.now(UTC))
            (created,) = await outcomes.wait_count(1, within=60)
    assert service.finished is not None
    assert service.finished.returncode == 0, service.finished.stderr[-2000:]
    assert created.type == schemas.SESSION_CREATED
    assert isinstance(created.data, schemas.SessionCreated)
    assert created.data.customer_id == customer
    assert secured.kafka_sasl_password not in service.finished.output


async def test_a_wrong_sasl_password_ends_run_in_one_line(
    make_settings: Any, secured: SecuredServers
) -> None:
    settings = make_settings(**sasl_ssl(secured, kafka_sasl_password="not-the-password-42"))

    finished = await fulfillment("run", env=environment_of(settings))

    assert finished.returncode == 1
    (line,) = finished.lines
    assert line.startswith(
        f"fulfillment: cannot connect to Kafka at {secured.kafka_sasl_ssl_bootstrap}: "
        "SASL authentication failed (Authentication failed during authentication due to invalid "
        "credentials with SASL mechanism SCRAM-SHA-512)"
    )
    assert "not-the-password-42" not in finished.output


async def test_a_broker_certificate_from_an_unknown_ca_ends_run_in_one_line(
    make_settings: Any, secured: SecuredServers, foreign_ca: Path
) -> None:
    settings = make_settings(**sasl_ssl(secured, kafka_ssl_cafile=foreign_ca))

    finished = await fulfillment("run", env=environment_of(settings))

    assert finished.returncode == 1
    (line,) = finished.lines
    # The middle is OpenSSL's reason, whose wording depends on the chain the broker sends.
    assert line.startswith(
        f"fulfillment: cannot connect to Kafka at {secured.kafka_sasl_ssl_bootstrap}: TLS: the "
        "server's certificate is not trusted ("
    )
    assert line.endswith("): set FULFILLMENT_KAFKA_SSL_CAFILE to its CA")


async def test_the_mtls_listener_refuses_a_client_without_a_certificate_in_one_line(
    make_settings: Any, secured: SecuredServers
) -> None:
    options = mtls(secured) | {"kafka_ssl_certfile": None, "kafka_ssl_keyfile": None}
    settings = make_settings(**options)

    finished = await fulfillment("replay", "--to-earliest", env=environment_of(settings))

    assert finished.returncode == 1
    (line,) = finished.lines
    assert line.startswith(
        f"fulfillment: cannot connect to Kafka at {secured.kafka_mtls_bootstrap}"
    )
    assert "set FULFILLMENT_KAFKA_SSL_CERTFILE and FULFILLMENT_KAFKA_SSL_KEYFILE" in line


async def test_the_factory_reaches_postgres_with_verify_full_and_the_ca_setting(
    secured: SecuredServers,
) -> None:
    ca = dict(parse_qsl(urlsplit(secured.database_tls_url).query))["sslrootcert"]
    settings = Settings(
        database_url=with_query(secured.database_tls_url, sslrootcert=None),
        database_sslrootcert=ca,
    )
    assert "sslmode=verify-full" in settings.dsn

    pool = await Clients(settings).pool(size=1)
    try:
        row = await pool.fetchrow(
            "SELECT s.ssl, current_user AS who FROM pg_stat_ssl s WHERE s.pid = pg_backend_pid()"
        )
    finally:
        await pool.close()
    assert row is not None and (row["ssl"], row["who"]) == (True, "fulfillment_tls")


async def test_a_plain_connection_of_the_tls_only_role_is_refused_in_one_line(
    secured: SecuredServers,
) -> None:
    settings = Settings(database_url=with_query(secured.database_tls_url, sslmode="disable"))

    with pytest.raises(Unreachable) as refused:
        await Clients(settings).pool(size=1)

    line = one_line(refused.value, settings)
    assert line is not None
    assert line.startswith("cannot connect to PostgreSQL at 127.0.0.1:5432/fulfillment: ")
    assert 'user "fulfillment_tls"' in line and "no encryption" in line
    assert line.endswith("this role may connect over TLS only (sslmode=verify-full)")


async def test_migrate_refuses_a_database_certificate_from_an_unknown_ca_in_one_line(
    secured: SecuredServers, foreign_ca: Path
) -> None:
    settings = Settings(
        database_url=with_query(secured.database_tls_url, sslrootcert=str(foreign_ca))
    )

    finished = await fulfillment("migrate", env=environment_of(settings))

    assert finished.returncode == 1
    (line,) = finished.lines
    assert line.startswith(
        "fulfillment: cannot connect to PostgreSQL at 127.0.0.1:5432/fulfillment"
    )
    assert "certificate is not trusted (unable to get local issuer certificate)" in line
    password = urlsplit(secured.database_tls_url).password
    assert password and password not in finished.output


async def test_the_brokers_certificate_must_name_the_address_unless_hostname_checks_are_off(
    secured: SecuredServers,
) -> None:
    # `127.1` reaches 127.0.0.1 (the resolver's short form), but the certificate names only
    # 127.0.0.1 and localhost: a name it does not list.
    port = secured.kafka_sasl_ssl_bootstrap.rsplit(":", 1)[1]
    elsewhere = sasl_ssl(secured, kafka_bootstrap_servers=f"127.1:{port}")
    settings = Settings(**elsewhere)

    with pytest.raises(Unreachable) as refused:
        await Clients(settings).check_kafka()
    line = one_line(refused.value, settings)
    assert line is not None
    assert line.startswith(
        f"cannot connect to Kafka at 127.1:{port}: TLS: the server's certificate is not for this "
        "address (Hostname mismatch"
    )

    await Clients(Settings(**elsewhere, kafka_ssl_check_hostname=False)).check_kafka()
