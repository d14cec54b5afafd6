"""deploy/docker-compose.managed.yml: the service against a managed cluster, configured by real
settings, with every secret a Docker secret file and none in the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from service.config.settings import ENV_PREFIX, Settings, known_variables
from service.entrypoints.cli import parser

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
COMPOSE: dict[str, Any] = yaml.safe_load((DEPLOY / "docker-compose.managed.yml").read_text("utf-8"))
SERVICES: dict[str, Any] = COMPOSE["services"]
SECRETS_DIR = "/run/secrets/"


def _environment(service: str) -> dict[str, str]:
    return {str(k): str(v) for k, v in SERVICES[service]["environment"].items()}


@pytest.mark.parametrize("service", ["migrate", "fulfillment"])
def test_every_variable_is_a_setting_and_no_secret_is_in_the_environment(service: str) -> None:
    names = set(_environment(service))

    assert names <= known_variables()
    assert not {"FULFILLMENT_DATABASE_URL", "FULFILLMENT_KAFKA_SASL_PASSWORD"} & names
    assert {"FULFILLMENT_DATABASE_URL_FILE", "FULFILLMENT_KAFKA_SASL_PASSWORD_FILE"} <= names


@pytest.mark.parametrize("service", ["migrate", "fulfillment"])
def test_every_file_the_settings_name_is_a_declared_docker_secret(service: str) -> None:
    mounted = set(SERVICES[service]["secrets"])
    paths = {n: v for n, v in _environment(service).items() if v.startswith("/")}

    assert paths
    for name, path in paths.items():
        secret = path.removeprefix(SECRETS_DIR)
        assert path.startswith(SECRETS_DIR) and secret in mounted, name
        assert COMPOSE["secrets"][secret]["file"] == f"./secrets/{secret}"


def test_the_settings_load_from_the_secret_files(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for secret in COMPOSE["secrets"]:
        content = "postgresql://app:pw@db:5432/fulfillment?sslmode=verify-full"
        (tmp_path / secret).write_text(content if secret == "database-url" else "x\n", "utf-8")
    for name in known_variables():
        monkeypatch.delenv(name, raising=False)
    for name, value in _environment("fulfillment").items():
        monkeypatch.setenv(name, value.replace(SECRETS_DIR, f"{tmp_path}/"))

    settings = Settings()

    assert settings.kafka_security_protocol == "SASL_SSL"
    assert settings.kafka_sasl_password is not None
    assert settings.kafka_sasl_password.get_secret_value() == "x"
    assert settings.dsn.startswith("postgresql://app:pw@db:5432/fulfillment?sslmode=verify-full")
    assert settings.create_topics is False
    assert ENV_PREFIX + "DATABASE_SSLROOTCERT" in _environment("fulfillment")


@pytest.mark.parametrize(("service", "command"), [("migrate", "migrate"), ("fulfillment", "run")])
def test_the_services_run_real_cli_commands(service: str, command: str) -> None:
    assert parser().parse_args(SERVICES[service]["command"]).command == command
