"""What every Kafka client gets (the factory passes it on): the security protocol, SASL credentials
and one TLS context that verifies the brokers (host names included, unless turned off)."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest

from service.bootstrap.factory import Clients
from service.config.kafka_security import KafkaAccess
from service.config.settings import ConfigurationError, Settings

SASL_SSL: dict[str, Any] = {
    "kafka_security_protocol": "SASL_SSL",
    "kafka_sasl_mechanism": "SCRAM-SHA-256",
    "kafka_sasl_username": "fulfillment",
    "kafka_sasl_password": "s3cr3t",
}


def test_plaintext_clients_get_no_tls_and_no_sasl() -> None:
    assert KafkaAccess(Settings()).options() == {
        "bootstrap_servers": "127.0.0.1:9092",
        "security_protocol": "PLAINTEXT",
    }


def test_sasl_ssl_clients_get_the_credentials_and_a_verifying_tls_context() -> None:
    options = KafkaAccess(Settings(**SASL_SSL)).options()
    context = options.pop("ssl_context")

    assert options == {
        "bootstrap_servers": "127.0.0.1:9092",
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "fulfillment",
        "sasl_plain_password": "s3cr3t",
    }
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname is True


def test_every_client_shares_one_tls_context() -> None:
    access = KafkaAccess(Settings(**SASL_SSL))

    assert access.options()["ssl_context"] is access.options()["ssl_context"]


def test_hostname_verification_can_be_turned_off_but_not_certificate_verification() -> None:
    settings = Settings(kafka_security_protocol="SSL", kafka_ssl_check_hostname=False)
    context = KafkaAccess(settings).options()["ssl_context"]

    assert context.check_hostname is False and context.verify_mode == ssl.CERT_REQUIRED


def test_a_ca_file_that_is_no_certificate_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("not a certificate\n", "utf-8")
    settings = Settings(kafka_security_protocol="SSL", kafka_ssl_cafile=tmp_path / "ca.pem")

    with pytest.raises(ConfigurationError, match=r"^FULFILLMENT_KAFKA_SSL_CAFILE: not a PEM CA"):
        KafkaAccess(settings).options()


def test_a_client_certificate_that_does_not_load_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "client.pem").write_text("not a certificate\n", "utf-8")
    settings = Settings(kafka_security_protocol="SSL", kafka_ssl_certfile=tmp_path / "client.pem")

    with pytest.raises(ConfigurationError, match=r"^FULFILLMENT_KAFKA_SSL_CERTFILE, "):
        KafkaAccess(settings).options()


async def test_the_service_s_consumers_hold_an_empty_fetch_only_as_long_as_the_setting_says() -> (
    None
):
    default = Clients(Settings()).consumer()
    shorter = Clients(Settings(kafka_fetch_max_wait_ms=7)).consumer()

    # aiokafka keeps them as given; the broker answers a fetch at its first byte either way.
    assert (default._fetch_max_wait_ms, default._fetch_min_bytes) == (20, 1)
    assert (shorter._fetch_max_wait_ms, shorter._fetch_min_bytes) == (7, 1)
