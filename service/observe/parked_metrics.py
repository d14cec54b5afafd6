"""The parked gauges, set from the store's totals wherever they may have changed."""

from __future__ import annotations

from service.observe import metrics


def record_parked(totals: tuple[int, int]) -> None:
    customers, events = totals
    metrics.parked_customers.set(customers)
    metrics.parked_events.set(events)
