"""`fulfillment rebuild`: re-decide the input topics into an empty database, through the same
handlers and store as the service, and prove it: every re-made output against the published one
(`service.reprocess.rebuild`; this module opens the target and prints the outcome).

`--order published` (the default) follows the changelog (`service.reprocess.replay_order`): the
result is the live state, and any difference is a real one. `--order arrival` ignores the
changelog and meets the inputs as they arrived, for "what would this code decide differently?"
before a deploy; its differences come explained (sweeper timing, cross-topic order).

Nothing is published, unless to `--shadow-topic`; the re-made outputs are discarded from the
database's outbox, so the service started on it later publishes nothing again.

The events parked in the database being replaced (FULFILLMENT_DATABASE_URL) were never decided
nor published: they are parked again here, not decided, with their reasons, and reported, so the
rebuilt database holds them as the live one does. When that database cannot be read the rebuild
says so, decides them, and their outputs show as differences (published nowhere).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from service.config.settings import Settings
from service.entrypoints.output import Progress
from service.entrypoints.reprocess_lines import failure_line, parked_line
from service.reprocess.changelog import Published
from service.reprocess.history import BadTarget, open_empty_target, read_live_parked
from service.reprocess.rebuild import Order, Outcome
from service.reprocess.rebuild import rebuild as rebuild_into


async def rebuild(
    settings: Settings,
    *,
    database_url: str,
    shadow_topic: str | None = None,
    order: Order = "published",
    as_json: bool = False,
    workers: int = 1,
) -> int:
    try:
        clients, pool = await open_empty_target(settings, database_url)
    except BadTarget as error:
        _error(str(error))
        return error.exit_code
    try:
        outcome = await rebuild_into(
            clients,
            pool,
            order=order,
            live_parked=await read_live_parked(settings),
            shadow_topic=shadow_topic,
            progress=lambda total: Progress("rebuild", total),
            workers=workers,
        )
    except Exception as error:
        line = failure_line(error, settings)
        if line is None:
            raise
        _error(line)
        return 1
    finally:
        await pool.close()
    report(outcome, as_json=as_json, order=order)
    return 0 if not outcome.found else 1


def report(outcome: Outcome, *, as_json: bool, order: Order) -> None:
    if as_json:
        print(json.dumps(_json(outcome, order), indent=None))
        return
    rate = outcome.events / outcome.seconds if outcome.seconds else 0.0
    print(
        f"{len(outcome.remade)} decisions re-made, {len(outcome.found)} differ "
        f"({outcome.events} events in {outcome.seconds:.1f} s, {rate:,.0f}/s, order {order})"
    )
    if outcome.unreachable:
        print(
            f"{outcome.unreachable} published outputs have no cause left on the input topics "
            "(retention): they show as differences; `fulfillment restore` needs no inputs"
        )
    if outcome.parked:
        print(
            f"{len(outcome.parked)} events parked, not decided, as in the database being "
            "replaced: `fulfillment parked release` decides them"
        )
        for row in outcome.parked:
            print(parked_line(row))
    if outcome.parked_missing:
        print(
            f"{len(outcome.parked_missing)} events parked in the database being replaced are "
            "no longer on the input topics: not in the new database"
        )
        for row in outcome.parked_missing:
            print(parked_line(row))
    if outcome.live_parked.unknown:
        print(
            f"parked events unknown: {outcome.live_parked.unknown}; any parked there were "
            "decided here and show as differences"
        )
    for d in outcome.found:
        print(f"differs: {d.id} ({d.explanation})")
        print(f"  expected: {_text(d.expected)}")
        print(f"  got:      {_text(d.got)}")


def _text(p: Published | None) -> str:
    return "(nothing)" if p is None else f"key={p.key} {p.value.decode(errors='replace')}"


def _json(outcome: Outcome, order: Order) -> dict[str, Any]:
    return {
        "order": order,
        "remade": len(outcome.remade),
        "differ": len(outcome.found),
        "events": outcome.events,
        "seconds": round(outcome.seconds, 3),
        "forced": outcome.forced,
        "unreachable": outcome.unreachable,
        "parked": outcome.parked,
        "parked_missing": outcome.parked_missing,
        "parked_unknown": outcome.live_parked.unknown,
        "differences": [
            {
                "id": d.id,
                "explanation": str(d.explanation),
                "expected": None if d.expected is None else _wire(d.expected),
                "got": None if d.got is None else _wire(d.got),
            }
            for d in outcome.found
        ],
    }


def _wire(p: Published) -> dict[str, str]:
    return {"key": p.key, "value": p.value.decode(errors="replace")}


def _error(message: str) -> None:
    print(f"fulfillment rebuild: {message}", file=sys.stderr)
