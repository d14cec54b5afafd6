"""Failures a person can fix, as the one line every command prints for them (exit 1): which
system, at which address, and why, with the variable to look at. Anything else is a bug and keeps
its traceback.

The causes come from the factory (`Unreachable`, raised by `Clients.pool()` and
`Clients.check_kafka()`, carrying asyncpg's or aiokafka's own error), so the system is known,
never guessed from an exception type an unrelated `OSError` could share.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import sys

import asyncpg
from aiokafka.errors import (
    KafkaConnectionError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)

from service.adapters.kafka.admin import TopicNotCreated
from service.adapters.postgres.durability import NoSynchronousStandby
from service.adapters.postgres.migrate import DatabaseBehind
from service.bootstrap.reach import Unreachable
from service.config.kafka_security import uses_tls
from service.config.redaction import mask_urls_in
from service.config.settings import Settings
from service.observe.tracing import TracingUnavailable

KAFKA_CA = "FULFILLMENT_KAFKA_SSL_CAFILE"
POSTGRES_CA = "FULFILLMENT_DATABASE_SSLROOTCERT (or sslrootcert in the URL)"


PROGRAM = "fulfillment"


def print_error(message: str, *, command: str | None = None) -> None:
    """The one error line on stderr: `fulfillment: ...`, or `fulfillment COMMAND: ...` for a
    command's own refusal. The command line and the instances the supervisor starts print it."""
    prefix = PROGRAM if command is None else f"{PROGRAM} {command}"
    print(f"{prefix}: {message}", file=sys.stderr)


def one_line(error: BaseException, settings: Settings) -> str | None:
    """The message for a failure a person can act on, or None for a bug: one line, whatever
    the libraries put in their messages (asyncpg adds a HINT line), and no secret in it."""
    line = _line(error, settings)
    return None if line is None else mask_urls_in(" ".join(line.split()), settings.secrets)


def _line(error: BaseException, settings: Settings) -> str | None:
    if isinstance(error, Unreachable):
        if error.system == "Kafka":
            specific = kafka_cause(error.cause, settings)
        else:
            specific = postgres_cause(error.cause)
        why = specific or network_cause(error.cause) or _text(error.cause)
        return f"cannot connect to {error.system} at {error.address}: {why}"
    if isinstance(error, asyncpg.InsufficientPrivilegeError):
        return (
            f"PostgreSQL at {settings.database_address} refused: {error}: the role in "
            "FULFILLMENT_DATABASE_URL lacks a privilege the command needs"
        )
    if isinstance(error, KafkaConnectionError):
        # A client that could not bootstrap after the start-up check had passed.
        return f"cannot connect to Kafka at {settings.kafka_bootstrap_servers}: {error}"
    if isinstance(
        error, DatabaseBehind | TracingUnavailable | NoSynchronousStandby | TopicNotCreated
    ):
        return str(error)
    if isinstance(error, OSError):
        # Not a connection the factory made (say, the HTTP port taken): its own message.
        return str(error)
    return None


def kafka_cause(error: BaseException, settings: Settings) -> str | None:
    protocol = settings.kafka_security_protocol
    if isinstance(error, SaslAuthenticationFailed):
        return (
            f"SASL authentication failed ({_broker_message(error)}): check "
            "FULFILLMENT_KAFKA_SASL_USERNAME and FULFILLMENT_KAFKA_SASL_PASSWORD"
        )
    if isinstance(error, UnsupportedSaslMechanismError):
        return (
            f"the broker does not accept SASL mechanism {settings.kafka_sasl_mechanism} "
            "(FULFILLMENT_KAFKA_SASL_MECHANISM) on this listener"
        )
    if isinstance(error, ssl.SSLCertVerificationError):
        return tls_verify_cause(
            error, ca=KAFKA_CA, check_hostname="FULFILLMENT_KAFKA_SSL_CHECK_HOSTNAME=false"
        )
    if isinstance(error, KafkaConnectionError):
        closed_by = error.__cause__
        if isinstance(closed_by, ssl.SSLError) and "CERTIFICATE" in str(closed_by):
            return (
                "the broker refused the TLS connection for want of a client certificate it "
                f"trusts ({closed_by.reason}): set FULFILLMENT_KAFKA_SSL_CERTFILE and "
                "FULFILLMENT_KAFKA_SSL_KEYFILE"
            )
        if isinstance(closed_by, asyncio.IncompleteReadError):
            return (
                "the broker closed the connection after the first request: does this listener "
                f"speak FULFILLMENT_KAFKA_SECURITY_PROTOCOL={protocol}?"
            )
        return _text(error)
    if isinstance(error, ConnectionResetError | ssl.SSLError) and uses_tls(protocol):
        return (
            f"the TLS handshake failed ({_text(error) or 'connection reset'}): is this a TLS "
            f"listener, as FULFILLMENT_KAFKA_SECURITY_PROTOCOL={protocol} says?"
        )
    return None


def postgres_cause(error: BaseException) -> str | None:
    if isinstance(error, ssl.SSLCertVerificationError):
        return tls_verify_cause(error, ca=POSTGRES_CA, check_hostname="sslmode=verify-ca")
    text = _text(error)
    if type(error).__name__ == "InvalidPasswordError":
        return f"{text}: check the user and password in FULFILLMENT_DATABASE_URL"
    if "root certificate file" in text:
        return (
            "sslmode=verify-ca/verify-full needs the CA that signed the server's certificate: "
            f"set {POSTGRES_CA}"
        )
    if "no encryption" in text:
        return f"{text}: this role may connect over TLS only (sslmode=verify-full)"
    return None


def tls_verify_cause(error: ssl.SSLCertVerificationError, *, ca: str, check_hostname: str) -> str:
    detail = error.verify_message or _text(error)
    if "Hostname mismatch" in detail or "IP address mismatch" in detail:
        return (
            f"TLS: the server's certificate is not for this address ({detail}): connect by a "
            f"name the certificate lists, or (not recommended) {check_hostname}"
        )
    return f"TLS: the server's certificate is not trusted ({detail}): set {ca} to its CA"


def network_cause(error: BaseException) -> str | None:
    if isinstance(error, ConnectionRefusedError):
        return "connection refused (is it running and listening there?)"
    if isinstance(error, socket.gaierror):
        return f"unknown host ({error.strerror})"
    if isinstance(error, TimeoutError):
        return "no answer in time (a firewall, or the wrong address?)"
    return None


def _text(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror and not isinstance(error, ssl.SSLError):
        return error.strerror
    return str(error) or type(error).__name__


def _broker_message(error: BaseException) -> str:
    """aiokafka's broker errors read `[Error 58] Name: message`; the message is what helps."""
    text = str(error)
    return text.split(": ", 1)[1] if text.startswith("[Error ") and ": " in text else text
