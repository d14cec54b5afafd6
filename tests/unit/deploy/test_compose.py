"""deploy/: the compose stack and the image agree with the settings, the CLI and pyproject.

Nothing here runs Docker; the files are read and checked against the code they configure, so a
renamed setting, a moved port or a changed console script breaks a test instead of a deployment.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from service.config.settings import ENV_PREFIX, Settings
from service.entrypoints.cli import parser

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
COMPOSE: dict[str, Any] = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text("utf-8"))
SERVICES: dict[str, Any] = COMPOSE["services"]
APP_SERVICES = ("migrate", "fulfillment")

# The declared defaults, not Settings(): the test must not depend on this shell's environment.
DEFAULT_KAFKA: str = Settings.model_fields["kafka_bootstrap_servers"].default
DEFAULT_DATABASE = urlsplit(Settings.model_fields["database_url"].default.get_secret_value())
DEFAULT_HTTP_PORT: int = Settings.model_fields["http_port"].default


def _environment(service: str) -> dict[str, str]:
    """Compose accepts a mapping or a list of KEY=VALUE strings."""
    raw = SERVICES[service].get("environment", {})
    if isinstance(raw, list):
        return dict(str(item).split("=", 1) for item in raw)
    return {str(key): str(value) for key, value in raw.items()}


def _published(service: str) -> set[tuple[str, int, int]]:
    """(host ip, host port, container port) for each `[ip:]host:container` short-syntax port."""
    published = set()
    for entry in SERVICES[service].get("ports", []):
        *ip, host, container = str(entry).split(":")
        published.add((ip[0] if ip else "0.0.0.0", int(host), int(container)))
    return published


def _listeners(variable: str) -> dict[str, tuple[str, int]]:
    """`NAME://host:port,...` from the Kafka service's environment -> {NAME: (host, port)}."""
    listeners = {}
    for item in _environment("kafka")[variable].split(","):
        name, address = item.split("://")
        host, port = address.rsplit(":", 1)
        listeners[name] = (host, int(port))
    return listeners


def _final_stage() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile's last stage, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (DEPLOY / "Dockerfile").read_text("utf-8"))
    lines = [line.strip() for line in text.splitlines()]
    instructions = [line.split(maxsplit=1) for line in lines if line and not line.startswith("#")]
    last_from = max(i for i, parts in enumerate(instructions) if parts[0].upper() == "FROM")
    return [(parts[0].upper(), parts[1]) for parts in instructions[last_from:]]


def _instruction(name: str) -> str:
    matches = [arguments for instruction, arguments in _final_stage() if instruction == name]
    assert len(matches) == 1, f"the final stage should have exactly one {name}"
    return matches[0]


@contextmanager
def _health_server(status: int) -> Iterator[int]:
    """A local HTTP server answering /healthz with `status`; yields its port."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status if self.path == "/healthz" else 404)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _healthcheck_on(port: int) -> int:
    """Run the service's compose healthcheck here, against `port`; its exit code."""
    kind, program, flag, code = SERVICES["fulfillment"]["healthcheck"]["test"]
    assert (kind, program, flag) == ("CMD", "python", "-c")
    address = f"http://127.0.0.1:{DEFAULT_HTTP_PORT}/healthz"
    assert address in code
    code = code.replace(address, f"http://127.0.0.1:{port}/healthz")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=30).returncode


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_the_stack_is_kafka_postgres_a_migration_and_the_service() -> None:
    assert set(SERVICES) == {"kafka", "postgres", "migrate", "fulfillment"}
    assert SERVICES["kafka"]["image"] == "apache/kafka:4.1.1"
    assert SERVICES["postgres"]["image"] == "postgres:15"


def test_every_fulfillment_variable_in_the_stack_is_a_setting_the_service_reads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    known = {ENV_PREFIX + field.upper() for field in Settings.model_fields}
    for service in SERVICES:
        used = {name for name in _environment(service) if name.startswith(ENV_PREFIX)}
        assert used <= known, f"{service}: not settings: {sorted(used - known)}"

    for service in APP_SERVICES:
        for name in known:
            monkeypatch.delenv(name, raising=False)
        for name, value in _environment(service).items():
            monkeypatch.setenv(name, value)
        settings = Settings()
        assert settings.kafka_bootstrap_servers == "kafka:19092"
        assert settings.dsn == "postgresql://fulfillment:fulfillment@postgres:5432/fulfillment"


def test_kafka_is_published_on_the_host_at_the_default_bootstrap_address() -> None:
    host, port = DEFAULT_KAFKA.rsplit(":", 1)
    host_listener = next(
        name
        for name, address in _listeners("KAFKA_ADVERTISED_LISTENERS").items()
        if address == (host, int(port))
    )
    bound_port = _listeners("KAFKA_LISTENERS")[host_listener][1]

    assert (host, port) == ("127.0.0.1", "9092")
    assert (host, int(port), bound_port) in _published("kafka")


def test_containers_reach_kafka_by_its_compose_name_on_an_advertised_listener() -> None:
    advertised = _listeners("KAFKA_ADVERTISED_LISTENERS")
    bound = _listeners("KAFKA_LISTENERS")

    for service in APP_SERVICES:
        host, port = _environment(service)["FULFILLMENT_KAFKA_BOOTSTRAP_SERVERS"].rsplit(":", 1)
        assert (host, int(port)) == ("kafka", 19092)
        listener = next(name for name, address in advertised.items() if address == (host, 19092))
        assert bound[listener][1] == 19092  # inside the compose network ports are not mapped


def test_kafka_runs_as_a_single_kraft_node_with_replication_factor_one() -> None:
    environment = _environment("kafka")

    assert environment["KAFKA_PROCESS_ROLES"] == "broker,controller"
    voters = environment["KAFKA_CONTROLLER_QUORUM_VOTERS"]
    assert (environment["KAFKA_NODE_ID"], voters) == ("1", "1@kafka:9093")
    assert _listeners("KAFKA_LISTENERS")["CONTROLLER"][1] == 9093
    assert environment["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    assert environment["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "1"


def test_postgres_is_published_on_the_host_at_the_default_database_url() -> None:
    assert (DEFAULT_DATABASE.hostname, DEFAULT_DATABASE.port) == ("127.0.0.1", 5432)
    assert ("127.0.0.1", 5432, 5432) in _published("postgres")


def test_postgres_creates_the_user_password_and_database_of_the_default_database_url() -> None:
    environment = _environment("postgres")

    assert (environment["POSTGRES_USER"], environment["POSTGRES_PASSWORD"]) == (
        DEFAULT_DATABASE.username,
        DEFAULT_DATABASE.password,
    )
    assert "/" + environment["POSTGRES_DB"] == DEFAULT_DATABASE.path == "/fulfillment"


@pytest.mark.parametrize("service", APP_SERVICES)
def test_the_service_logs_in_to_the_compose_postgres_with_the_default_credentials(
    service: str,
) -> None:
    url = urlsplit(_environment(service)["FULFILLMENT_DATABASE_URL"])

    assert (url.scheme, url.hostname, url.port) == (DEFAULT_DATABASE.scheme, "postgres", 5432)
    assert (url.username, url.password, url.path) == (
        DEFAULT_DATABASE.username,
        DEFAULT_DATABASE.password,
        DEFAULT_DATABASE.path,
    )


def test_the_service_starts_after_kafka_is_healthy_and_the_migration_succeeded() -> None:
    assert SERVICES["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert SERVICES["fulfillment"]["depends_on"] == {
        "kafka": {"condition": "service_healthy"},
        "postgres": {"condition": "service_healthy"},
        "migrate": {"condition": "service_completed_successfully"},
    }


def test_every_service_waited_on_as_healthy_has_a_healthcheck() -> None:
    waited_on = {
        name
        for service in SERVICES.values()
        for name, condition in service.get("depends_on", {}).items()
        if condition["condition"] == "service_healthy"
    }

    assert waited_on == {"kafka", "postgres"}
    for name in waited_on:
        assert SERVICES[name]["healthcheck"]["test"][0] in {"CMD", "CMD-SHELL"}


@pytest.mark.parametrize(("service", "command"), [("migrate", "migrate"), ("fulfillment", "run")])
def test_the_service_containers_run_a_real_cli_command_from_the_repository_image(
    service: str, command: str
) -> None:
    build = SERVICES[service]["build"]

    assert SERVICES[service]["command"] == [command]
    assert parser().parse_args(SERVICES[service]["command"]).command == command
    assert (DEPLOY / build["context"]).resolve() == ROOT
    assert (ROOT / build["dockerfile"]).resolve() == DEPLOY / "Dockerfile"


def test_the_image_entrypoint_is_the_console_script_declared_in_pyproject() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]["scripts"]

    assert scripts == {"fulfillment": "service.entrypoints.cli:main"}
    assert json.loads(_instruction("ENTRYPOINT")) == list(scripts)
    assert json.loads(_instruction("CMD")) == ["run"]


def test_the_image_runs_as_a_non_root_user() -> None:
    user = _instruction("USER").split(":")[0]

    assert user not in {"root", "0"}
    assert user == "10001"


def test_the_image_installs_the_locked_project_with_the_makefiles_uv_and_no_dev_extra() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text("utf-8")
    makefile = (ROOT / "Makefile").read_text("utf-8")
    uv_in_make = re.search(r"^UV_VERSION := (\S+)$", makefile, re.MULTILINE)
    uv_in_image = re.search(r"^ARG UV_VERSION=(\S+)$", dockerfile, re.MULTILINE)

    assert uv_in_make and uv_in_image
    assert uv_in_image.group(1) == uv_in_make.group(1) == "0.13.9"
    assert "uv sync --locked --no-editable\n" in dockerfile
    assert "--extra" not in dockerfile and "--all-extras" not in dockerfile


def test_the_service_publishes_its_http_port_on_the_host_loopback() -> None:
    assert DEFAULT_HTTP_PORT == 8080
    assert _published("fulfillment") == {("127.0.0.1", DEFAULT_HTTP_PORT, DEFAULT_HTTP_PORT)}
    assert "FULFILLMENT_HTTP_PORT" not in _environment("fulfillment")


def test_the_services_healthcheck_passes_when_healthz_answers_200() -> None:
    with _health_server(200) as port:
        assert _healthcheck_on(port) == 0


@pytest.mark.parametrize("status", [500, 503])
def test_the_services_healthcheck_fails_when_healthz_answers_an_error(status: int) -> None:
    with _health_server(status) as port:
        assert _healthcheck_on(port) != 0


def test_the_services_healthcheck_fails_when_nothing_answers() -> None:
    assert _healthcheck_on(_free_port()) != 0


def test_the_migration_neither_publishes_a_port_nor_has_a_healthcheck() -> None:
    assert "ports" not in SERVICES["migrate"]
    assert "healthcheck" not in SERVICES["migrate"]
