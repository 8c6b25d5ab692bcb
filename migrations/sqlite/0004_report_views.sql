-- Views for reports: the questions people ask of the audit, with the same names and columns in both stores,
-- so that one query answers on PostgreSQL and on SQLite alike. `reaper report …` reads them, and the README's
-- audit queries use them. Each has a days_ago column (how long ago, in days, as a number) so that "the last
-- 7 days" is `WHERE days_ago < 7` in both dialects. Times stay the text of the tables (UTC ISO-8601).

-- +goose Up

-- Every confirmed deletion: DELETE answered 204 (outcome ok) or the customer was already gone
-- (already_gone). ms_request_id is what Microsoft support asks for.
CREATE VIEW reaper_deletions AS
SELECT e.at, e.run_id, e.account, e.customer_id, e.domain, c.company_name, e.policy, e.outcome,
       e.http_status, e.ms_request_id,
       julianday('now') - julianday(e.at) AS days_ago
FROM reaper_events e
LEFT JOIN reaper_customers c ON c.account = e.account AND c.customer_id = e.customer_id
WHERE e.action = 'delete' AND e.outcome IN ('ok', 'already_gone');

-- Every step that failed (outcome error): which call, Partner Center's status and the error.
CREATE VIEW reaper_failures AS
SELECT e.at, e.run_id, e.account, e.customer_id, e.domain, e.policy, e.action, e.order_id, e.http_status,
       e.error, e.ms_request_id,
       julianday('now') - julianday(e.at) AS days_ago
FROM reaper_events e
WHERE e.outcome = 'error';

-- Customers that cannot be deleted through the API and wait for a person (then: reaper unblock <customer-id>).
CREATE VIEW reaper_blocked AS
SELECT c.account, c.customer_id, c.domain, c.company_name, c.policy, c.state_at AS blocked_since, c.reason,
       julianday('now') - julianday(c.state_at) AS days_ago
FROM reaper_customers c
WHERE c.state = 'blocked';

-- One row per run (pass or apply) with its counts; duration_seconds is NULL while it runs.
CREATE VIEW reaper_run_summary AS
SELECT r.id AS run_id, r.started_at, r.finished_at,
       (julianday(r.finished_at) - julianday(r.started_at)) * 86400 AS duration_seconds,
       r.mode, r.status, r.policy, r.listed, r.selected, r.deleted, r.already_gone, r.failed, r.blocked,
       r.skipped, r.marked, r.error,
       julianday('now') - julianday(r.started_at) AS days_ago
FROM reaper_runs r;

-- +goose Down

DROP VIEW reaper_run_summary;
DROP VIEW reaper_blocked;
DROP VIEW reaper_failures;
DROP VIEW reaper_deletions;
