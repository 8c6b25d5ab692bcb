-- The per-account cancellation-time model of the engine (internal/engine/poll.go), kept between processes so
-- that a pass started by cron (a fresh process each time) polls its first time when the account's orders
-- have been reading cancelled, as a long-running daemon does. Losing it costs a few polls, never safety.

-- +goose Up

CREATE TABLE reaper_cancel_timing (
    account     TEXT    PRIMARY KEY,  -- account name as in the config
    -- expected time from the last cancel until every order reads cancelled (about the 90th percentile),
    -- microseconds: when the first poll comes
    expect_us   INTEGER NOT NULL CHECK (expect_us > 0),
    early       INTEGER NOT NULL CHECK (early IN (0, 1)),  -- some first poll found an order still pending
    late        INTEGER NOT NULL CHECK (late IN (0, 1)),   -- some first poll found every order cancelled
    updated_at  TEXT    NOT NULL CHECK (updated_at LIKE '____-__-__T__:__:__.______Z')  -- when a pass last saved it
);

-- +goose Down

DROP TABLE reaper_cancel_timing;
