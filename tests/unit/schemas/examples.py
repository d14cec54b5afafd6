"""The contract's example event: the one base the schema tests decode and vary."""

from __future__ import annotations

import json
from typing import Any

# Copied from docs/contract.md, section "Example".
CONTRACT_EXAMPLE = b"""
{
  "specversion": "1.0",
  "id": "evt_1QxY2b3c4d",
  "source": "payments",
  "type": "payment.completed",
  "time": "2026-11-24T09:30:00Z",
  "datacontenttype": "application/json",
  "data": {
    "payment_id": "pi_3QxY2b3c4d5e",
    "customer_id": "6f1c8a5e-2b8d-4c1e-9a7f-0d3b5e8c2a41",
    "amount_cents": 2999,
    "currency": "USD",
    "session_type": "video"
  }
}
"""


def example() -> dict[str, Any]:
    """The contract example as a fresh dict, free to change."""
    event: dict[str, Any] = json.loads(CONTRACT_EXAMPLE)
    return event
