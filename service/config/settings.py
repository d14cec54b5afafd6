"""The service's configuration: every knob, its default and its environment variable."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

import schemas
from schemas import topics
from schemas.limits import MAX_DEADLINE_DAYS
from service.config.database_url import address_of, check_database_url
from service.config.environment import (
    ENV_PREFIX,
    ConfigurationError,
    file_variables,
    from_environment,
    unknown_variables,
)
from service.config.kafka_security import SaslMechanism, SecurityProtocol, check_security
from service.config.redaction import mask_url, parse_url, secrets_of
from service.core.sessions import Policy

__all__ = ["ENV_PREFIX", "ConfigurationError", "Settings", "load_settings"]

DEFAULT_DATABASE_URL = (
    "postgresql://fulfillment:fulfillment@127.0.0.1:5432/fulfillment?sslmode=disable"
)


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def _readable_file(path: Path) -> Path:
    if not path.is_file():
        raise ValueError("no such file" if not path.exists() else "not a file")
    if not os.access(path, os.R_OK):
        raise ValueError("the file is not readable")
    return path


# Enumerations are case-insensitive: `info`, `Info` and `INFO` are one level.
Upper = BeforeValidator(_upper)
Lower = BeforeValidator(_lower)
ReadableFile = Annotated[Path, AfterValidator(_readable_file)]
# Values never echoed in an error, whatever is wrong with them.
SECRET_FIELDS = frozenset({"database_url", "kafka_sasl_password", "kafka_ssl_key_password"})

MAX_PROCESSES = 64


class Settings(BaseSettings):
    """Read from `FULFILLMENT_*` environment variables; defaults match `make up`'s local stack."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, frozen=True, extra="ignore", hide_input_in_errors=True
    )

    kafka_bootstrap_servers: str = Field("127.0.0.1:9092", min_length=1)
    # Every client (the service's and every command's) connects with these; service/config/
    # kafka_security.py checks them and turns them into aiokafka's options.
    kafka_security_protocol: Annotated[SecurityProtocol, Upper] = "PLAINTEXT"
    kafka_sasl_mechanism: Annotated[SaslMechanism | None, Upper] = None
    kafka_sasl_username: str | None = Field(None, min_length=1)
    kafka_sasl_password: SecretStr | None = None
    # No CA file: the system's trusted CAs, as for any public certificate.
    kafka_ssl_cafile: ReadableFile | None = None
    # Mutual TLS: the client's certificate (PEM, may hold the key too) and its key.
    kafka_ssl_certfile: ReadableFile | None = None
    kafka_ssl_keyfile: ReadableFile | None = None
    kafka_ssl_key_password: SecretStr | None = None
    kafka_ssl_check_hostname: bool = True
    # TLS adds nothing on loopback and costs a fifth of the service's CPU; a remote database's
    # URL should say sslmode=verify-full (with sslrootcert, or the variable below).
    database_url: SecretStr = SecretStr(DEFAULT_DATABASE_URL)
    database_sslrootcert: ReadableFile | None = None
    # A decision counts once a synchronous standby has flushed it: commits wait for it, and the
    # service starts only where synchronous_standby_names names one (service/adapters/postgres/
    # durability.py). On where failover promotes a streaming standby (Patroni, pg_auto_failover,
    # CloudNativePG); storage-replicated services (RDS Multi-AZ instances, Cloud SQL HA) need not.
    database_synchronous_standby: bool = False
    group_id: str = Field("session-fulfillment", min_length=1)
    # /healthz, /readyz and /metrics; port 0 = pick a free port.
    http_host: str = Field("0.0.0.0", min_length=1)
    http_port: int = Field(8080, ge=0, le=65535)

    topic_payments: str = Field(topics.PAYMENTS_COMPLETED, min_length=1)
    topic_acceptances: str = Field(topics.MECHANICS_ACCEPTED, min_length=1)
    topic_ended: str = Field(topics.SESSIONS_ENDED, min_length=1)
    topic_sessions: str = Field(topics.SESSIONS_EVENTS, min_length=1)
    topic_dlq: str = Field(topics.FULFILLMENT_DLQ, min_length=1)
    # `fulfillment run` creates missing topics with these; existing topics are left alone.
    create_topics: bool = True
    topic_partitions: int = Field(6, ge=1)
    # Unset: the broker's default.replication.factor (KIP-464), right for one broker and for a
    # managed cluster of three alike.
    topic_replication_factor: int | None = Field(None, ge=1)

    # Capped so that every deadline of an accepted event time fits in a timestamp
    # (schemas.limits.MAX_DEADLINE_DAYS).
    request_ttl_seconds: int = Field(900, gt=0, le=MAX_DEADLINE_DAYS * 86_400)
    max_live_seconds: int = Field(4 * 3600, gt=0, le=MAX_DEADLINE_DAYS * 86_400)
    sweep_interval_seconds: float = Field(10.0, gt=0)
    # Dedupe records must outlive the input topics' retention, or a replay from the earliest
    # offset would decide old events again. Kafka deletes whole segments, so a message can
    # outlive retention.ms by up to segment.ms: the default covers both of Kafka's (7 d + 7 d).
    dedupe_retention_seconds: int = Field(14 * 24 * 3600, gt=0)
    # Off only while rebuilding an empty database from a replay: the sweeper's wall clock would
    # otherwise expire historical sessions before their acceptances are replayed.
    sweeper_enabled: bool = True

    # Consumers in this process, each a member of the group with its own partitions: while one
    # waits on PostgreSQL another decides. Correct for any number, as separate instances are.
    # One by default: `processes=auto` already runs an instance per CPU, and a second consumer
    # on the same event loop delays the first one's I/O and the relay with its CPU-bound
    # decisions (bench/README.md: 2 instances drained 18,100 events/s with one each, 15,400
    # with two, and answered at 5,000/s in 53 ms at the median instead of 128).
    consumers: int = Field(1, ge=1, le=16)
    # Instances run by `fulfillment run` (this process and children): one core each. `auto`:
    # as many as the CPUs this process may use (see service/bootstrap/cpus.py).
    processes: int | Literal["auto"] = "auto"
    batch_size: int = Field(2000, ge=1, le=100_000)
    batch_linger_ms: int = Field(5, ge=0)
    relay_batch_size: int = Field(5000, ge=1, le=100_000)
    relay_poll_interval_seconds: float = Field(1.0, gt=0)
    retry_backoff_max_seconds: float = Field(30.0, gt=0)
    # Bounds on every wait in PostgreSQL, so that a frozen peer or a half-dead connection turns
    # into an error and a retry instead of a stall. A lock wait fails after `lock_timeout`; a
    # session of the service idle inside a transaction (a frozen instance holding customer
    # locks) is ended by the server after `idle_in_transaction`, which releases its locks.
    db_statement_timeout_seconds: float = Field(60.0, gt=0)
    db_lock_timeout_seconds: float = Field(5.0, gt=0)
    db_idle_in_transaction_timeout_seconds: float = Field(30.0, gt=0)
    # TCP keepalives on both ends of each PostgreSQL connection: idle seconds before the first
    # probe; three probes `idle / 3` apart then declare the peer dead.
    db_keepalive_idle_seconds: int = Field(30, ge=3)
    # Every produce the loops await (the relay's batches, dead letters) fails after this, and is
    # retried, instead of waiting on a broker that stopped answering.
    kafka_produce_timeout_seconds: float = Field(30.0, gt=0)
    # How long the broker may hold a consumer's fetch that found no record. aiokafka keeps one
    # fetch in flight per broker and leaves out of it the partitions whose records still wait
    # in its buffer, so a record arriving on such a partition waits for that fetch to return
    # (factory.py). The broker answers at the first record on any partition of the fetch.
    kafka_fetch_max_wait_ms: int = Field(20, ge=1, le=500)
    # Retries of a batch failing with something that is not an outage, before the failing
    # events are searched out and their customers parked.
    poison_retries: int = Field(5, ge=0, le=1000)
    # Test hook: deciding an event of these customers raises, as a bug would. Empty (unset) in
    # production, where it costs nothing.
    failpoint_customers: Annotated[frozenset[UUID], NoDecode] = frozenset()

    # How `sessions.events` is written: CloudEvents structured mode (the value is the whole
    # event) or binary mode (attributes as ce_* headers, the value is the data).
    output_content_mode: Annotated[Literal["structured", "binary"], Lower] = "structured"

    log_level: Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR"], Upper] = "INFO"
    log_format: Annotated[Literal["auto", "json", "console"], Lower] = "auto"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, from_environment(settings_cls, ENV_PREFIX)

    @field_validator("database_url")
    @classmethod
    def _database_url_is_asyncpgs(cls, value: SecretStr) -> SecretStr:
        parse_url(value.get_secret_value())  # first: one that reads two ways is never shown
        check_database_url(value.get_secret_value())
        return value

    @model_validator(mode="after")
    def _security_options_agree(self) -> Settings:
        check_security(self)
        return self

    @field_validator("failpoint_customers", mode="before")
    @classmethod
    def _uuid_list(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            # Comma-separated, or a JSON list (as the settings dump themselves).
            parts = json.loads(text) if text.startswith("[") else text.split(",")
            return frozenset(UUID(str(part).strip()) for part in parts if str(part).strip())
        return value

    @field_validator("processes", mode="before")
    @classmethod
    def _processes(cls, value: object) -> int | str:
        # One check, one message: a union of int and "auto" would report one error per member.
        text = str(value).strip().lower()
        if text == "auto":
            return "auto"
        if not text.isdigit() or not 1 <= int(text) <= MAX_PROCESSES:
            raise ValueError(f"must be 'auto' or a whole number from 1 to {MAX_PROCESSES}")
        return int(text)

    @model_validator(mode="after")
    def _topics_are_distinct(self) -> Settings:
        kinds = ("payments", "acceptances", "ended", "sessions", "dlq")
        names = [getattr(self, f"topic_{kind}") for kind in kinds]
        if len(set(names)) != len(names):
            # Reported by load_settings as one line naming the variables.
            raise ValueError(f"{ENV_PREFIX}TOPIC_*: topic names must all differ, got {names}")
        return self

    @property
    def dsn(self) -> str:
        """The database URL with its password: for asyncpg only, never for a message."""
        url = self.database_url.get_secret_value()
        if self.database_sslrootcert is None:
            return url
        separator = "&" if "?" in url else "?"
        return f"{url}{separator}sslrootcert={self.database_sslrootcert}"

    @property
    def database_address(self) -> str:
        """Where the database is, safe to print: `host:port/database`."""
        return address_of(self.database_url.get_secret_value())

    @property
    def secrets(self) -> list[str]:
        """Every secret value, taken out of any text shown (service/config/redaction.py)."""
        others = (self.kafka_sasl_password, self.kafka_ssl_key_password)
        return secrets_of(
            self.database_url.get_secret_value(), [s.get_secret_value() for s in others if s]
        )

    @property
    def topics(self) -> schemas.Topics:
        """The topic set, the one value every command, adapter and the bench read names from."""
        return schemas.Topics(
            payments_completed=self.topic_payments,
            mechanics_accepted=self.topic_acceptances,
            sessions_ended=self.topic_ended,
            sessions_events=self.topic_sessions,
            dlq=self.topic_dlq,
        )

    @property
    def policy(self) -> Policy:
        return Policy(request_ttl=self.request_ttl, max_live=self.max_live)

    @property
    def request_ttl(self) -> timedelta:
        return timedelta(seconds=self.request_ttl_seconds)

    @property
    def max_live(self) -> timedelta:
        return timedelta(seconds=self.max_live_seconds)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """The settings from the environment, or ConfigurationError: one problem per variable,
    unknown `FULFILLMENT_*` names included, and no secret in the message."""
    unknown = unknown_variables(os.environ if environ is None else environ, known_variables())
    if unknown:
        raise ConfigurationError("; ".join(unknown))
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigurationError("; ".join(_problem(error) for error in exc.errors())) from None


def _problem(error: Any) -> str:
    loc = error["loc"]
    message = str(error["msg"]).removeprefix("Value error, ")
    if not loc:
        # A check across settings: its message names its variables; the input is every value.
        return message
    field = str(loc[0])
    name = ENV_PREFIX + field.upper()
    value = error.get("input")
    if field == "database_url" and isinstance(value, str):
        shown = mask_url(value)  # None: not shown at all
        return f"{name}: {message}" + (f" (got {shown!r})" if shown is not None else "")
    if field in SECRET_FIELDS:
        return f"{name}: {message}"
    return f"{name}: {message} (got {value!r})"


def known_variables() -> set[str]:
    fields = Settings.model_fields
    return {ENV_PREFIX + name.upper() for name in fields} | file_variables(ENV_PREFIX, fields)
