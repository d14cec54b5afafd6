"""The watch's Kafka check on the real broker: a broker answers, asked for no topic's metadata,
however many topics the cluster holds (decoding all of theirs stalled an instance's loop)."""

from __future__ import annotations

from typing import Any

import pytest

from service.adapters import postgres
from service.adapters.kafka.producer_owner import ProducerOwner
from service.bootstrap.factory import Clients
from service.bootstrap.service import create_topics
from service.observe.health import Health
from service.observe.watch import KAFKA, Watch

pytestmark = pytest.mark.integration


async def test_the_broker_check_is_answered_without_any_topic_s_metadata(
    make_settings: Any, pool: postgres.Pool
) -> None:
    settings = make_settings()
    await create_topics(Clients(settings))  # the cluster holds topics: at least these
    producer = Clients(settings).producer()
    await producer.start()
    health = Health()
    try:
        owner = ProducerOwner(producer)
        answer = await owner.check_broker()
        watch = Watch(interval=5.0, pool=pool, kafka=owner, consumers=[], health=health)
        await watch.check_once()
    finally:
        await producer.stop()
    assert answer.brokers
    assert answer.topics == []
    assert KAFKA not in health.problems()
