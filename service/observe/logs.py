"""structlog set-up: JSON lines on stderr when not on a terminal, readable colours on one."""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from importlib.metadata import version
from typing import IO, Any, Final, Literal, TextIO
from uuid import UUID

import orjson
import structlog

from service.config.redaction import mask_urls_in
from service.core.batch import Decision
from service.core.parking import ParkedEvent
from service.core.traceparent import trace_id

SERVICE: Final = "session-fulfillment"


def _default(value: object) -> object:
    # asyncpg returns its own UUID subclass, which orjson only serializes through here.
    if isinstance(value, UUID):
        return str(value)
    return repr(value)


def _dumps(value: object, **_: object) -> bytes:
    return orjson.dumps(value, default=_default)


def configure_logging(
    level: str = "INFO",
    fmt: Literal["auto", "json", "console"] = "auto",
    *,
    secrets: Iterable[str] = (),
) -> None:
    """`secrets` (the settings' own, `Settings.secrets`) are taken out of every line, and any
    URL in a line is shown masked: a library's error message may quote either."""
    # The decision log is on the hot path (one line per decision), so the JSON renderer uses
    # orjson and writes bytes straight to stderr, and bound loggers filter by level up front.
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    processors: list[structlog.typing.Processor]
    global _decision_lines
    _decision_lines = None
    scrub = _Scrub(tuple(secrets))
    if use_json:
        processors = [
            *shared,
            structlog.processors.dict_tracebacks,
            scrub,
            structlog.processors.JSONRenderer(serializer=_dumps),
        ]
        factory: Callable[..., Any] = structlog.BytesLoggerFactory(sys.stderr.buffer)
        if logging.getLevelName(level) <= logging.INFO:
            _decision_lines = _DecisionLines(processors, sys.stderr.buffer)
    else:
        renderer = structlog.dev.ConsoleRenderer(exception_formatter=scrub.traceback)
        processors = [*shared, scrub, renderer]
        factory = structlog.PrintLoggerFactory(sys.stderr)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )
    # Bound once for the process (every task inherits it): which service and build wrote a line.
    structlog.contextvars.bind_contextvars(service=SERVICE, version=version(SERVICE))
    # aiokafka and asyncpg log through the standard library; keep their warnings visible.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(name)s: %(message)s")


# Who wrote a line and when: never a secret, and kept as written.
_IDENTITY: Final = frozenset({"service", "version", "level", "timestamp"})


@dataclass(frozen=True, slots=True)
class _Scrub:
    """A processor: every value of a line with the secrets taken out and URLs masked."""

    secrets: tuple[str, ...]

    def __call__(self, _: object, __: str, line: MutableMapping[str, Any]) -> dict[str, Any]:
        return {k: v if k in _IDENTITY else self._clean(v) for k, v in line.items()}

    def _clean(self, value: object) -> Any:
        if isinstance(value, str):
            return mask_urls_in(value, self.secrets) if "://" in value or self.secrets else value
        if isinstance(value, Mapping):
            return {k: self._clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._clean(v) for v in value]
        return value

    def traceback(self, out: TextIO, exc_info: structlog.typing.ExcInfo) -> None:
        """The console's traceback, as structlog writes it plainly, cleaned the same way."""
        text = io.StringIO()
        structlog.dev.plain_traceback(text, exc_info)
        out.write(self._clean(text.getvalue()))


_decisions = structlog.get_logger("service.decisions")
_STAMP = structlog.processors.TimeStamper(fmt="iso", utc=True)


@dataclass(frozen=True, slots=True)
class _DecisionLines:
    """The `decided` lines of a batch written as the JSON renderer would write them, but with
    one clock reading, one context lookup and one write per batch instead of a trip through the
    processor chain per line: that chain was about 8 % of a busy instance's CPU."""

    processors: list[structlog.typing.Processor]  # those configured with it, to notice a change
    out: IO[bytes]

    def write(self, decisions: Sequence[Decision], traces: Mapping[str, str]) -> None:
        if not decisions:
            return
        head = {**structlog.contextvars.get_contextvars(), "event": "decided"}
        tail = {"level": "info", **_STAMP(None, "info", {})}
        if head.keys() & _LINE_KEYS or tail.keys() & _LINE_KEYS:
            lines = [
                orjson.dumps(
                    {**head, **_line(d, traces), **tail},
                    default=_default,
                    option=orjson.OPT_APPEND_NEWLINE,
                )
                for d in decisions
            ]
        else:
            # The same bytes without merging three dicts per line: the parts common to the
            # batch are encoded once and each line's own fields are spliced between them.
            start = orjson.dumps(head)[:-1] + b","
            end = b"," + orjson.dumps(tail)[1:] + b"\n"
            dumps = orjson.dumps
            lines = [
                start + dumps(_line(d, traces), default=_default)[1:-1] + end for d in decisions
            ]
        self.out.write(b"".join(lines))
        self.out.flush()


# The fields of a `decided` line itself, in the order the processor chain writes them.
_LINE_KEYS: Final = frozenset(
    {"trace_id", "event_id", "type", "outcome", "customer_id", "session_id", "payment_id", "purged"}
)


def _line(d: Decision, traces: Mapping[str, str]) -> dict[str, object]:
    return {
        **_trace_of(d, traces),
        "event_id": d.event_id,
        "type": d.event_type,
        "outcome": d.outcome.label,
        "customer_id": d.customer_id,
        "session_id": d.session_id,
        "payment_id": d.payment_id,
        "purged": d.purged,
    }


_decision_lines: _DecisionLines | None = None


def _trace_of(decision: Decision, traces: Mapping[str, str]) -> dict[str, str]:
    trace = traces.get(decision.event_id) if traces else None
    return {} if trace is None else {"trace_id": trace_id(trace)}


def log_decisions(decisions: Sequence[Decision], traces: Mapping[str, str] | None = None) -> None:
    """One `decided` line per decision (R10), whoever decided it (a batch or the sweeper), with
    the trace id of the event's traceparent when it came with one (`traces`: event id ->)."""
    traces = traces or {}
    lines = _decision_lines
    # Only while the configuration is still ours: tests capture logs by reconfiguring structlog.
    if lines is not None and structlog.get_config()["processors"] is lines.processors:
        lines.write(decisions, traces)
        return
    for decision in decisions:
        _decisions.info(
            "decided",
            **_trace_of(decision, traces),
            event_id=decision.event_id,
            type=decision.event_type,
            outcome=decision.outcome.label,
            customer_id=decision.customer_id,
            session_id=decision.session_id,
            payment_id=decision.payment_id,
            purged=decision.purged,
        )


def log_parked(parked: Iterable[ParkedEvent]) -> None:
    """One `parked` line per event set aside behind a poison event."""
    for event in parked:
        _decisions.warning(
            "parked",
            event_id=event.event_id,
            source=event.source,
            type=event.type,
            customer_id=event.customer_id,
            reason=event.reason,
        )
