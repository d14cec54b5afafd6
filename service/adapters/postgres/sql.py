"""Everything the service says to PostgreSQL: each statement once, named, parameterised.

Locking, in one place: every transaction that decides anything about a customer first locks that
customer's row in `customers`, in ascending id order, so two transactions that share customers
queue instead of deadlocking, and decisions about one customer are strictly serial across
partitions, topics and instances, the sweeper included (it takes the same locks the same way).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from uuid import UUID

OUTBOX_CHANNEL = "fulfillment_outbox"
# Advisory lock keys (arbitrary constants, in this service's own range).
RELAY_LOCK_KEY = 0x5F_0F_1E_00_00_00_00_01
MIGRATION_LOCK_KEY = 0x5F_0F_1E_00_00_00_00_02

_COLUMNS = (
    "id, customer_id, payment_id, session_type, status, created_at, expires_at, "
    "created_event_id, mechanic_id, accepted_at, accepted_event_id, closed_at, close_reason"
)
_TYPES = (
    "uuid[], uuid[], text[], text[], text[], timestamptz[], timestamptz[], "
    "uuid[], uuid[], timestamptz[], uuid[], timestamptz[], text[]"
)
_ARGS = ", ".join(f"${i}::{t.strip()}" for i, t in enumerate(_TYPES.split(","), start=1))

COMMIT = "COMMIT"
ROLLBACK = "ROLLBACK"
# Customers get their lock row in a short transaction of its own, committed before the deciding
# transaction starts: inserting rows inside it would lock them in insertion order, not id order.
# That commit does not wait for the WAL flush (set_config(..., true) lasts to the end of this
# one-statement transaction): the deciding transaction's own commit, later in the WAL, flushes
# these rows too before anything that depends on them is durable, and a row lost in a crash
# before that is inserted again by the next batch. It saved a WAL fsync per batch with new
# customers: under load, commits spent a quarter of their time in IO/WALSync.
ENSURE_CUSTOMERS = (
    "WITH relaxed AS (SELECT set_config('synchronous_commit', 'off', true)) "
    "INSERT INTO customers (id) SELECT c FROM unnest($1::uuid[]) AS c, relaxed ORDER BY c "
    "ON CONFLICT DO NOTHING"
)
LOCK_CUSTOMERS = "SELECT id FROM customers WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE"


BEGIN = "BEGIN"
# Up to this many ids (customers to lock and to ensure), `begin_locked`; above it, the three
# statements with the ids bound as parameters (encoded by asyncpg in C), three round trips that
# do not count beside a batch that large, where writing the ids into the text would cost the
# client about a microsecond each.
LITERAL_IDS_MAX = 100


def begin_locked(customer_ids: Sequence[UUID], ensure: Sequence[UUID]) -> str:
    """The start of a deciding transaction in one simple query, one round trip: ENSURE_CUSTOMERS
    and its own COMMIT (when `ensure` is not empty), BEGIN, LOCK_CUSTOMERS. A simple query takes
    no parameters, so the ids are written into it, each as the 32 hex digits of its integer:
    nothing else reaches the text. The server runs the statements one after the other, each
    with its own snapshot, and stops at the first that fails; the statements before that
    COMMIT stay in the implicit transaction it ends."""
    lock = f"BEGIN; {LOCK_CUSTOMERS.replace('$1::uuid[]', _uuid_array(customer_ids))}"
    if not ensure:
        return lock
    return f"{ENSURE_CUSTOMERS.replace('$1::uuid[]', _uuid_array(ensure))}; COMMIT; {lock}"


def _uuid_array(ids: Iterable[UUID]) -> str:
    return "'{" + ",".join(f"{i.int:032x}" for i in ids) + "}'::uuid[]"


CUSTOMERS_OF_SESSIONS = "SELECT id, customer_id FROM sessions WHERE id = ANY($1::uuid[])"
CLAIM_EVENTS = (
    "INSERT INTO processed_events (source, event_id) "
    # In key order, so two batches holding duplicates of each other wait instead of deadlocking.
    "SELECT * FROM unnest($1::text[], $2::text[]) AS k ORDER BY 1, 2 ON CONFLICT DO NOTHING "
    "RETURNING source, event_id"
)
# What a batch reads under its customers' locks, in one round trip: the customers' active
# sessions and the named ones ($2), then the decided payments ($3) and the customers with
# parked events, each row tagged in its last column ('s', 'p', 'c') and carrying its value in
# a session column's place (payment_id, customer_id).
_NOTHING = (
    "NULL::uuid, {customer}, {payment}, NULL, NULL, NULL::timestamptz, NULL::timestamptz, "
    "NULL::uuid, NULL::uuid, NULL::timestamptz, NULL::uuid, NULL::timestamptz, NULL"
)
_LOAD_SNAPSHOT = (
    f"(SELECT {_COLUMNS}, 's' FROM sessions "
    "WHERE customer_id = ANY($1::uuid[]) AND status IN ('waiting', 'live') "
    f"UNION SELECT {_COLUMNS}, 's' FROM sessions WHERE id = ANY($2::uuid[])) "
    f"UNION ALL SELECT {_NOTHING.format(customer='NULL::uuid', payment='payment_id')}, 'p' "
    "FROM payments WHERE payment_id = ANY($3::text[]) "
    f"UNION ALL SELECT DISTINCT {_NOTHING.format(customer='customer_id', payment='NULL')}, 'c' "
    "FROM parked_events WHERE customer_id = ANY($1::uuid[])"
)
# The claim (CLAIM_EVENTS, of $4 and $5) and the snapshot in one statement, one round trip, the
# claimed keys tagged 'e' with source and id in payment_id's and session_type's places. Run
# after the locks, like the two it replaces: the snapshot is the statement's, taken once the
# locks are held, and a claim that waits for a concurrent copy of its event finds it claimed.
LOAD_AND_CLAIM = (
    "WITH claimed AS ("
    + CLAIM_EVENTS.replace("$1::", "$4::").replace("$2::", "$5::")
    + f") {_LOAD_SNAPSHOT} UNION ALL SELECT NULL::uuid, NULL::uuid, source, event_id, "
    "NULL, NULL::timestamptz, NULL::timestamptz, NULL::uuid, NULL::uuid, NULL::timestamptz, "
    "NULL::uuid, NULL::timestamptz, NULL, 'e' FROM claimed"
)
# Claims of events that were set aside (parked) once claimed, in the same transaction.
UNCLAIM_EVENTS = (
    "DELETE FROM processed_events WHERE (source, event_id) IN "
    "(SELECT * FROM unnest($1::text[], $2::text[]))"
)
# Updates run before inserts so that a customer's old session leaves the one-active index
# before the new one enters it.
UPDATE_SESSIONS = (
    "UPDATE sessions AS s SET status = u.status, mechanic_id = u.mechanic_id, "
    "accepted_at = u.accepted_at, accepted_event_id = u.accepted_event_id, "
    "closed_at = u.closed_at, close_reason = u.close_reason "
    f"FROM unnest({_ARGS}) AS u({_COLUMNS}) WHERE s.id = u.id"
)
# New sessions, payments and outbox rows go in by binary COPY (asyncpg's
# copy_records_to_table), not as unnest() arrays: asyncpg checks every array element against
# the collection ABCs in Python, so the same rows cost the client a third of the CPU by COPY
# (0.9 against 2.7 us a row for 2,000 outbox rows). COPY checks the same constraints and
# unique indexes, row by row, and the outbox's `seq` is still drawn in the batch's order.
SESSIONS_TABLE = "sessions"
SESSION_COPY_COLUMNS = tuple(name.strip() for name in _COLUMNS.split(","))
PAYMENTS_TABLE = "payments"
PAYMENT_COPY_COLUMNS = ("payment_id", "customer_id", "event_id", "outcome", "session_id")
OUTBOX_TABLE = "outbox"
OUTBOX_COPY_COLUMNS = ("event_id", "key", "value", "traceparent")
# A small batch's inserts (up to WRITE_ROWS_MAX rows) in one statement instead: one round trip
# where the three COPYs took three, and the client's extra CPU is a few microseconds. The
# tables have no foreign keys and no index spans two of them, so the order in which the three
# inserts run does not matter; the outbox rows still draw their `seq` in the batch's order.
WRITE_ROWS_MAX = 100
_PAYMENT_TYPES = ("text", "uuid", "text", "text", "uuid")
_OUTBOX_TYPES = ("uuid", "bytea", "bytea", "text")
_PAYMENT_ARGS = ", ".join(f"${i}::{t}[]" for i, t in enumerate(_PAYMENT_TYPES, start=14))
_OUTBOX_ARGS = ", ".join(f"${i}::{t}[]" for i, t in enumerate(_OUTBOX_TYPES, start=19))
INSERT_ROWS = (
    f"WITH s AS (INSERT INTO sessions ({_COLUMNS}) SELECT * FROM unnest({_ARGS})), "
    f"p AS (INSERT INTO payments ({', '.join(PAYMENT_COPY_COLUMNS)}) "
    f"SELECT * FROM unnest({_PAYMENT_ARGS})) "
    f"INSERT INTO outbox ({', '.join(OUTBOX_COPY_COLUMNS)}) SELECT e, k, v, t "
    f"FROM unnest({_OUTBOX_ARGS}) WITH ORDINALITY AS o(e, k, v, t, n) ORDER BY n"
)
# Its own transaction, committed without waiting for the WAL flush. Inside the deciding
# transaction, NOTIFY takes a database-wide lock that is held through the commit's flush, so
# concurrent commits would queue behind each other's fsync instead of sharing one. A lost
# notification costs nothing but a poll interval. The payload is the commit's time (Unix
# seconds, formatted by the caller as a number), which the relay's wake-up histogram counts from.
NOTIFY_OUTBOX = (
    "BEGIN; SET LOCAL synchronous_commit TO off; "
    f"SELECT pg_notify('{OUTBOX_CHANNEL}', '{{at:.6f}}'); COMMIT"
)
# The deciding transaction's COMMIT followed, in the same round trip, by that notification, its
# payload the server's clock just after the commit (same meaning as the caller's time above).
# The COMMIT runs first and alone decides the transaction's fate; the notification's own
# transaction commits after it.
COMMIT_AND_NOTIFY = (
    "COMMIT; BEGIN; SET LOCAL synchronous_commit TO off; "
    f"SELECT pg_notify('{OUTBOX_CHANNEL}', extract(epoch FROM clock_timestamp())::text); COMMIT"
)
# For the relay's own connection: a delete lost in a server crash only means those rows are
# published again, with the same ids, which the relay's at-least-once contract allows anyway.
RELAY_SESSION = "SET synchronous_commit TO off"

OUTBOX_NEXT = "SELECT seq, key, value, traceparent FROM outbox WHERE seq > $2 ORDER BY seq LIMIT $1"
OUTBOX_DELETE = "DELETE FROM outbox WHERE seq = ANY($1::bigint[])"
# A new leader records itself before its first send (durably: SET LOCAL synchronous_commit),
# reading who led before and whether that leader let go cleanly.
RELAY_TAKE_OVER = (
    "WITH before AS (SELECT holder, clean FROM relay_leader) "
    "UPDATE relay_leader SET holder = $1, clean = false "
    "RETURNING (SELECT holder FROM before), (SELECT clean FROM before)"
)
RELAY_LET_GO = "UPDATE relay_leader SET clean = true WHERE holder = $1"
DURABLE_COMMIT = "SET LOCAL synchronous_commit TO on"
# For the watch loop, once per interval: the oldest row through the primary key, one index page.
OUTBOX_BACKLOG = (
    "SELECT (SELECT count(*) FROM outbox) AS rows, "
    "COALESCE((SELECT extract(epoch FROM now() - created_at) FROM outbox ORDER BY seq LIMIT 1), 0)"
    "::float8 AS oldest_age, current_setting('transaction_read_only')::bool AS read_only"
)
PING = "SELECT 1"
# The lock is taken only where writes are: NULL from a read-only server (a demoted primary left
# running, or a standby), which holds no leader worth having and whose lock nobody else sees.
TRY_LOCK = (
    "SELECT CASE WHEN current_setting('transaction_read_only')::bool THEN NULL "
    "ELSE pg_try_advisory_lock($1) END"
)
UNLOCK = "SELECT pg_advisory_unlock($1)"
# A bigint advisory key shows in pg_locks as classid (high 32 bits), objid (low), objsubid 1.
_HOLDS = (
    "EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
    "AND pid = pg_backend_pid() AND objsubid = 1 "
    "AND ((classid::bigint << 32) | objid::bigint) = {key})"
)
HOLDS_LOCK = "SELECT " + _HOLDS.format(key="$1")
# The relay's fence before each send: the lock, and whether the server still takes writes (a
# demoted primary left running read-only, or a standby, answers reads but could never delete
# what is sent: every round would publish the same rows again).
FENCE = HOLDS_LOCK + ", current_setting('transaction_read_only')::bool"
# The first page of a round with the fence in the same statement (one snapshot, one round trip):
# for a round that needs no more than one page, nothing but building the batches lies between
# this statement and the send.
OUTBOX_NEXT_FENCED = (
    f"SELECT seq, key, value, traceparent, (SELECT {_HOLDS.format(key='$2')}) AS leads, "
    "current_setting('transaction_read_only')::bool AS read_only "
    "FROM outbox ORDER BY seq LIMIT $1"
)

# A parked customer is never due: nothing is published for them until an operator releases
# them (their parked events are then decided at their own times, before any deadline counts).
# Left out here, not only under the lock in the sweep, so that a chunk full of parked customers
# cannot hide the due ones behind it; the sweep checks again under the customers' locks.
_NOT_PARKED = "NOT EXISTS (SELECT 1 FROM parked_events p WHERE p.customer_id = s.customer_id)"
DUE_CUSTOMERS = (
    "(SELECT customer_id FROM sessions s WHERE status = 'waiting' AND expires_at <= $1 "
    f"AND {_NOT_PARKED} LIMIT $3) "
    "UNION (SELECT customer_id FROM sessions s WHERE status = 'live' AND accepted_at <= $2 "
    f"AND {_NOT_PARKED} LIMIT $3)"
)
ACTIVE_SESSIONS = (
    f"SELECT {_COLUMNS} FROM sessions "
    "WHERE customer_id = ANY($1::uuid[]) AND status IN ('waiting', 'live')"
)
# Oldest first, by the B-tree on processed_at (migration 0002): with ORDER BY the index is the
# plan even before the table's first ANALYZE, and a prune with nothing due reads one leaf page.
PRUNE_PROCESSED = (
    "DELETE FROM processed_events WHERE ctid = ANY(ARRAY("
    "SELECT ctid FROM processed_events WHERE processed_at < now() - $1::interval "
    "ORDER BY processed_at LIMIT $2))"
)

CREATE_MIGRATIONS_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    "version integer PRIMARY KEY, name text NOT NULL, "
    "applied_at timestamptz NOT NULL DEFAULT now())"
)
APPLIED_MIGRATIONS = "SELECT version FROM schema_migrations ORDER BY version"
MIGRATIONS_TABLE_EXISTS = "SELECT to_regclass('schema_migrations') IS NOT NULL"
RECORD_MIGRATION = "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)"
ADVISORY_LOCK = "SELECT pg_advisory_lock($1)"

# Parking (migration 0003). A customer's parked rows are read and written under that
# customer's lock, like everything else decided about them, so parking and release are serial
# with the customer's batches.
PARKED_CUSTOMERS = (
    "SELECT DISTINCT customer_id FROM parked_events WHERE customer_id = ANY($1::uuid[])"
)
PARK_EVENTS = (
    "INSERT INTO parked_events (customer_id, source, event_id, type, body, reason) "
    "SELECT customer_id, source, event_id, type, body, reason "
    "FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::bytea[], $6::text[]) "
    "WITH ORDINALITY AS p(customer_id, source, event_id, type, body, reason, n) "
    # In the given order, so seq follows arrival order.
    "ORDER BY n ON CONFLICT DO NOTHING"
)
_PARKED_COLUMNS = "seq, customer_id, source, event_id, type, body, reason, parked_at"
PARKED_EVENTS_OF = (
    f"SELECT {_PARKED_COLUMNS} FROM parked_events WHERE customer_id = ANY($1::uuid[]) "
    "ORDER BY seq LIMIT $2"
)
PARKED_EVENTS_ALL = f"SELECT {_PARKED_COLUMNS} FROM parked_events ORDER BY seq LIMIT $1"
UNPARK = "DELETE FROM parked_events WHERE seq = ANY($1::bigint[])"
PARKED_TOTALS = (
    "SELECT count(DISTINCT customer_id) AS customers, count(*) AS events FROM parked_events"
)

# Support lookups (`fulfillment sessions show`): read-only, by primary key or an index.
SESSIONS_OF_CUSTOMER = (
    f"SELECT {_COLUMNS} FROM sessions WHERE customer_id = $1 ORDER BY created_at DESC LIMIT $2"
)
SESSION_BY_ID = f"SELECT {_COLUMNS} FROM sessions WHERE id = $1"
PAYMENT_BY_ID = (
    "SELECT payment_id, customer_id, event_id, outcome, session_id FROM payments "
    "WHERE payment_id = $1"
)
# parked_events is small (what waits for an operator), so reading its bodies is cheap.
PARKED_PAYMENT = (
    "SELECT customer_id FROM parked_events WHERE type = 'payment.completed' "
    "AND convert_from(body, 'UTF8')::jsonb #>> '{data,payment_id}' = $1 LIMIT 1"
)

# A rebuild or restore writes only into a database that holds nothing decided yet.
TABLES_IN_USE = (
    "SELECT name FROM (VALUES "
    "('customers', EXISTS (SELECT 1 FROM customers)), "
    "('sessions', EXISTS (SELECT 1 FROM sessions)), "
    "('payments', EXISTS (SELECT 1 FROM payments)), "
    "('processed_events', EXISTS (SELECT 1 FROM processed_events)), "
    "('outbox', EXISTS (SELECT 1 FROM outbox))) AS t(name, used) WHERE used"
)
# What a rebuild re-made is compared, not published: its outbox is emptied at the end.
DISCARD_OUTBOX = "DELETE FROM outbox"
