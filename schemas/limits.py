"""What an input value may be so that nothing after decode can fail on it.

A value that passes decode but fails later (a deadline that overflows, a key PostgreSQL cannot
index, a number its column cannot hold) does not go to the dead-letter topic: it fails the whole
batch, which is retried forever and wedges its partition. Every such value is therefore refused
here, at decode, where a refusal is a dead letter naming the field and the value.

The constants are the contract; README.md ("Decode limits") explains each.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic_core import PydanticCustomError, core_schema

# Business times (`time`), compared as instants, so that an offset cannot push the UTC value out:
# at or after EARLIEST_TIME and before LATEST_TIME. Deadlines are computed from them (time +
# request TTL, accepted time + max live); with both settings capped at MAX_DEADLINE_DAYS (the
# service's settings enforce the cap), every deadline stays far inside what datetime and
# PostgreSQL's timestamptz can hold. Nothing this service handles happened before the Unix epoch.
EARLIEST_TIME: Final = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_TIME: Final = datetime(9000, 1, 1, tzinfo=UTC)
# The longest a deadline may be after its business time: the cap on the request TTL and on the
# max live duration settings.
MAX_DEADLINE_DAYS: Final = 30

# CloudEvents `id` and `source`, in UTF-8 bytes: together the dedupe primary key (source,
# event_id), whose B-tree entry PostgreSQL limits to 2704 bytes (a third of a page).
MAX_ID_BYTES: Final = 1024
MAX_SOURCE_BYTES: Final = 1024
# `payment_id`: the payments primary key. 255 characters are at most 1020 bytes in UTF-8 (4 a
# character), so the character count, checked in pydantic-core, bounds the bytes too.
MAX_PAYMENT_ID_CHARS: Final = 255
MAX_PAYMENT_ID_BYTES: Final = 4 * MAX_PAYMENT_ID_CHARS
# `amount_cents`: a signed 64-bit integer, what every consumer of the amount can hold.
MAX_AMOUNT_CENTS: Final = 2**63 - 1

# `id` and `source` may contain no control character (U+0000-U+001F, U+007F): the dedupe
# identity joins them with U+001F, which must not occur in either for the join to be unambiguous.
# Everything stored as text may contain no NUL, which PostgreSQL text cannot hold.
NO_CONTROL_PATTERN: Final = r"^[^\x00-\x1f\x7f]+$"
NO_NUL_PATTERN: Final = r"^[^\x00]+$"

# pydantic's pattern errors quote the regular expression; a reason says what it means instead.
PATTERN_MEANINGS: Final = {
    NO_CONTROL_PATTERN: "must not contain control characters (U+0000-U+001F, U+007F)",
    NO_NUL_PATTERN: "must not contain NUL (U+0000)",
}
# The error type of an identifier that is empty, too long in UTF-8 or holds a control character.
IDENTIFIER_ERROR: Final = "identifier_text"


@dataclass(frozen=True, slots=True)
class Identifier:
    """`Annotated[str, Identifier(max_bytes)]`: 1 to `max_bytes` bytes of UTF-8 text without
    control characters, checked in pydantic-core on the usual path.

    pydantic-core counts characters, not bytes. Text of printable ASCII up to `max_bytes`
    characters, or of any allowed characters up to `max_bytes // 4` (a character is at most 4
    bytes), always fits: one regular expression says so without leaving Rust. Only the rest
    (long non-ASCII text) is counted in Python, and only once the expression has failed.
    """

    max_bytes: int

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        ascii_chars, any_chars = self.max_bytes, self.max_bytes // 4
        fits = rf"^(?:[\x20-\x7e]{{1,{ascii_chars}}}|[^\x00-\x1f\x7f]{{1,{any_chars}}})$"
        counted = core_schema.no_info_after_validator_function(
            max_utf8_bytes(self.max_bytes),
            core_schema.str_schema(
                min_length=1, max_length=self.max_bytes, pattern=NO_CONTROL_PATTERN
            ),
        )
        return core_schema.union_schema(
            [core_schema.str_schema(pattern=fits), counted],
            mode="left_to_right",
            custom_error_type=IDENTIFIER_ERROR,
            custom_error_message=f"String should have 1 to {self.max_bytes} bytes in UTF-8 and "
            "no control characters (U+0000-U+001F, U+007F)",
            custom_error_context={"max_bytes": self.max_bytes},
        )

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> dict[str, Any]:
        # What JSON Schema can say: its lengths count characters, so bytes go in the description.
        return {
            "type": "string",
            "minLength": 1,
            "maxLength": self.max_bytes,
            "pattern": NO_CONTROL_PATTERN,
        }


def explain_identifier(value: object, max_bytes: int) -> str:
    """Which rule of `Identifier(max_bytes)` the refused `value` broke, for a reason header."""
    if not isinstance(value, str):
        return "Input should be a valid string"
    if not value:
        return "String should have at least 1 character"
    for index, char in enumerate(value):
        if char <= "\x1f" or char == "\x7f":
            return (
                f"String should have no control characters, has U+{ord(char):04X} at index {index}"
            )
    size = len(value.encode("utf-8", "surrogatepass"))
    return f"String should have at most {max_bytes} bytes in UTF-8, not {size}"


def max_utf8_bytes(limit: int) -> Callable[[str], str]:
    """A validator function refusing text longer than `limit` bytes in UTF-8."""

    def check(value: str) -> str:
        size = len(value.encode("utf-8", "surrogatepass"))
        if size > limit:
            raise PydanticCustomError(
                "string_too_many_bytes",
                "String should have at most {max_bytes} bytes in UTF-8, not {bytes}",
                {"max_bytes": limit, "bytes": size},
            )
        return value

    return check
