"""What a decision can come to: kinds and reasons as enums, their stored and logged values
unchanged (`created`, `acceptance_rejected:expired`, `cancelled:expired`, ...)."""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple


class Kind(StrEnum):
    CREATED = "created"
    REJECTED = "rejected"
    DUPLICATE_PAYMENT = "duplicate_payment"
    ACCEPTED = "accepted"
    ACCEPTANCE_REJECTED = "acceptance_rejected"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    IGNORED = "ignored"


class Reason(StrEnum):
    """Why: a rejection's, a closing's, or the state an ignored event found."""

    ACTIVE_SESSION = "active_session"
    UNKNOWN_SESSION = "unknown_session"
    ALREADY_ACCEPTED = "already_accepted"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    COMPLETED = "completed"
    WAITING = "waiting"
    ENDED = "ended"
    TIMED_OUT = "timed_out"


class Verdict(NamedTuple):
    """What one decision came to. A named tuple, as the other records made per event
    (`Decision`, `Outcome`, `Emitted`, `PaymentRecord`, `OutboxRow`, `Session`): immutable like
    a frozen dataclass, built in a quarter of the time (a frozen dataclass sets each field
    through `object.__setattr__`; those constructors were 8 % of a draining instance's CPU)."""

    kind: Kind
    reason: Reason | None = None

    @property
    def label(self) -> str:
        """The value logs and metrics carry: `kind` or `kind:reason`."""
        return self.kind.value if self.reason is None else f"{self.kind}:{self.reason}"

    def __str__(self) -> str:
        return self.label
