"""The connection security settings checked against each other: a mistake (Kafka credentials for
a protocol that sends none, a key without its certificate, the database CA given twice) is
refused at start, not ignored in silence."""

from __future__ import annotations

from typing import TYPE_CHECKING

from service.config.database_url import sslrootcert_of

if TYPE_CHECKING:
    from service.config.settings import Settings

PREFIX = "FULFILLMENT_"
PROTOCOL = PREFIX + "KAFKA_SECURITY_PROTOCOL"
SASL_OPTIONS = ("kafka_sasl_mechanism", "kafka_sasl_username", "kafka_sasl_password")
SSL_OPTIONS = (
    "kafka_ssl_cafile",
    "kafka_ssl_certfile",
    "kafka_ssl_keyfile",
    "kafka_ssl_key_password",
)


def _variable(field: str) -> str:
    return PREFIX + field.upper()


def uses_sasl(protocol: str) -> bool:
    return protocol.startswith("SASL_")


def uses_tls(protocol: str) -> bool:
    return protocol in ("SSL", "SASL_SSL")


def check_security(settings: Settings) -> None:
    """Raises ValueError whose message names the variables concerned."""
    protocol = settings.kafka_security_protocol
    if uses_sasl(protocol):
        missing = [_variable(f) for f in SASL_OPTIONS if getattr(settings, f) is None]
        if missing:
            raise ValueError(f"{', '.join(missing)}: required with {PROTOCOL}={protocol}")
    else:
        given = [_variable(f) for f in SASL_OPTIONS if getattr(settings, f) is not None]
        if given:
            raise ValueError(
                f"{', '.join(given)}: set, but {PROTOCOL}={protocol} uses no SASL "
                "(SASL_SSL or SASL_PLAINTEXT does)"
            )
    if not uses_tls(protocol):
        given = [_variable(f) for f in SSL_OPTIONS if getattr(settings, f) is not None]
        if given:
            raise ValueError(
                f"{', '.join(given)}: set, but {PROTOCOL}={protocol} uses no TLS "
                "(SSL or SASL_SSL does)"
            )
    if settings.kafka_ssl_keyfile is not None and settings.kafka_ssl_certfile is None:
        raise ValueError(
            f"{_variable('kafka_ssl_keyfile')}: set without {_variable('kafka_ssl_certfile')}, "
            "the client certificate it belongs to"
        )
    if settings.kafka_ssl_key_password is not None and settings.kafka_ssl_certfile is None:
        raise ValueError(
            f"{_variable('kafka_ssl_key_password')}: set without a client certificate "
            f"({_variable('kafka_ssl_certfile')})"
        )
    url = settings.database_url.get_secret_value()
    if settings.database_sslrootcert is not None and sslrootcert_of(url) is not None:
        raise ValueError(
            f"{_variable('database_sslrootcert')}: set, and the database URL has sslrootcert "
            "too: give the CA in one place"
        )
