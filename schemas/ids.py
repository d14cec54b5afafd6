"""Deterministic ids: the same input, processed again, yields the same ids.

Redelivery, replay from the earliest offset and a rebuild into an empty database must reproduce
the very same output events, so no id here comes from a clock or a random source.
"""

from __future__ import annotations

import uuid
from functools import lru_cache
from hashlib import sha1
from typing import Final

# Never change this value: every session id and output event id ever published derives from it.
FULFILLMENT_NAMESPACE: Final = uuid.UUID("dc71d041-27be-4459-ac7e-76037ce1e0a0")
_NAMESPACE_BYTES: Final = FULFILLMENT_NAMESPACE.bytes


def output_event_id(causation_id: str, event_type: str, subject: str) -> uuid.UUID:
    """The id of the output event of `event_type` about `subject` caused by `causation_id`.

    `subject` is the event's subject (the session id); for `session.rejected`, which has none,
    it is the customer id (`data.customer_id`, also the message key). The name is unambiguous
    although a causation id may contain '|': the type never does and the subject is a UUID.
    """
    return uuid.uuid5(FULFILLMENT_NAMESPACE, f"{causation_id}|{event_type}|{subject}")


# A batch asks for the session id of each of its payments twice (who owns what, then the
# decision): the cache answers the second time. Bounded: a miss only costs the hash again.
@lru_cache(maxsize=8192)
def session_id_for_payment(payment_id: str) -> uuid.UUID:
    """The id of the one session a payment can create, so a retried payment finds it again."""
    return _uuid5("session|" + payment_id)


def _uuid5(name: str) -> uuid.UUID:
    """`uuid.uuid5(FULFILLMENT_NAMESPACE, name)`, without `uuid.UUID.__init__`'s checks (plain
    Python, three quarters of the call): the value is built from the digest as `uuid5` builds
    it, and set the way `UUID.__init__` sets it. A test holds it equal to `uuid.uuid5`."""
    value = int.from_bytes(sha1(_NAMESPACE_BYTES + name.encode()).digest()[:16])
    value = (value & _KEEP) | _VERSION_5
    made = object.__new__(uuid.UUID)
    object.__setattr__(made, "int", value)
    object.__setattr__(made, "is_safe", uuid.SafeUUID.unknown)
    return made


# The version (5) and variant (RFC 4122) bits, as UUID(bytes=..., version=5) sets them.
_KEEP: Final = ~((0xC000 << 48) | (0xF000 << 64)) & ((1 << 128) - 1)
_VERSION_5: Final = (0x8000 << 48) | (5 << 76)


def output_event_id_text(causation_id: str, event_type: str, subject: str) -> str:
    """`str(output_event_id(...))` in a third of the time: the id of every output event is
    computed on the hot path, and uuid.UUID's constructor is plain Python."""
    digest = bytearray(
        sha1(_NAMESPACE_BYTES + f"{causation_id}|{event_type}|{subject}".encode()).digest()[:16]
    )
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    text = digest.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
