-- Leadership of accounts: one lease row per account instead of a session advisory lock, so that it
-- survives poolers (PgBouncer transaction pooling), can be checked inside any transaction, and cannot be
-- lost silently. A holder works the account only while expires_at is in the future (the database's
-- clock decides) and renews it while it works; every intent and result write of a pass checks, in its
-- own transaction, that holder and token are still the row's (the fence). A stand-by takes the row over
-- once it has expired, or at once when the holder's process is gone; the takeover raises token.

-- +goose Up

CREATE TABLE reaper_leases (
    account     text        PRIMARY KEY CHECK (account <> ''),
    holder      uuid        NOT NULL,
    instance    uuid        NOT NULL,
    token       bigint      NOT NULL CHECK (token > 0),
    acquired_at timestamptz NOT NULL,
    renewed_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    CHECK (acquired_at <= renewed_at)
);
COMMENT ON TABLE reaper_leases IS 'Which tipreaper pass works each account (the leader), until when. One row per account, kept after release so that token keeps growing.';
COMMENT ON COLUMN reaper_leases.account IS 'Partner Center account name from the configuration.';
COMMENT ON COLUMN reaper_leases.holder IS 'The holder: a new uuid for every acquisition (one pass of one process).';
COMMENT ON COLUMN reaper_leases.instance IS 'The tipreaper process (store instance, as reaper_runs.instance_id) of the holder. While alive it holds its instance advisory lock; a lease whose instance is gone is taken over at once instead of at expires_at.';
COMMENT ON COLUMN reaper_leases.token IS 'Fencing token: 1 for the first acquisition of the account, +1 for every later one. A write carries holder and token and is refused unless both are still the row''s.';
COMMENT ON COLUMN reaper_leases.acquired_at IS 'When the holder acquired it.';
COMMENT ON COLUMN reaper_leases.renewed_at IS 'When the holder last renewed it.';
COMMENT ON COLUMN reaper_leases.expires_at IS 'Until when the holder may work the account; a released lease has expires_at = the release time. Once past, any process may take the account over.';

-- +goose Down

DROP TABLE reaper_leases;
