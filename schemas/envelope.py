"""CloudEvents 1.0 structured-mode envelopes, generic over `data`.

Inputs get a tolerant reader (unknown attributes ignored, any RFC 3339 offset); outputs get a
strict writer (no unknown attribute, fixed `source` and `datacontenttype`, times in UTC).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, ClassVar, Final, Generic, Literal, Self, TypeVar
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
)

from schemas.ids import output_event_id_text
from schemas.limits import (
    EARLIEST_TIME,
    LATEST_TIME,
    MAX_ID_BYTES,
    MAX_SOURCE_BYTES,
    Identifier,
)

SPECVERSION: Final = "1.0"
SOURCE: Final = "session-fulfillment"
DATA_CONTENT_TYPE: Final = "application/json"
# The Kafka `content-type` of a structured-mode event (CloudEvents Kafka protocol binding).
CLOUDEVENTS_CONTENT_TYPE: Final = "application/cloudevents+json"

DataT = TypeVar("DataT", bound=BaseModel)


def rfc3339_utc(value: datetime) -> str:
    """The spelling of an output time outside pydantic (DLQ headers): UTC with 'Z', the
    fraction only when there is one (six digits), exactly as pydantic-core writes it."""
    if value.utcoffset() is None:
        # Guessing the zone of a naive time would publish a wrong fact.
        raise ValueError(f"naive datetime {value.isoformat()}")
    text = value.astimezone(UTC).replace(tzinfo=None).isoformat()
    return text + "Z"


def _to_utc(value: datetime) -> datetime:
    return value if value.tzinfo is UTC else value.astimezone(UTC)


UTC_PATTERN: Final = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{6})?Z$"

# Normalised to UTC when the model is validated, so that pydantic-core's own serializer (no
# Python call per field: five times faster than a PlainSerializer) writes every instant one way:
# `2026-11-24T09:30:00Z`, or `2026-11-24T09:30:00.250000Z` when there is a fraction. Equal
# events encode to equal bytes whatever offset the service computed them in.
UtcDatetime = Annotated[
    AwareDatetime,
    AfterValidator(_to_utc),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "pattern": UTC_PATTERN,
            "description": "RFC 3339 in UTC with 'Z'; six fraction digits when not zero",
        }
    ),
]
NonEmptyStr = Annotated[str, Field(min_length=1)]


# Identifiers are stored and indexed by the service (see schemas.limits): a value it could not
# store would stall its partition instead of going to the dead-letter topic, so such events are
# refused here.
EventId = Annotated[
    str,
    Identifier(MAX_ID_BYTES),
    Field(description=f"At most {MAX_ID_BYTES} bytes in UTF-8; no control characters"),
]
EventSource = Annotated[
    str,
    Identifier(MAX_SOURCE_BYTES),
    Field(description=f"At most {MAX_SOURCE_BYTES} bytes in UTF-8; no control characters"),
]
# Compared as instants in pydantic-core, before any Python datetime arithmetic can overflow.
BusinessTime = Annotated[
    AwareDatetime,
    Field(
        strict=True,
        ge=EARLIEST_TIME,
        lt=LATEST_TIME,
        description=f"RFC 3339 with offset; in UTC at or after {rfc3339_utc(EARLIEST_TIME)} "
        f"and before {rfc3339_utc(LATEST_TIME)}",
    ),
]


class CloudEvent(BaseModel, Generic[DataT]):
    """A CloudEvents 1.0 event as read from an input topic."""

    # Tolerant reader: producers may add attributes (extensions such as traceparent) freely.
    model_config = ConfigDict(frozen=True, extra="ignore")

    specversion: Literal["1.0"]
    id: EventId
    source: EventSource
    type: str
    # Strict: RFC 3339 text only; lax mode would also take a number of seconds since the epoch.
    time: BusinessTime
    subject: str | None = None
    datacontenttype: str | None = None
    dataschema: str | None = None
    data: DataT


class OutputData(BaseModel):
    """Base of the output `data` models: what their event's subject and id derive from."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        # The published schemas describe what is sent: a field with a default is always sent.
        json_schema_serialization_defaults_required=True,
    )

    @property
    def subject(self) -> str | None:
        """The session the event is about, its CloudEvents `subject`; None when there is none."""
        return None

    @property
    def id_key(self) -> str:
        """The last part of the event's deterministic id (see `output_event_id`)."""
        raise NotImplementedError


OutputDataT = TypeVar("OutputDataT", bound=OutputData)


class OutputCloudEvent(BaseModel, Generic[OutputDataT]):
    """A CloudEvents 1.0 event as this service publishes it on `sessions.events`."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        # The published schemas describe what is sent: a field with a default is always sent.
        json_schema_serialization_defaults_required=True,
    )

    specversion: Literal["1.0"] = "1.0"
    id: NonEmptyStr
    source: Literal["session-fulfillment"] = "session-fulfillment"
    type: str
    subject: str | None
    time: UtcDatetime
    datacontenttype: Literal["application/json"] = "application/json"
    causationid: NonEmptyStr = Field(
        description="The id of the input event (or sweeper run) that caused this event"
    )
    causationsource: NonEmptyStr = Field(
        description="The `source` of the event that caused this event; with `causationid` its "
        "CloudEvents identity (this service's own source when a timer started by one of its "
        "events caused it)"
    )
    data: OutputDataT
    # The value of `type`, readable from the class without an instance.
    event_type: ClassVar[str]

    @classmethod
    def build(
        cls,
        data: OutputDataT,
        *,
        causation_id: str,
        time: datetime,
        id: UUID | str | None = None,
        causation_source: str = SOURCE,
    ) -> Self:
        """The event carrying `data`, with its subject and deterministic id filled in.

        Validated, not `model_construct`ed: pydantic-core checks a model this small faster than
        model_construct copies it in Python, and `data` (already a model) is not re-validated.
        """
        subject = data.subject
        if id is None:
            key = subject if subject is not None else data.id_key
            text = output_event_id_text(causation_id, cls.event_type, key)
        else:
            text = str(id)
        return cls(
            id=text,
            type=cls.event_type,
            subject=subject,
            time=time,
            causationid=causation_id,
            causationsource=causation_source,
            data=data,
        )
