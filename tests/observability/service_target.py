"""The whole service as a scrape target: `fulfillment run` with two instances, as an operator
starts it, on one port (the settings' FULFILLMENT_HTTP_PORT, which must be fixed, with the next
port free for the second instance). A thread with an event loop of its own (Prometheus is asked
from blocking code meanwhile) feeds it a steady mixed stream so that every metric moves:
payments created and rejected, acceptances, ends, redeliveries, messages that cannot be
decoded, and payments backdated past the TTL for the sweeper to cancel.

    with ServiceTarget(settings) as target:   # target.address is host:port of /metrics
        ...
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import uuid
from datetime import UTC, datetime, timedelta

from service.config.settings import Settings
from tests.commands import running
from tests.harness import Producer
from tests.observability.service_http import answer, until
from tests.settings_env import environment_of

START_TIMEOUT = 90.0
INSTANCES = 2


class ServiceTarget:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._address: concurrent.futures.Future[str] = concurrent.futures.Future()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, name="service-target", daemon=True)
        self.address = ""

    def __enter__(self) -> ServiceTarget:
        self._thread.start()
        self.address = self._address.result(timeout=START_TIMEOUT)
        return self

    def __exit__(self, *_: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=60)

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as error:
            if not self._address.done():
                self._address.set_exception(error)
            raise

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        settings = self._settings.model_copy(update={"processes": INSTANCES, "consumers": 1})
        address = f"{settings.http_host}:{settings.http_port}"
        async with (
            Producer(settings) as producer,
            running("run", env=environment_of(settings)),
        ):
            await until(
                lambda: answer(f"http://{address}", "/readyz"),
                lambda r: r[0] == 200,
                START_TIMEOUT,
            )
            self._address.set_result(address)
            feed = asyncio.create_task(_feed(producer, self._settings))
            try:
                await self._stop.wait()
            finally:
                feed.cancel()
                await asyncio.gather(feed, return_exceptions=True)


async def _feed(producer: Producer, settings: Settings) -> None:
    """Every 50 ms, one step of a busy instance's traffic."""
    step = 0
    previous: uuid.UUID | None = None
    while True:
        step += 1
        now = datetime.now(UTC)
        customer = uuid.uuid4()
        if step % 7 == 0:
            # Paid 20 minutes ago and never accepted: the sweeper cancels it at once.
            await producer.pay(customer, f"pi_late_{step}", time=now - timedelta(minutes=20))
        else:
            await producer.pay(customer, f"pi_{step}", time=now, event_id=f"target-{step}")
        if previous is not None and step % 3 == 0:
            await producer.pay(previous, f"pi_again_{step}", time=now)  # rejected: active
        if step % 5 == 0:
            await producer.pay(customer, f"pi_{step}", time=now, event_id=f"target-{step}")
        if step % 20 == 0:
            await producer.send(settings.topic_payments, b"not json")
        previous = customer
        await asyncio.sleep(0.05)
