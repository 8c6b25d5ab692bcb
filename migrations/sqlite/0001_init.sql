-- tipreaper's audit trail and customer state, SQLite flavour (the file reaper.db in the state dir).
--
-- Times are TEXT in UTC with exactly six fractional digits, e.g. 2026-03-01T12:00:00.000000Z, so that
-- comparing the text compares the instants; each time column checks that shape. Compare with
-- strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-7 days') (its three fractional digits are close enough).
-- Ids of runs, plans and store instances are uuids as text; Partner Center ids are kept as sent.
-- An empty value is NULL. SQLite keeps these comments: `.schema` in the sqlite3 shell shows them.
--
-- Typical questions, answered by the indexes below:
--   a customer's history:   SELECT * FROM reaper_events WHERE customer_id = '…' ORDER BY at, id;
--   deletions, last 7 days: SELECT * FROM reaper_events WHERE action = 'delete' AND outcome = 'ok'
--                             AND at > strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-7 days');
--   failures by reason:     SELECT reason, count(*) FROM reaper_customers
--                             WHERE state IN ('failed', 'blocked') GROUP BY reason;
--   events of a run:        SELECT * FROM reaper_events WHERE run_id = '…' ORDER BY id;

-- +goose Up

-- One row per pass (or apply) of tipreaper: what it was asked to do and how it ended.
CREATE TABLE reaper_runs (
    id             TEXT    PRIMARY KEY,  -- run id, a UUIDv7 (sorts by start time)
    started_at     TEXT    NOT NULL CHECK (started_at LIKE '____-__-__T__:__:__.______Z'),
    finished_at    TEXT    CHECK (finished_at LIKE '____-__-__T__:__:__.______Z'),  -- NULL exactly while running
    mode           TEXT    NOT NULL CHECK (mode IN ('live', 'dry_run')),  -- dry_run only plans
    -- running, or how it ended: succeeded (every selected customer handled), partial, failed,
    -- interrupted (stopped, or its process died)
    status         TEXT    NOT NULL CHECK (status IN ('running', 'succeeded', 'partial', 'failed', 'interrupted')),
    policy         TEXT,  -- the only policy applied; NULL = all
    plan_id        TEXT,  -- apply: the plan carried out (a dry run's plan points back through reaper_plans.run_id)
    instance_id    TEXT    NOT NULL,  -- the store instance (process) that owns the run
    host           TEXT,  -- host name of the owning process
    pid            INTEGER,  -- process id on host
    listed         INTEGER NOT NULL DEFAULT 0 CHECK (listed >= 0),  -- customers listed from Partner Center
    selected       INTEGER NOT NULL DEFAULT 0 CHECK (selected >= 0),  -- selected by a policy and expired
    deleted        INTEGER NOT NULL DEFAULT 0 CHECK (deleted >= 0),  -- DELETE answered 204
    already_gone   INTEGER NOT NULL DEFAULT 0 CHECK (already_gone >= 0),  -- gone before the delete
    failed         INTEGER NOT NULL DEFAULT 0 CHECK (failed >= 0),  -- cancel or delete failed; retried next pass
    blocked        INTEGER NOT NULL DEFAULT 0 CHECK (blocked >= 0),  -- cannot be deleted through the API
    skipped        INTEGER NOT NULL DEFAULT 0 CHECK (skipped >= 0),  -- selected but left alone (cap, guard, stop)
    marked         INTEGER NOT NULL DEFAULT 0 CHECK (marked >= 0),  -- newly marked, grace running
    error          TEXT,  -- why the run failed or stopped
    interrupted_at TEXT    CHECK (interrupted_at LIKE '____-__-__T__:__:__.______Z'),  -- when found dead or stopped
    CHECK ((status = 'running') = (finished_at IS NULL))
);
CREATE INDEX reaper_runs_started_at ON reaper_runs (started_at DESC);
CREATE INDEX reaper_runs_running ON reaper_runs (instance_id) WHERE status = 'running';

-- The audit trail: one row per step tipreaper took or decided, written before (outcome intent) and after
-- each Partner Center call. Append-only.
CREATE TABLE reaper_events (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,  -- order of writing; never reused
    run_id            TEXT    REFERENCES reaper_runs (id),  -- NULL for rows written outside a run
    at                TEXT    NOT NULL CHECK (at LIKE '____-__-__T__:__:__.______Z'),
    account           TEXT,  -- account name from the configuration
    customer_id       TEXT,  -- Partner Center customer (tenant) id; NULL for run-wide rows (guard, stop)
    domain            TEXT,  -- the customer's domain when written
    policy            TEXT,  -- the deciding policy
    action            TEXT    NOT NULL CHECK (action IN ('plan', 'skip', 'mark', 'unmark', 'cancel_order',
                                  'order_cancelled', 'poll', 'delete', 'fail', 'block', 'resume', 'reappeared',
                                  'guard', 'stop')),
    order_id          TEXT,  -- the order concerned
    -- intent (about to call Partner Center), ok, error, dry_run (would have), skipped, already_gone
    outcome           TEXT    NOT NULL CHECK (outcome IN ('intent', 'ok', 'error', 'dry_run', 'skipped',
                                  'already_gone')),
    http_status       INTEGER CHECK (http_status BETWEEN 100 AND 599),  -- Partner Center's answer, if called
    ms_request_id     TEXT,  -- MS-RequestId (the same on retries): give it to Microsoft support
    ms_correlation_id TEXT,  -- MS-CorrelationId: one per customer reaped
    error             TEXT,  -- the error, for outcome error (never holds a secret)
    detail            TEXT   -- free text: decision sentence, protection, Partner Center error code
);
CREATE INDEX reaper_events_customer_at ON reaper_events (customer_id, at);
CREATE INDEX reaper_events_run ON reaper_events (run_id, id);
CREATE INDEX reaper_events_action_at ON reaper_events (action, outcome, at);
CREATE INDEX reaper_events_errors_at ON reaper_events (at) WHERE outcome = 'error';

-- Every customer tipreaper has seen, per account, and where it is in the reaping state machine.
-- Survives restarts: a pass resumes from here.
CREATE TABLE reaper_customers (
    account            TEXT NOT NULL CHECK (account <> ''),  -- account name from the configuration
    customer_id        TEXT NOT NULL CHECK (customer_id <> ''),  -- Partner Center customer (tenant) id
    domain             TEXT,  -- at the last sighting
    company_name       TEXT,  -- at the last sighting
    -- first time a pass listed it (Partner Center has no creation date; one source of its age)
    first_seen         TEXT NOT NULL CHECK (first_seen LIKE '____-__-__T__:__:__.______Z'),
    last_seen          TEXT NOT NULL CHECK (last_seen LIKE '____-__-__T__:__:__.______Z'),
    -- marked: grace running; blocked: needs a person; reappeared: listed again after deletion
    state              TEXT NOT NULL CHECK (state IN ('seen', 'marked', 'selected', 'cancelling',
                           'awaiting_cancel', 'deleting', 'deleted', 'failed', 'blocked', 'reappeared')),
    reason             TEXT,  -- why it is in this state (failed, blocked: the error)
    policy             TEXT,  -- the policy that selected or marked it
    state_at           TEXT NOT NULL CHECK (state_at LIKE '____-__-__T__:__:__.______Z'),  -- entered this state
    marked_at          TEXT CHECK (marked_at LIKE '____-__-__T__:__:__.______Z'),  -- NULL if not marked
    delete_after       TEXT CHECK (delete_after LIKE '____-__-__T__:__:__.______Z'),  -- grace ends
    deleted_at         TEXT CHECK (deleted_at LIKE '____-__-__T__:__:__.______Z'),  -- delete confirmed
    correlation_id     TEXT,  -- MS-CorrelationId for all calls reaping it
    -- a call written as intent whose result is not recorded yet; after a crash the next pass checks it first
    pending_action     TEXT CHECK (pending_action IN ('plan', 'skip', 'mark', 'unmark', 'cancel_order',
                           'order_cancelled', 'poll', 'delete', 'fail', 'block', 'resume', 'reappeared',
                           'guard', 'stop')),
    pending_order_id   TEXT,
    pending_request_id TEXT,  -- MS-RequestId of the pending call
    PRIMARY KEY (account, customer_id)
);
CREATE INDEX reaper_customers_customer_id ON reaper_customers (customer_id);
CREATE INDEX reaper_customers_state ON reaper_customers (state, reason);
CREATE INDEX reaper_customers_deleted_at ON reaper_customers (deleted_at) WHERE deleted_at IS NOT NULL;

-- Customers protected from deletion by hand (reaper keep), in every account. Beats every policy.
CREATE TABLE reaper_keep (
    customer_id TEXT PRIMARY KEY CHECK (customer_id <> ''),  -- Partner Center customer (tenant) id
    reason      TEXT,
    added_by    TEXT,
    added_at    TEXT NOT NULL CHECK (added_at LIKE '____-__-__T__:__:__.______Z'),
    until       TEXT CHECK (until LIKE '____-__-__T__:__:__.______Z')  -- NULL = never lapses
);

-- Plans stored by dry runs; reaper apply carries one out after re-checking every customer.
CREATE TABLE reaper_plans (
    id         TEXT PRIMARY KEY,  -- what reaper apply takes
    created_at TEXT NOT NULL CHECK (created_at LIKE '____-__-__T__:__:__.______Z'),
    run_id     TEXT REFERENCES reaper_runs (id),  -- the dry run that made it
    policy     TEXT,  -- the only policy planned for; NULL = all
    -- JSON array of {account, customer_id, domain, company_name, policy, action, orders}
    items      TEXT NOT NULL CHECK (json_valid(items) AND json_type(items) = 'array')
);
CREATE INDEX reaper_plans_created_at ON reaper_plans (created_at DESC);

-- +goose Down

DROP TABLE reaper_plans;
DROP TABLE reaper_keep;
DROP TABLE reaper_customers;
DROP TABLE reaper_events;
DROP TABLE reaper_runs;
