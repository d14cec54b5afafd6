"""Log lines never carry a secret: the settings' own are taken out of every value, whatever a
library's message quoted, and a URL in a value is shown masked."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator

import orjson
import pytest
import structlog

from service.config.settings import Settings
from service.observe import logs

SETTINGS = Settings(
    database_url="postgresql://app:s3cr%2Fet@db/fulfillment?sslmode=require&sslpassword=k3y-pw",
    kafka_security_protocol="SASL_SSL",
    kafka_sasl_mechanism="SCRAM-SHA-512",
    kafka_sasl_username="app",
    kafka_sasl_password="kafka-s3cret",
)


@pytest.fixture(params=["json", "console"])
def stderr(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[io.BytesIO]:
    buffer = io.BytesIO()
    wrapper = io.TextIOWrapper(buffer, write_through=True)
    monkeypatch.setattr(sys, "stderr", wrapper)
    logs.configure_logging("INFO", request.param, secrets=SETTINGS.secrets)
    yield buffer
    structlog.reset_defaults()
    monkeypatch.setattr(logs, "_decision_lines", None)


def test_no_secret_of_the_settings_reaches_a_log_line(stderr: io.BytesIO) -> None:
    log = structlog.get_logger("service.test")
    try:
        raise OSError("connecting with s3cr/et failed")
    except OSError:
        log.exception(
            "db_retry",
            error="unrecognized configuration parameter: k3y-pw, s3cr%2Fet, kafka-s3cret",
            seen=["postgresql://other:hunter2@db2/x", {"nested": "s3cr/et"}],
        )
    sys.stderr.flush()
    text = stderr.getvalue().decode()

    for secret in ("s3cr/et", "s3cr%2Fet", "k3y-pw", "kafka-s3cret", "hunter2"):
        assert secret not in text, text
    assert "db_retry" in text and "postgresql://other:***@db2/x" in text


def test_the_lines_keep_who_wrote_them_and_their_fields(stderr: io.BytesIO) -> None:
    structlog.get_logger("service.test").info("started", partitions=3)
    sys.stderr.flush()
    (line,) = stderr.getvalue().decode().splitlines()

    if line.startswith("{"):
        fields = orjson.loads(line)
        assert fields["event"] == "started" and fields["partitions"] == 3
        assert fields["service"] == logs.SERVICE
    else:
        assert "started" in line and "partitions" in line
