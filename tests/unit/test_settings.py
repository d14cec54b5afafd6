"""Configuration: defaults point at the local stack; a bad value names its variable, exit 2."""

from __future__ import annotations

import pytest

from service.config.settings import ConfigurationError, load_settings
from service.entrypoints.cli import main


def test_defaults_point_at_the_local_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FULFILLMENT_KAFKA_BOOTSTRAP_SERVERS", "FULFILLMENT_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings.kafka_bootstrap_servers == "127.0.0.1:9092"
    assert settings.dsn.startswith("postgresql://fulfillment:fulfillment@127.0.0.1:5432/")
    assert settings.topics.input_types() == {
        "payments.completed": "payment.completed",
        "mechanics.accepted": "mechanic.accepted",
        "sessions.ended": "session.ended",
    }


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("FULFILLMENT_REQUEST_TTL_SECONDS", "-1"),
        ("FULFILLMENT_BATCH_SIZE", "lots"),
        ("FULFILLMENT_DATABASE_URL", "mysql://nope"),
        ("FULFILLMENT_LOG_FORMAT", "xml"),
        ("FULFILLMENT_PROCESSES", "0"),
        ("FULFILLMENT_PROCESSES", "65"),
        ("FULFILLMENT_PROCESSES", "many"),
    ],
)
def test_an_invalid_value_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert str(caught.value).startswith(f"{name}: ")
    assert repr(value) in str(caught.value)


@pytest.mark.parametrize(("value", "parsed"), [(None, "auto"), ("AUTO", "auto"), ("3", 3)])
def test_processes_is_auto_unless_a_count_is_given(
    monkeypatch: pytest.MonkeyPatch, value: str | None, parsed: object
) -> None:
    if value is None:
        monkeypatch.delenv("FULFILLMENT_PROCESSES", raising=False)
    else:
        monkeypatch.setenv("FULFILLMENT_PROCESSES", value)
    assert load_settings().processes == parsed


def test_the_command_exits_2_with_one_line_on_invalid_configuration(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FULFILLMENT_SWEEP_INTERVAL_SECONDS", "0")
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "FULFILLMENT_SWEEP_INTERVAL_SECONDS" in err


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    for command in ("run", "migrate", "schemas", "simulate", "replay"):
        assert command in out
