-- tipreaper's audit trail and customer state, PostgreSQL flavour.
--
-- Every time is a timestamptz (an instant; psql shows it in the session's TimeZone, the code writes and
-- reads UTC at microsecond precision). Ids of runs, plans and store instances are uuids; Partner Center
-- ids (customers, orders, requests) are kept as the text Partner Center sent. An empty value is NULL.
--
-- Typical questions, answered by the indexes below:
--   a customer's history:   SELECT * FROM reaper_events WHERE customer_id = '…' ORDER BY at, id;
--   deletions, last 7 days: SELECT * FROM reaper_events WHERE action = 'delete' AND outcome = 'ok'
--                             AND at > now() - interval '7 days';
--   failures by reason:     SELECT reason, count(*) FROM reaper_customers
--                             WHERE state IN ('failed', 'blocked') GROUP BY reason;
--   events of a run:        SELECT * FROM reaper_events WHERE run_id = '…' ORDER BY id;

-- +goose Up

CREATE TABLE reaper_runs (
    id             uuid        PRIMARY KEY,
    started_at     timestamptz NOT NULL,
    finished_at    timestamptz,
    mode           text        NOT NULL CHECK (mode IN ('live', 'dry_run')),
    status         text        NOT NULL CHECK (status IN ('running', 'succeeded', 'partial', 'failed', 'interrupted')),
    policy         text,
    plan_id        uuid,
    instance_id    uuid        NOT NULL,
    host           text,
    pid            integer,
    listed         integer     NOT NULL DEFAULT 0 CHECK (listed >= 0),
    selected       integer     NOT NULL DEFAULT 0 CHECK (selected >= 0),
    deleted        integer     NOT NULL DEFAULT 0 CHECK (deleted >= 0),
    already_gone   integer     NOT NULL DEFAULT 0 CHECK (already_gone >= 0),
    failed         integer     NOT NULL DEFAULT 0 CHECK (failed >= 0),
    blocked        integer     NOT NULL DEFAULT 0 CHECK (blocked >= 0),
    skipped        integer     NOT NULL DEFAULT 0 CHECK (skipped >= 0),
    marked         integer     NOT NULL DEFAULT 0 CHECK (marked >= 0),
    error          text,
    interrupted_at timestamptz,
    CONSTRAINT reaper_runs_finished_unless_running CHECK ((status = 'running') = (finished_at IS NULL))
);
COMMENT ON TABLE reaper_runs IS 'One row per pass (or apply) of tipreaper: what it was asked to do and how it ended.';
COMMENT ON COLUMN reaper_runs.id IS 'Run id, a UUIDv7 (sorts by start time); reaper_events.run_id points here.';
COMMENT ON COLUMN reaper_runs.started_at IS 'When the run started.';
COMMENT ON COLUMN reaper_runs.finished_at IS 'When the run ended; NULL exactly while status is running.';
COMMENT ON COLUMN reaper_runs.mode IS 'live: cancels and deletes; dry_run: only plans.';
COMMENT ON COLUMN reaper_runs.status IS 'running, or how it ended: succeeded (every selected customer handled), partial, failed, interrupted (stopped, or its process died).';
COMMENT ON COLUMN reaper_runs.policy IS 'The only policy this run applied; NULL = all policies.';
COMMENT ON COLUMN reaper_runs.plan_id IS 'For an apply: the reaper_plans row it carried out; NULL otherwise (a dry run''s plan points back here through reaper_plans.run_id).';
COMMENT ON COLUMN reaper_runs.instance_id IS 'The tipreaper process (store instance) that owns the run; it holds a session advisory lock on this id while alive, so a running run whose lock is free belongs to a dead process.';
COMMENT ON COLUMN reaper_runs.host IS 'Host name of the owning process.';
COMMENT ON COLUMN reaper_runs.pid IS 'Process id of the owning process on host.';
COMMENT ON COLUMN reaper_runs.listed IS 'Customers listed from Partner Center.';
COMMENT ON COLUMN reaper_runs.selected IS 'Customers a policy selected and found expired.';
COMMENT ON COLUMN reaper_runs.deleted IS 'Customers deleted (DELETE answered 204).';
COMMENT ON COLUMN reaper_runs.already_gone IS 'Customers Partner Center reported gone before the delete (404, or 403 code 20002).';
COMMENT ON COLUMN reaper_runs.failed IS 'Customers whose cancel or delete failed; retried next pass.';
COMMENT ON COLUMN reaper_runs.blocked IS 'Customers that cannot be deleted through the API (needs a person); not retried.';
COMMENT ON COLUMN reaper_runs.skipped IS 'Selected customers left alone (cap, guard, stop).';
COMMENT ON COLUMN reaper_runs.marked IS 'Customers newly marked for deletion after their grace period.';
COMMENT ON COLUMN reaper_runs.error IS 'Why the run failed or stopped, if it did.';
COMMENT ON COLUMN reaper_runs.interrupted_at IS 'When the run was found interrupted (its process gone) or stopped.';

CREATE INDEX reaper_runs_started_at ON reaper_runs (started_at DESC);
CREATE INDEX reaper_runs_running ON reaper_runs (instance_id) WHERE status = 'running';

CREATE TABLE reaper_events (
    id                bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id            uuid        REFERENCES reaper_runs (id),
    at                timestamptz NOT NULL,
    account           text,
    customer_id       text,
    domain            text,
    policy            text,
    action            text        NOT NULL CHECK (action IN ('plan', 'skip', 'mark', 'unmark', 'cancel_order',
                                      'order_cancelled', 'poll', 'delete', 'fail', 'block', 'resume', 'reappeared',
                                      'guard', 'stop')),
    order_id          text,
    outcome           text        NOT NULL CHECK (outcome IN ('intent', 'ok', 'error', 'dry_run', 'skipped',
                                      'already_gone')),
    http_status       integer     CHECK (http_status BETWEEN 100 AND 599),
    ms_request_id     text,
    ms_correlation_id text,
    error             text,
    detail            text
);
COMMENT ON TABLE reaper_events IS 'The audit trail: one row per step tipreaper took or decided, written before (outcome intent) and after each Partner Center call. Append-only.';
COMMENT ON COLUMN reaper_events.id IS 'Order of writing.';
COMMENT ON COLUMN reaper_events.run_id IS 'The run that wrote the row; NULL for rows written outside a run (e.g. by a command).';
COMMENT ON COLUMN reaper_events.at IS 'When it happened.';
COMMENT ON COLUMN reaper_events.account IS 'Partner Center account name from the configuration.';
COMMENT ON COLUMN reaper_events.customer_id IS 'Partner Center customer (tenant) id; NULL for run-wide rows (guard, stop).';
COMMENT ON COLUMN reaper_events.domain IS 'The customer''s domain when the row was written.';
COMMENT ON COLUMN reaper_events.policy IS 'The deciding policy.';
COMMENT ON COLUMN reaper_events.action IS 'What: plan, skip, mark, unmark, cancel_order, order_cancelled, poll, delete, fail, block, resume, reappeared, guard, stop.';
COMMENT ON COLUMN reaper_events.order_id IS 'The order concerned (cancel_order, order_cancelled, poll).';
COMMENT ON COLUMN reaper_events.outcome IS 'intent (about to call Partner Center), ok, error, dry_run (would have), skipped, already_gone.';
COMMENT ON COLUMN reaper_events.http_status IS 'HTTP status Partner Center answered, if a call was made.';
COMMENT ON COLUMN reaper_events.ms_request_id IS 'MS-RequestId of the call (the same on its retries): give it to Microsoft support.';
COMMENT ON COLUMN reaper_events.ms_correlation_id IS 'MS-CorrelationId: one per customer reaped, ties its calls together.';
COMMENT ON COLUMN reaper_events.error IS 'The error, for outcome error (never holds a secret).';
COMMENT ON COLUMN reaper_events.detail IS 'Free text: the decision sentence, protection, Partner Center error code.';

CREATE INDEX reaper_events_customer_at ON reaper_events (customer_id, at);
CREATE INDEX reaper_events_run ON reaper_events (run_id, id);
CREATE INDEX reaper_events_action_at ON reaper_events (action, outcome, at);
CREATE INDEX reaper_events_errors_at ON reaper_events (at) WHERE outcome = 'error';

CREATE TABLE reaper_customers (
    account            text        NOT NULL CHECK (account <> ''),
    customer_id        text        NOT NULL CHECK (customer_id <> ''),
    domain             text,
    company_name       text,
    first_seen         timestamptz NOT NULL,
    last_seen          timestamptz NOT NULL,
    state              text        NOT NULL CHECK (state IN ('seen', 'marked', 'selected', 'cancelling',
                                       'awaiting_cancel', 'deleting', 'deleted', 'failed', 'blocked', 'reappeared')),
    reason             text,
    policy             text,
    state_at           timestamptz NOT NULL,
    marked_at          timestamptz,
    delete_after       timestamptz,
    deleted_at         timestamptz,
    correlation_id     text,
    pending_action     text        CHECK (pending_action IN ('plan', 'skip', 'mark', 'unmark', 'cancel_order',
                                       'order_cancelled', 'poll', 'delete', 'fail', 'block', 'resume', 'reappeared',
                                       'guard', 'stop')),
    pending_order_id   text,
    pending_request_id text,
    PRIMARY KEY (account, customer_id)
);
COMMENT ON TABLE reaper_customers IS 'Every customer tipreaper has seen, per account, and where it is in the reaping state machine. Survives restarts: a pass resumes from here.';
COMMENT ON COLUMN reaper_customers.account IS 'Partner Center account name from the configuration.';
COMMENT ON COLUMN reaper_customers.customer_id IS 'Partner Center customer (tenant) id.';
COMMENT ON COLUMN reaper_customers.domain IS 'Domain at the last sighting.';
COMMENT ON COLUMN reaper_customers.company_name IS 'Company name at the last sighting.';
COMMENT ON COLUMN reaper_customers.first_seen IS 'First time a pass listed the customer (Partner Center has no creation date; this is one source of its age).';
COMMENT ON COLUMN reaper_customers.last_seen IS 'Last time a pass listed the customer.';
COMMENT ON COLUMN reaper_customers.state IS 'seen, marked (grace running), selected, cancelling, awaiting_cancel, deleting, deleted, failed, blocked (needs a person), reappeared (listed again after deletion).';
COMMENT ON COLUMN reaper_customers.reason IS 'Why it is in this state (for failed and blocked: the error).';
COMMENT ON COLUMN reaper_customers.policy IS 'The policy that selected or marked it.';
COMMENT ON COLUMN reaper_customers.state_at IS 'When it entered this state.';
COMMENT ON COLUMN reaper_customers.marked_at IS 'When a policy marked it; NULL if not marked.';
COMMENT ON COLUMN reaper_customers.delete_after IS 'When its grace period ends; NULL if not marked.';
COMMENT ON COLUMN reaper_customers.deleted_at IS 'When Partner Center confirmed the delete (or reported it already gone).';
COMMENT ON COLUMN reaper_customers.correlation_id IS 'MS-CorrelationId used for all calls reaping this customer.';
COMMENT ON COLUMN reaper_customers.pending_action IS 'A Partner Center call written as intent whose result is not recorded yet (cancel_order or delete); after a crash the next pass checks it before acting again.';
COMMENT ON COLUMN reaper_customers.pending_order_id IS 'The order of the pending call.';
COMMENT ON COLUMN reaper_customers.pending_request_id IS 'MS-RequestId of the pending call.';

CREATE INDEX reaper_customers_customer_id ON reaper_customers (customer_id);
CREATE INDEX reaper_customers_state ON reaper_customers (state, reason);
CREATE INDEX reaper_customers_deleted_at ON reaper_customers (deleted_at) WHERE deleted_at IS NOT NULL;

CREATE TABLE reaper_keep (
    customer_id text        PRIMARY KEY CHECK (customer_id <> ''),
    reason      text,
    added_by    text,
    added_at    timestamptz NOT NULL,
    until       timestamptz
);
COMMENT ON TABLE reaper_keep IS 'Customers protected from deletion by hand (reaper keep), in every account. A protection beats every policy.';
COMMENT ON COLUMN reaper_keep.customer_id IS 'Partner Center customer (tenant) id.';
COMMENT ON COLUMN reaper_keep.reason IS 'Why it is kept.';
COMMENT ON COLUMN reaper_keep.added_by IS 'Who added the protection.';
COMMENT ON COLUMN reaper_keep.added_at IS 'When the protection was added.';
COMMENT ON COLUMN reaper_keep.until IS 'When the protection lapses; NULL = never. Lapsed rows stay until removed but protect nothing.';

CREATE TABLE reaper_plans (
    id         uuid        PRIMARY KEY,
    created_at timestamptz NOT NULL,
    run_id     uuid        REFERENCES reaper_runs (id),
    policy     text,
    items      jsonb       NOT NULL CHECK (jsonb_typeof(items) = 'array')
);
COMMENT ON TABLE reaper_plans IS 'Plans stored by dry runs; reaper apply carries one out after re-checking every customer.';
COMMENT ON COLUMN reaper_plans.id IS 'Plan id (what reaper apply takes).';
COMMENT ON COLUMN reaper_plans.created_at IS 'When the plan was made; apply refuses plans older than limits.plan_max_age.';
COMMENT ON COLUMN reaper_plans.run_id IS 'The dry run that made the plan.';
COMMENT ON COLUMN reaper_plans.policy IS 'The only policy planned for; NULL = all policies.';
COMMENT ON COLUMN reaper_plans.items IS 'JSON array of {account, customer_id, domain, company_name, policy, action, orders}.';

CREATE INDEX reaper_plans_created_at ON reaper_plans (created_at DESC);

-- +goose Down

DROP TABLE reaper_plans;
DROP TABLE reaper_keep;
DROP TABLE reaper_customers;
DROP TABLE reaper_events;
DROP TABLE reaper_runs;
