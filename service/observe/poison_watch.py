"""What the consumer's poison containment reports (service/handlers/poison.py): its retries
counted, each poison event and each paused search logged."""

from __future__ import annotations

import structlog

from service.core.parking import EventKey
from service.observe import metrics

log = structlog.get_logger("service.poison")


class PoisonWatch:
    def retried(self) -> None:
        metrics.poison_retries.inc()

    def found(self, key: EventKey, reason: str) -> None:
        source, event_id = key
        log.error("poison_parked", source=source, event_id=event_id, reason=reason)

    def paused(self, found: int) -> None:
        log.error("poison_search_paused", found=found)
