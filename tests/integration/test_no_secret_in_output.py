"""No secret appears in anything a command prints, under good configurations and bad ones; and a
bad one ends each command it breaks in one line, never a traceback.

Every command runs as the operator runs it (a subprocess of the installed `fulfillment`), and
everything it writes is searched for every secret the configuration holds.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from service.config.settings import Settings
from tests.commands import Finished, fulfillment, make_ca, running
from tests.passwords import MARKERS, passwords, shown_markers
from tests.servers import SecuredServers, Servers
from tests.settings_env import environment_of

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

WRONG_KAFKA_PASSWORD = "wrong-kafka-pw-7f3a"
WRONG_DB_PASSWORD = "wrong-db-pw-51c9"
COMMANDS = {
    "run": ("run",),
    "migrate": ("migrate",),
    "simulate": ("simulate", "--duration", "0.5", "--rate", "4", "--customers", "2"),
    "replay": ("replay", "--to-earliest", "--dry-run"),
}
KAFKA_COMMANDS = frozenset({"run", "simulate", "replay"})
DATABASE_COMMANDS = frozenset({"run", "migrate"})


@dataclass(frozen=True)
class Case:
    """Settings changed from a working SASL_SSL configuration, extra raw variables, and the
    commands this configuration must stop."""

    changes: dict[str, Any] = field(default_factory=dict)
    variables: dict[str, str] = field(default_factory=dict)
    breaks: frozenset[str] = frozenset()


def with_password(url: str, password: str) -> str:
    return url.replace("fulfillment:fulfillment@", f"fulfillment:{password}@", 1)


BAD: dict[str, Case] = {
    "wrong kafka password": Case(
        {"kafka_sasl_password": WRONG_KAFKA_PASSWORD}, breaks=KAFKA_COMMANDS
    ),
    "unknown kafka ca": Case({"kafka_ssl_cafile": "FOREIGN_CA"}, breaks=KAFKA_COMMANDS),
    "wrong database password": Case(
        {"database_url": f"WITH_PASSWORD:{WRONG_DB_PASSWORD}"}, breaks=DATABASE_COMMANDS
    ),
    "unreachable database": Case(
        {"database_url": f"postgresql://fulfillment:{WRONG_DB_PASSWORD}@127.0.0.1:1/x"},
        breaks=DATABASE_COMMANDS,
    ),
    "driver in the database scheme": Case(
        {"database_url": f"postgresql+asyncpg://fulfillment:{WRONG_DB_PASSWORD}@127.0.0.1/x"},
        breaks=frozenset(COMMANDS),
    ),
    "bogus sslmode": Case(
        {"database_url": f"WITH_PASSWORD:{WRONG_DB_PASSWORD}", "_sslmode": "bogus"},
        breaks=frozenset(COMMANDS),
    ),
    "invalid topic beside a database password": Case(
        {"database_url": f"WITH_PASSWORD:{WRONG_DB_PASSWORD}", "topic_dlq": "SAME_AS_PAYMENTS"},
        breaks=frozenset(COMMANDS),
    ),
    "misspelt secret variable": Case(
        variables={"FULFILLMENT_KAFKA_SASL_PASWORD": WRONG_KAFKA_PASSWORD},
        breaks=frozenset(COMMANDS),
    ),
}


@pytest.fixture
def secured(servers: Servers) -> SecuredServers:
    return servers.secured()


@pytest.fixture(scope="module")
def foreign_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_ca(tmp_path_factory.mktemp("foreign-ca"))


def sasl_ssl_settings(make_settings: Any, secured: SecuredServers, **changes: Any) -> Settings:
    settings: Settings = make_settings(
        kafka_bootstrap_servers=secured.kafka_sasl_ssl_bootstrap,
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username=secured.kafka_sasl_username,
        kafka_sasl_password=secured.kafka_sasl_password,
        kafka_ssl_cafile=secured.kafka_ca,
    )
    if not changes:
        return settings
    return Settings.model_construct(**(dict(settings) | changes))


def secrets_of(secured: SecuredServers) -> list[str]:
    # The local role's password is its name too: what must not appear is the URL's userinfo.
    return [
        secured.kafka_sasl_password,
        WRONG_KAFKA_PASSWORD,
        WRONG_DB_PASSWORD,
        "fulfillment:fulfillment@",
    ]


def assert_no_secret(finished: Finished, secrets: list[str], what: str) -> None:
    for secret in secrets:
        assert secret not in finished.output, f"{what}: {secret!r} in {finished.output[-1500:]}"


async def test_no_command_prints_a_secret_with_a_working_secured_configuration(
    make_settings: Any, secured: SecuredServers
) -> None:
    env = environment_of(sasl_ssl_settings(make_settings, secured))
    secrets = secrets_of(secured)
    outputs = [await fulfillment("--help", env=env), await fulfillment("--version", env=env)]
    outputs.append(await fulfillment(*COMMANDS["migrate"], env=env))
    async with running(*COMMANDS["run"], env=env) as service:
        await service.wait_for_stderr('"started"', within=60)
    assert service.finished is not None
    outputs.append(service.finished)
    outputs.append(await fulfillment(*COMMANDS["simulate"], env=env))
    outputs.append(await fulfillment(*COMMANDS["replay"], env=env))

    for finished, what in zip(outputs, ["--help", "--version", *COMMANDS], strict=True):
        assert finished.returncode == 0, f"{what}: {finished.output[-1500:]}"
        assert_no_secret(finished, secrets, what)


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("case", BAD)
async def test_a_bad_configuration_prints_no_secret_and_stops_what_it_breaks_in_one_line(
    make_settings: Any, secured: SecuredServers, foreign_ca: Path, case: str, command: str
) -> None:
    spec = BAD[case]
    base = sasl_ssl_settings(make_settings, secured)
    changes = dict(spec.changes)
    if changes.get("kafka_ssl_cafile") == "FOREIGN_CA":
        changes["kafka_ssl_cafile"] = foreign_ca
    url = str(changes.get("database_url", ""))
    if url.startswith("WITH_PASSWORD:"):
        changes["database_url"] = with_password(base.dsn, url.removeprefix("WITH_PASSWORD:"))
    if "_sslmode" in changes:
        changes["database_url"] = str(changes["database_url"]).replace(
            "sslmode=disable", f"sslmode={changes.pop('_sslmode')}"
        )
    if changes.get("topic_dlq") == "SAME_AS_PAYMENTS":
        changes["topic_dlq"] = base.topic_payments
    env = environment_of(sasl_ssl_settings(make_settings, secured, **changes), **spec.variables)

    finished = await fulfillment(*COMMANDS[command], env=env, within=60)

    assert_no_secret(finished, secrets_of(secured), f"{case}, {command}")
    assert "Traceback" not in finished.output, finished.output[-3000:]
    if command in spec.breaks:
        assert finished.returncode != 0, finished.output[-1500:]
        assert len(finished.lines) == 1, finished.stderr[-3000:]
        assert finished.stdout == ""


# The case of the issue: a generated password with a `/`, which the old pattern-based masking
# left whole in the "not a URL" error; one with an `@`, half masked; `sslpassword=`, never.
LEAKED = {
    "slash in the password": ("postgresql://svc:s3cr/et@db:5432/x", ["s3cr", "et@db"]),
    "at sign in the password": ("postgresql://svc:p@ss-w0rd@db:5432/x", ["p@ss", "ss-w0rd"]),
    "sslpassword in the query": (
        "postgresql://svc@db:5432/x?sslmode=bogus&sslpassword=k3y-s3cret",
        ["k3y-s3cret"],
    ),
}
OPERATOR_COMMANDS = {
    "migrate": ("migrate",),
    "run": ("run",),
    "parked list": ("parked", "list"),
    "parked list --json": ("parked", "list", "--json"),
    "sessions show --json": ("sessions", "show", "--payment", "p-1", "--json"),
}


@pytest.mark.parametrize("command", OPERATOR_COMMANDS)
@pytest.mark.parametrize("case", LEAKED)
async def test_a_database_url_that_holds_its_password_badly_is_refused_without_showing_it(
    make_settings: Any, case: str, command: str
) -> None:
    url, secrets = LEAKED[case]
    env = environment_of(make_settings(), FULFILLMENT_DATABASE_URL=url)

    finished = await fulfillment(*OPERATOR_COMMANDS[command], env=env, within=60)

    assert finished.returncode == 2, finished.output[-1500:]
    assert finished.stdout == "" and len(finished.lines) == 1, finished.output[-1500:]
    assert finished.stderr.startswith(
        "fulfillment: invalid configuration: FULFILLMENT_DATABASE_URL: "
    )
    for secret in secrets:
        assert secret not in finished.output, finished.output


# A space, non-ASCII and every delimiter of a URL, each between two markers.
EVERY_DELIMITER = "".join(
    m + c for m, c in zip(MARKERS, ["/@", ":%", "?#", "&=", " é", "ü"], strict=True)
)
# Each with its exit code when the database takes the URL (a wrong password: 1).
DATABASE_COMMANDS_RUN = {
    ("migrate",): 0,
    ("parked", "list"): 0,
    ("parked", "list", "--json"): 0,
    ("sessions", "show", "--payment", "p-1", "--json"): 3,  # no such payment
}


async def _outputs_with_url(base: Settings, url: str, *, runs: bool) -> list[Finished]:
    """What `migrate`, `parked list` (plain and --json), `sessions show --json` and `run` (its
    JSON log lines; stopped once started, if it starts) print with `url` as the database URL."""
    env = environment_of(base, FULFILLMENT_DATABASE_URL=url)
    outputs = [await fulfillment(*c, env=env) for c in DATABASE_COMMANDS_RUN]
    async with running("run", env=env) as service:
        if runs and outputs[0].returncode == 0:
            await service.wait_for_stderr('"started"', within=60)
        else:
            await asyncio.wait_for(service.process.wait(), 60)
    assert service.finished is not None
    return [*outputs, service.finished]


@pytest.mark.timeout(600)
@settings(
    max_examples=4,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    database=None,
)
@given(password=passwords(), encoded=st.booleans(), place=st.sampled_from(["user", "query"]))
@example(password=EVERY_DELIMITER, encoded=False, place="user")
@example(password=EVERY_DELIMITER, encoded=True, place="user")
@example(password=EVERY_DELIMITER, encoded=False, place="query")
@example(password=EVERY_DELIMITER, encoded=True, place="query")
def test_no_part_of_a_database_password_of_any_characters_is_printed_by_any_command(
    make_settings: Any, password: str, encoded: bool, place: str
) -> None:
    """In the userinfo (a wrong password: every command stops) or in `sslpassword=` (unused
    without TLS: every command works, `run` logs as it starts), as written or percent-encoded:
    no part of the password in any output, plain or --json, nor in the logs."""
    base = make_settings(processes=1, log_format="json")
    written = quote(password, safe="") if encoded else password
    if place == "user":
        url = with_password(base.dsn, written)
    else:
        url = f"{base.dsn}&sslpassword={written}"

    outputs = asyncio.run(_outputs_with_url(base, url, runs=place == "query"))

    for finished in outputs:
        assert shown_markers(finished.output) == [], finished.output[-3000:]
        assert "Traceback" not in finished.output, finished.output[-3000:]
    if encoded:
        # Readable as it is written: refused at the server (a wrong password) or working.
        expected = [1 if place == "user" else code for code in DATABASE_COMMANDS_RUN.values()]
        assert [f.returncode for f in outputs[:-1]] == expected, [f.output[-500:] for f in outputs]
