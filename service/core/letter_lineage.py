"""The dead letters of one message, told apart from those of every other: its lineage.

Every dead letter names its original origin (`schemas.DLQ_ORIGINAL`, where the message first
failed); a message redriven and failing again leaves one more letter with the same original.
`Lineage` is fed each letter's original, failure time and place on the dead-letter topic, in any
order, and keeps for each original only its latest letter and how many letters it has: its size
is bounded by the distinct originals, never by the letters (nor their bytes).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(slots=True)
class Chain(Generic[T]):
    """One original's letters: where its latest is (DLQ partition and offset), when that one
    failed (seconds since the epoch), what the caller keeps of it (`latest`, small: never a
    record's bytes), and how many letters name this original."""

    partition: int
    offset: int
    failed_at: float
    latest: T
    attempts: int


class Lineage(Generic[T]):
    def __init__(self) -> None:
        self._chains: dict[str, Chain[T]] = {}

    def add(
        self, original: str, latest: T, *, failed_at: float, partition: int, offset: int
    ) -> None:
        """One more letter of `original`. The latest is the one that failed last; of two that
        failed at the same instant, the one added last (a duplicate of the same failure)."""
        chain = self._chains.get(original)
        if chain is None:
            self._chains[original] = Chain(partition, offset, failed_at, latest, 1)
            return
        chain.attempts += 1
        if failed_at >= chain.failed_at:
            chain.partition, chain.offset, chain.failed_at = partition, offset, failed_at
            chain.latest = latest

    def chain(self, original: str) -> Chain[T] | None:
        return self._chains.get(original)

    def chains(self) -> Iterator[tuple[str, Chain[T]]]:
        """Each original with its chain, in the order their first letters were added."""
        return iter(self._chains.items())
