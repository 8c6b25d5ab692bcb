-- The per-account cancellation-time model of the engine (internal/engine/poll.go), kept between processes so
-- that a pass started by cron (a fresh process each time) polls its first time when the account's orders
-- have been reading cancelled, as a long-running daemon does. Losing it costs a few polls, never safety.

-- +goose Up

CREATE TABLE reaper_cancel_timing (
    account     text        PRIMARY KEY,
    expect_us   bigint      NOT NULL CHECK (expect_us > 0),
    early       boolean     NOT NULL,
    late        boolean     NOT NULL,
    updated_at  timestamptz NOT NULL
);

COMMENT ON TABLE reaper_cancel_timing IS 'Per account: when a customer''s orders read cancelled after its last cancel, as the engine learned it (warm start of the first poll).';
COMMENT ON COLUMN reaper_cancel_timing.account IS 'Account name as in the config.';
COMMENT ON COLUMN reaper_cancel_timing.expect_us IS 'Expected time from the last cancel until every order reads cancelled (about the 90th percentile), microseconds: when the first poll comes.';
COMMENT ON COLUMN reaper_cancel_timing.early IS 'Some first poll found an order still pending.';
COMMENT ON COLUMN reaper_cancel_timing.late IS 'Some first poll found every order cancelled (with early: the expectation is bracketed, steps are small).';
COMMENT ON COLUMN reaper_cancel_timing.updated_at IS 'When a pass last saved it.';

-- +goose Down

DROP TABLE reaper_cancel_timing;
