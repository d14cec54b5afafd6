"""`fulfillment restore`: the database rebuilt from `sessions.events` alone, for when the
inputs have expired from their topics. Sessions, payments' outcomes, customers and the decided
inputs' dedupe records come from the outputs that announced them, written through the `Store`
port in chunks; `fulfillment run` on the result then decides every new event as the old
database would have. `service.reprocess.restore` does it; this module opens the target and
prints the summary.

Not restored: the dedupe records of inputs that caused no output (duplicates, ignored ends),
which no output names; and the outbox (what was published is published).

Parked events were never published: the changelog cannot bring them back. They are copied, in
their order and with their reasons, from the database being replaced (FULFILLMENT_DATABASE_URL)
when it can still be read, and named. When it cannot, the restore says so and exits 4 unless
`--accept-parked`: it cannot tell whether a payment there is left without its outcome. It then
brings back, parked, what the input topics still hold that was consumed without any output
(`service/reprocess/without_outcome.py`), and names it; ends, and what retention deleted, stay
unknown.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from service.config.settings import Settings
from service.entrypoints import output
from service.entrypoints.output import Progress
from service.entrypoints.reprocess_lines import failure_line, parked_line
from service.reprocess.history import BadTarget, LiveParked, open_empty_target
from service.reprocess.restore import restore as restore_into
from service.reprocess.restore_state import Restored
from service.reprocess.without_outcome import WithoutOutcome


async def restore(
    settings: Settings, *, database_url: str, as_json: bool = False, accept_parked: bool = False
) -> int:
    try:
        clients, pool = await open_empty_target(settings, database_url)
    except BadTarget as error:
        _error(str(error))
        return error.exit_code
    try:
        progress = Progress("restore", 0)
        restored = await restore_into(settings, clients, pool, progress)
    except Exception as error:
        line = failure_line(error, settings)
        if line is None:
            raise
        _error(line)
        return 1
    finally:
        await pool.close()
    state, parked, unpublished = restored.state, restored.parked, restored.unpublished
    summary = _summary(state, progress.seconds) | {
        "parked": parked.as_rows(),
        "parked_unknown": parked.unknown,
        "ends_without_output": None if unpublished is None else unpublished.ends,
    }
    if as_json:
        print(json.dumps(summary))
    else:
        print(
            f"restored from {summary['outputs']} outputs in {summary['seconds']} s: "
            f"{summary['sessions']} sessions ({summary['active']} active), "
            f"{summary['payments']} payments, {summary['customers']} customers, "
            f"{summary['dedupe_records']} dedupe records"
        )
        _print_parked(parked, unpublished)
    if parked.unknown:  # on stderr, with --json too
        outcome = "restored without them (--accept-parked)" if accept_parked else "exit 4"
        _error(
            f"parked events unknown: {parked.unknown}; any parked there and not on the input "
            f"topics are not restored: {outcome}"
        )
    return output.PARTLY if parked.unknown and not accept_parked else output.OK


def _print_parked(parked: LiveParked, unpublished: WithoutOutcome | None) -> None:
    if parked.events:
        where = "the database being replaced" if unpublished is None else "the input topics"
        print(
            f"{len(parked.events)} parked events, not on sessions.events, brought back from "
            f"{where}: `fulfillment parked release` decides them"
        )
        for row in parked.as_rows():
            print(parked_line(row))
    if unpublished is not None and unpublished.ends:
        print(f"{unpublished.ends} ends without an output (ignored, or parked): not restored")


def _summary(state: Restored, seconds: float) -> dict[str, Any]:
    return {
        "outputs": state.outputs,
        "sessions": len(state.sessions),
        "active": sum(s.active for s in state.sessions.values()),
        "payments": len(state.payments),
        "customers": len(state.customers),
        "dedupe_records": len(state.claims),
        "seconds": round(seconds, 2),
    }


def _error(message: str) -> None:
    print(f"fulfillment restore: {message}", file=sys.stderr)
