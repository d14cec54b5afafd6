"""The service's configuration: every knob, its default and its environment variable."""

from __future__ import annotations

from datetime import timedelta
from functools import cached_property
from typing import Literal

from pydantic import Field, PostgresDsn, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

import schemas
from schemas import topics
from service.core.sessions import Policy

ENV_PREFIX = "FULFILLMENT_"
MAX_PROCESSES = 64


class Settings(BaseSettings):
    """Read from `FULFILLMENT_*` environment variables; defaults match `make up`'s local stack."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="ignore")

    kafka_bootstrap_servers: str = Field("127.0.0.1:9092", min_length=1)
    # TLS adds nothing on loopback and costs a fifth of the service's CPU; a remote database's
    # URL should say sslmode=require (or verify-full).
    database_url: PostgresDsn = PostgresDsn(
        "postgresql://fulfillment:fulfillment@127.0.0.1:5432/fulfillment?sslmode=disable"
    )
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
    topic_replication_factor: int = Field(1, ge=1)

    request_ttl_seconds: int = Field(900, gt=0)
    max_live_seconds: int = Field(4 * 3600, gt=0)
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
    consumers: int = Field(2, ge=1, le=16)
    # Instances run by `fulfillment run` (this process and children): one core each. `auto`:
    # as many as the CPUs this process may use (see service/bootstrap/cpus.py).
    processes: int | Literal["auto"] = "auto"
    batch_size: int = Field(2000, ge=1, le=100_000)
    batch_linger_ms: int = Field(5, ge=0)
    relay_batch_size: int = Field(5000, ge=1, le=100_000)
    relay_poll_interval_seconds: float = Field(1.0, gt=0)
    retry_backoff_max_seconds: float = Field(30.0, gt=0)

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["auto", "json", "console"] = "auto"

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
        names = [
            self.topic_payments,
            self.topic_acceptances,
            self.topic_ended,
            self.topic_sessions,
            self.topic_dlq,
        ]
        if len(set(names)) != len(names):
            # Reported by load_settings as one line naming the variables.
            raise ValueError(f"topic names must all differ, got {names}")
        return self

    @property
    def dsn(self) -> str:
        return str(self.database_url)

    @cached_property
    def topics(self) -> schemas.Topics:
        """The topic set, the one value every command, adapter and the bench read names from."""
        return schemas.Topics(
            payments_completed=self.topic_payments,
            mechanics_accepted=self.topic_acceptances,
            sessions_ended=self.topic_ended,
            sessions_events=self.topic_sessions,
            dlq=self.topic_dlq,
        )

    @cached_property
    def policy(self) -> Policy:
        return Policy(request_ttl=self.request_ttl, max_live=self.max_live)

    @property
    def request_ttl(self) -> timedelta:
        return timedelta(seconds=self.request_ttl_seconds)

    @property
    def max_live(self) -> timedelta:
        return timedelta(seconds=self.max_live_seconds)


class ConfigurationError(Exception):
    """One line per invalid variable, each naming the variable, the problem and the value."""


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = "_".join(str(part) for part in error["loc"]).upper() or "TOPIC_*"
            name = ENV_PREFIX + loc
            problems.append(f"{name}: {error['msg']} (got {error.get('input')!r})")
        raise ConfigurationError("; ".join(problems)) from None
