"""Security settings: Kafka TLS and SASL, PostgreSQL TLS, secrets from files, and configuration
errors that name the variable, suggest the setting meant, and never echo a secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.config.settings import ENV_PREFIX, ConfigurationError, Settings, load_settings
from service.entrypoints.cli import main

PASSWORD = "s3cr3t-Pa55"
URL = f"postgresql://fulfillment:{PASSWORD}@db.example.internal:5432/fulfillment?sslmode=require"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.upper().startswith(ENV_PREFIX):
            monkeypatch.delenv(name)


@pytest.fixture
def pem(tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    path.write_text("-----BEGIN CERTIFICATE-----\n", "utf-8")
    return path


def refusal(monkeypatch: pytest.MonkeyPatch, **variables: str) -> str:
    for name, value in variables.items():
        monkeypatch.setenv(ENV_PREFIX + name, value)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    return str(caught.value)


def test_a_misspelt_variable_is_refused_naming_the_setting_it_resembles(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    message = refusal(monkeypatch, BATCH_SZE="100")

    assert message == (
        "FULFILLMENT_BATCH_SZE: not a setting (did you mean FULFILLMENT_BATCH_SIZE?)"
    )


def test_a_variable_resembling_no_setting_is_refused_by_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    message = refusal(monkeypatch, ZZZ="1")

    assert message.startswith("FULFILLMENT_ZZZ: not a setting")


def test_the_command_exits_2_naming_an_unknown_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FULFILLMENT_KAFKA_SASL_PASWORD", PASSWORD)

    assert main(["migrate"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "FULFILLMENT_KAFKA_SASL_PASWORD" in err and "FULFILLMENT_KAFKA_SASL_PASSWORD?" in err
    assert PASSWORD not in err


@pytest.mark.parametrize("level", ["debug", "Info", "WARNING", "error"])
def test_the_log_level_is_case_insensitive(monkeypatch: pytest.MonkeyPatch, level: str) -> None:
    monkeypatch.setenv("FULFILLMENT_LOG_LEVEL", level)

    assert load_settings().log_level == level.upper()


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])

    assert exited.value.code == 0
    assert capsys.readouterr().out == "fulfillment 0.1.0\n"


def test_a_secret_is_read_from_its_file_less_one_trailing_newline(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "url").write_text(URL + "\n", "utf-8")
    (tmp_path / "password").write_text(PASSWORD + "\n\n", "utf-8")
    monkeypatch.setenv("FULFILLMENT_DATABASE_URL_FILE", str(tmp_path / "url"))
    monkeypatch.setenv("FULFILLMENT_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("FULFILLMENT_KAFKA_SASL_MECHANISM", "scram-sha-512")
    monkeypatch.setenv("FULFILLMENT_KAFKA_SASL_USERNAME", "fulfillment")
    monkeypatch.setenv("FULFILLMENT_KAFKA_SASL_PASSWORD_FILE", str(tmp_path / "password"))

    settings = load_settings()

    assert settings.dsn == URL
    assert settings.kafka_sasl_mechanism == "SCRAM-SHA-512"
    assert settings.kafka_sasl_password is not None
    # Only one newline is the file's ending; the second belongs to the value.
    assert settings.kafka_sasl_password.get_secret_value() == PASSWORD + "\n"
    assert PASSWORD not in repr(settings) and PASSWORD not in str(settings)


def test_a_value_given_both_directly_and_as_a_file_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "url").write_text(URL, "utf-8")
    message = refusal(monkeypatch, DATABASE_URL=URL, DATABASE_URL_FILE=str(tmp_path / "url"))

    assert message == (
        "FULFILLMENT_DATABASE_URL and FULFILLMENT_DATABASE_URL_FILE are both set: set only one"
    )


def test_a_secret_file_that_cannot_be_read_is_refused_naming_its_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere"
    message = refusal(monkeypatch, DATABASE_URL_FILE=str(missing))

    assert message == (
        f"FULFILLMENT_DATABASE_URL_FILE: cannot read {missing}: No such file or directory"
    )


def test_an_invalid_topic_does_not_echo_the_database_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    message = refusal(monkeypatch, DATABASE_URL=URL, TOPIC_DLQ="payments.completed")

    assert message.startswith("FULFILLMENT_TOPIC_*: topic names must all differ")
    assert PASSWORD not in message


def test_an_invalid_database_url_is_shown_with_its_password_masked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    message = refusal(monkeypatch, DATABASE_URL=URL.replace("postgresql:", "postgresql+asyncpg:"))

    assert message.startswith("FULFILLMENT_DATABASE_URL: the scheme is postgresql+asyncpg://")
    assert "write postgresql://" in message
    assert "fulfillment:***@db.example.internal" in message
    assert PASSWORD not in message


def test_a_bogus_sslmode_is_refused_listing_the_valid_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    message = refusal(monkeypatch, DATABASE_URL=URL.replace("require", "strict"))

    modes = "disable, allow, prefer, require, verify-ca, verify-full"
    assert f"sslmode=strict is not one of {modes}" in message
    assert PASSWORD not in message


def test_sasl_needs_a_mechanism_a_username_and_a_password(monkeypatch: pytest.MonkeyPatch) -> None:
    message = refusal(monkeypatch, KAFKA_SECURITY_PROTOCOL="SASL_SSL")

    assert message == (
        "FULFILLMENT_KAFKA_SASL_MECHANISM, FULFILLMENT_KAFKA_SASL_USERNAME, "
        "FULFILLMENT_KAFKA_SASL_PASSWORD: required with "
        "FULFILLMENT_KAFKA_SECURITY_PROTOCOL=SASL_SSL"
    )


def test_sasl_credentials_for_a_protocol_without_sasl_are_refused_not_ignored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    message = refusal(monkeypatch, KAFKA_SASL_USERNAME="fulfillment", KAFKA_SASL_PASSWORD=PASSWORD)

    assert message.startswith(
        "FULFILLMENT_KAFKA_SASL_USERNAME, FULFILLMENT_KAFKA_SASL_PASSWORD: set, but "
        "FULFILLMENT_KAFKA_SECURITY_PROTOCOL=PLAINTEXT uses no SASL"
    )
    assert PASSWORD not in message


def test_tls_files_for_a_protocol_without_tls_are_refused(
    monkeypatch: pytest.MonkeyPatch, pem: Path
) -> None:
    message = refusal(monkeypatch, KAFKA_SSL_CAFILE=str(pem))

    assert message.startswith("FULFILLMENT_KAFKA_SSL_CAFILE: set, but ")


def test_a_ca_file_that_does_not_exist_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    message = refusal(
        monkeypatch, KAFKA_SECURITY_PROTOCOL="SSL", KAFKA_SSL_CAFILE=str(tmp_path / "ca.pem")
    )

    assert message == f"FULFILLMENT_KAFKA_SSL_CAFILE: no such file (got '{tmp_path / 'ca.pem'}')"


def test_a_client_key_without_its_certificate_is_refused(
    monkeypatch: pytest.MonkeyPatch, pem: Path
) -> None:
    message = refusal(monkeypatch, KAFKA_SECURITY_PROTOCOL="SSL", KAFKA_SSL_KEYFILE=str(pem))

    assert message.startswith(
        "FULFILLMENT_KAFKA_SSL_KEYFILE: set without FULFILLMENT_KAFKA_SSL_CERTFILE"
    )


def test_an_unknown_security_protocol_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    message = refusal(monkeypatch, KAFKA_SECURITY_PROTOCOL="TLS")

    assert message.startswith("FULFILLMENT_KAFKA_SECURITY_PROTOCOL: Input should be 'PLAINTEXT'")


def test_the_database_ca_setting_joins_the_url_for_asyncpg(
    monkeypatch: pytest.MonkeyPatch, pem: Path
) -> None:
    monkeypatch.setenv("FULFILLMENT_DATABASE_URL", URL.replace("require", "verify-full"))
    monkeypatch.setenv("FULFILLMENT_DATABASE_SSLROOTCERT", str(pem))

    settings = load_settings()

    assert settings.dsn == URL.replace("require", "verify-full") + f"&sslrootcert={pem}"
    assert settings.database_address == "db.example.internal:5432/fulfillment"


def test_the_database_ca_in_both_the_url_and_the_setting_is_refused(
    monkeypatch: pytest.MonkeyPatch, pem: Path
) -> None:
    message = refusal(
        monkeypatch, DATABASE_URL=f"{URL}&sslrootcert={pem}", DATABASE_SSLROOTCERT=str(pem)
    )

    assert message.startswith("FULFILLMENT_DATABASE_SSLROOTCERT: set, and the database URL has")


def test_hostname_verification_is_on_unless_turned_off() -> None:
    assert Settings().kafka_ssl_check_hostname is True
