"""Record sizes the consumer, the producers and the dead-letter topic must agree on."""

from __future__ import annotations

from typing import Final

# The largest record a consumer fetches from one partition in one request. 1 MiB is room for a
# batch's share of any partition (2,000 events are under 1 MiB); more only buffers records the
# loop cannot take yet: 4 MiB cost about 25 MiB of RSS per consumer. A single larger message is
# still fetched whole (the broker's rule), up to the input topic's max.message.bytes (1 MiB by
# default).
MAX_FETCH_BYTES: Final = 1024 * 1024
# The dead-letter topic's max.message.bytes and the producer's max_request_size: the largest
# input with room for the error headers and the record overhead. A dead letter larger than this
# (an input topic that allows more) becomes a placeholder pointing at the original.
DLQ_HEADER_ROOM: Final = 64 * 1024
DLQ_MAX_MESSAGE_BYTES: Final = MAX_FETCH_BYTES + DLQ_HEADER_ROOM
