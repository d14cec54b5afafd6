"""The one line for each connection failure: the system, the address, the cause, the variable to
look at; one line even when the library's message has several; no password."""

from __future__ import annotations

import asyncio
import socket
import ssl

import asyncpg
import pytest
from aiokafka.errors import KafkaConnectionError, SaslAuthenticationFailed

from service.bootstrap.fixable import one_line
from service.bootstrap.reach import Unreachable
from service.config.settings import Settings

SETTINGS = Settings(
    kafka_bootstrap_servers="broker:9094",
    kafka_security_protocol="SASL_SSL",
    kafka_sasl_mechanism="SCRAM-SHA-512",
    kafka_sasl_username="app",
    kafka_sasl_password="hunter2",
    database_url="postgresql://app:hunter2@db:5432/fulfillment?sslmode=verify-full",
)


def untrusted(verify_message: str) -> ssl.SSLCertVerificationError:
    error = ssl.SSLCertVerificationError(1, f"[SSL: CERTIFICATE_VERIFY_FAILED] {verify_message}")
    error.verify_message = verify_message
    return error


def closed_by(cause: BaseException) -> KafkaConnectionError:
    error = KafkaConnectionError("Connection at broker:9094 closed")
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(
    ("system", "cause", "expected"),
    [
        (
            "Kafka",
            SaslAuthenticationFailed("Authentication failed due to invalid credentials"),
            "cannot connect to Kafka at broker:9094: SASL authentication failed (Authentication "
            "failed due to invalid credentials): check FULFILLMENT_KAFKA_SASL_USERNAME and "
            "FULFILLMENT_KAFKA_SASL_PASSWORD",
        ),
        (
            "Kafka",
            untrusted("unable to get local issuer certificate"),
            "cannot connect to Kafka at broker:9094: TLS: the server's certificate is not "
            "trusted (unable to get local issuer certificate): set FULFILLMENT_KAFKA_SSL_CAFILE "
            "to its CA",
        ),
        (
            "Kafka",
            untrusted("Hostname mismatch, certificate is not valid for 'broker'."),
            "cannot connect to Kafka at broker:9094: TLS: the server's certificate is not for "
            "this address (Hostname mismatch, certificate is not valid for 'broker'.): connect "
            "by a name the certificate lists, or (not recommended) "
            "FULFILLMENT_KAFKA_SSL_CHECK_HOSTNAME=false",
        ),
        (
            "Kafka",
            closed_by(asyncio.IncompleteReadError(b"abc", 100)),
            "cannot connect to Kafka at broker:9094: the broker closed the connection after the "
            "first request: does this listener speak FULFILLMENT_KAFKA_SECURITY_PROTOCOL=SASL_SSL?",
        ),
        (
            "Kafka",
            ConnectionRefusedError(111, "Connect call failed"),
            "cannot connect to Kafka at broker:9094: connection refused (is it running and "
            "listening there?)",
        ),
        (
            "PostgreSQL",
            socket.gaierror(-2, "Name or service not known"),
            "cannot connect to PostgreSQL at db:5432/fulfillment: unknown host (Name or service "
            "not known)",
        ),
        (
            "PostgreSQL",
            asyncpg.InvalidPasswordError('password authentication failed for user "app"'),
            "cannot connect to PostgreSQL at db:5432/fulfillment: password authentication failed "
            'for user "app": check the user and password in FULFILLMENT_DATABASE_URL',
        ),
        (
            "PostgreSQL",
            TimeoutError(),
            "cannot connect to PostgreSQL at db:5432/fulfillment: no answer in time (a firewall, "
            "or the wrong address?)",
        ),
    ],
)
def test_a_connection_failure_is_one_line_naming_system_address_and_cause(
    system: str, cause: BaseException, expected: str
) -> None:
    address = "broker:9094" if system == "Kafka" else SETTINGS.database_address

    assert one_line(Unreachable(system, address, cause), SETTINGS) == expected


def test_a_message_of_several_lines_becomes_one_without_the_password() -> None:
    cause = asyncpg.InterfaceError(
        "cannot use postgresql://app:hunter2@db/fulfillment\nHINT:  try another"
    )

    line = one_line(Unreachable("PostgreSQL", "db:5432/fulfillment", cause), SETTINGS)

    assert line == (
        "cannot connect to PostgreSQL at db:5432/fulfillment: cannot use "
        "postgresql://app:***@db/fulfillment HINT: try another"
    )


def test_a_failure_that_is_no_connection_problem_is_left_to_its_traceback() -> None:
    assert one_line(ValueError("a bug"), SETTINGS) is None


def test_an_os_error_of_no_connection_keeps_its_own_message() -> None:
    taken = OSError(98, "error while attempting to bind on address ('0.0.0.0', 8080)")

    assert one_line(taken, SETTINGS) == (
        "[Errno 98] error while attempting to bind on address ('0.0.0.0', 8080)"
    )


def test_a_configured_secret_is_taken_out_of_a_library_message_wherever_it_is() -> None:
    # An unencoded `&` in `sslpassword=` makes its end a parameter asyncpg sends the server,
    # which names it in its refusal; the Kafka password in a broker's message.
    settings = Settings(
        **(
            dict(SETTINGS)
            | {
                "database_url": "postgresql://app:p%2Fss w0rd@db/fulfillment?sslmode=require"
                "&sslpassword=k3y&s3cret=1",
                "kafka_sasl_password": "kafka-s3cret",
            }
        )
    )
    refused = asyncpg.exceptions.UndefinedObjectError(
        'unrecognized configuration parameter "s3cret"; as written p%2Fss w0rd, read p/ss w0rd'
    )
    broker = SaslAuthenticationFailed("kafka-s3cret is not the password")

    lines = [
        one_line(Unreachable("PostgreSQL", "db:5432/fulfillment", refused), settings),
        one_line(Unreachable("Kafka", "broker:9094", broker), settings),
    ]

    for line in lines:
        assert line is not None
        for secret in ("s3cret", "p%2Fss w0rd", "p/ss w0rd", "kafka-s3cret"):
            assert secret not in line, line
