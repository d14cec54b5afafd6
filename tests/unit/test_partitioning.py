"""The relay picks a customer's partition as the Java client's default partitioner does, so
other producers keying by customer id put that customer's events on the same partition."""

from __future__ import annotations

import pytest
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given
from hypothesis import strategies as st

from service.adapters.kafka import outbox_batches
from service.adapters.kafka.murmur2 import murmur2
from service.adapters.kafka.relay import partition_for

# Apache Kafka's own test vectors for Utils.murmur2 (clients' UtilsTest.testMurmur2), as the
# signed 32-bit values Java returns.
JAVA_MURMUR2 = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


@pytest.mark.parametrize(("key", "java_hash"), JAVA_MURMUR2.items())
@pytest.mark.parametrize("partitions", [1, 6, 7, 64])
def test_the_partition_is_the_java_clients_choice(
    key: bytes, java_hash: int, partitions: int
) -> None:
    # Java: Utils.toPositive(Utils.murmur2(key)) % numPartitions
    assert partition_for(key, partitions) == (java_hash & 0x7FFFFFFF) % partitions


@given(key=st.binary(max_size=200))
def test_the_word_by_word_murmur2_is_aiokafkas_murmur2(key: bytes) -> None:
    assert murmur2(key) == aiokafka_murmur2(key)


def test_the_partition_cache_stays_bounded_and_answers_the_same_once_emptied(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(outbox_batches, "CACHED_KEYS", 8)
    monkeypatch.setattr(outbox_batches, "_partition_of", {})
    keys = [f"customer-{n}".encode() for n in range(20)]

    for _ in range(2):
        found = [partition_for(key, 6) for key in keys]
        assert len(outbox_batches._partition_of[6]) <= 8

    assert found == [(murmur2(key) & 0x7FFFFFFF) % 6 for key in keys]
