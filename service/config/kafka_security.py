"""Kafka security in one place: the protocols and SASL mechanisms the settings accept, the checks
of those settings against each other, and what every Kafka client gets from them (the keyword
arguments, with one TLS context shared by all).

A mistake (Kafka credentials for a protocol that sends none, a key without its certificate, the
database CA given twice) is refused at start, not ignored in silence."""

from __future__ import annotations

import ssl
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, Protocol

from aiokafka.helpers import create_ssl_context
from pydantic import SecretStr

from service.config.database_url import sslrootcert_of
from service.config.environment import ConfigurationError, variable

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
PROTOCOL = variable("kafka_security_protocol")
SASL_OPTIONS = ("kafka_sasl_mechanism", "kafka_sasl_username", "kafka_sasl_password")
SSL_OPTIONS = (
    "kafka_ssl_cafile",
    "kafka_ssl_certfile",
    "kafka_ssl_keyfile",
    "kafka_ssl_key_password",
)


class SecuritySettings(Protocol):
    """What of the settings this module reads (service/config/settings.py has them all)."""

    @property
    def kafka_bootstrap_servers(self) -> str: ...
    @property
    def kafka_security_protocol(self) -> str: ...
    @property
    def kafka_sasl_mechanism(self) -> str | None: ...
    @property
    def kafka_sasl_username(self) -> str | None: ...
    @property
    def kafka_sasl_password(self) -> SecretStr | None: ...
    @property
    def kafka_ssl_cafile(self) -> Path | None: ...
    @property
    def kafka_ssl_certfile(self) -> Path | None: ...
    @property
    def kafka_ssl_keyfile(self) -> Path | None: ...
    @property
    def kafka_ssl_key_password(self) -> SecretStr | None: ...
    @property
    def kafka_ssl_check_hostname(self) -> bool: ...
    @property
    def database_url(self) -> SecretStr: ...
    @property
    def database_sslrootcert(self) -> Path | None: ...


def uses_sasl(protocol: str) -> bool:
    return protocol.startswith("SASL_")


def uses_tls(protocol: str) -> bool:
    return protocol in ("SSL", "SASL_SSL")


def check_security(settings: SecuritySettings) -> None:
    """Raises ValueError whose message names the variables concerned."""
    protocol = settings.kafka_security_protocol
    if uses_sasl(protocol):
        missing = [variable(f) for f in SASL_OPTIONS if getattr(settings, f) is None]
        if missing:
            raise ValueError(f"{', '.join(missing)}: required with {PROTOCOL}={protocol}")
    else:
        given = [variable(f) for f in SASL_OPTIONS if getattr(settings, f) is not None]
        if given:
            raise ValueError(
                f"{', '.join(given)}: set, but {PROTOCOL}={protocol} uses no SASL "
                "(SASL_SSL or SASL_PLAINTEXT does)"
            )
    if not uses_tls(protocol):
        given = [variable(f) for f in SSL_OPTIONS if getattr(settings, f) is not None]
        if given:
            raise ValueError(
                f"{', '.join(given)}: set, but {PROTOCOL}={protocol} uses no TLS "
                "(SSL or SASL_SSL does)"
            )
    if settings.kafka_ssl_keyfile is not None and settings.kafka_ssl_certfile is None:
        raise ValueError(
            f"{variable('kafka_ssl_keyfile')}: set without {variable('kafka_ssl_certfile')}, "
            "the client certificate it belongs to"
        )
    if settings.kafka_ssl_key_password is not None and settings.kafka_ssl_certfile is None:
        raise ValueError(
            f"{variable('kafka_ssl_key_password')}: set without a client certificate "
            f"({variable('kafka_ssl_certfile')})"
        )
    url = settings.database_url.get_secret_value()
    if settings.database_sslrootcert is not None and sslrootcert_of(url) is not None:
        raise ValueError(
            f"{variable('database_sslrootcert')}: set, and the database URL has sslrootcert "
            "too: give the CA in one place"
        )


class KafkaAccess:
    """What every Kafka client needs to reach and trust the cluster; the factory
    (service/bootstrap/factory.py) gives it to each client it builds."""

    def __init__(self, settings: SecuritySettings) -> None:
        self._settings = settings

    def options(self) -> dict[str, Any]:
        """aiokafka's keyword arguments; ConfigurationError when the TLS files do not load."""
        settings = self._settings
        protocol = settings.kafka_security_protocol
        options: dict[str, Any] = {
            "bootstrap_servers": settings.kafka_bootstrap_servers,
            "security_protocol": protocol,
        }
        if uses_tls(protocol):
            options["ssl_context"] = self.ssl_context
        if uses_sasl(protocol):
            password = settings.kafka_sasl_password
            options |= {
                "sasl_mechanism": settings.kafka_sasl_mechanism,
                "sasl_plain_username": settings.kafka_sasl_username,
                "sasl_plain_password": password.get_secret_value() if password else None,
            }
        return options

    @cached_property
    def ssl_context(self) -> ssl.SSLContext:
        """Verifies the brokers' certificates (and host names, unless turned off); presents the
        client's certificate when one is configured (mutual TLS). Built once, shared."""
        settings = self._settings
        try:
            context: ssl.SSLContext = create_ssl_context(cafile=settings.kafka_ssl_cafile)
        except (ssl.SSLError, OSError) as error:
            raise ConfigurationError(
                f"{variable('kafka_ssl_cafile')}: not a PEM CA bundle ({_reason(error)})"
            ) from None
        if settings.kafka_ssl_certfile is not None:
            key_password = settings.kafka_ssl_key_password
            try:
                # What create_ssl_context(certfile=, keyfile=, password=) does, apart, so that
                # a bad CA and a bad certificate are told apart.
                context.load_cert_chain(
                    settings.kafka_ssl_certfile,
                    settings.kafka_ssl_keyfile,
                    key_password.get_secret_value() if key_password else None,
                )
            except (ssl.SSLError, OSError) as error:
                raise ConfigurationError(
                    f"{variable('kafka_ssl_certfile')}, {variable('kafka_ssl_keyfile')}: cannot "
                    f"load the client certificate and key ({_reason(error)})"
                ) from None
        context.check_hostname = settings.kafka_ssl_check_hostname
        return context


def _reason(error: OSError) -> str:
    return str(getattr(error, "reason", None) or error.strerror or error)
