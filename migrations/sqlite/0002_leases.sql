-- Leadership of accounts: one lease row per account, in the file itself, so that passes of every process
-- using this file exclude each other per account (not per process) and operators' commands are never
-- locked out. A holder works the account only while expires_at is in the future and renews it while it
-- works; every intent and result write of a pass checks, in its own transaction, that holder and token
-- are still the row's (the fence). Another process takes the row over once it has expired, or at once
-- when the holder's process is gone, raising token.

-- +goose Up

CREATE TABLE reaper_leases (
    account     TEXT    PRIMARY KEY CHECK (account <> ''),  -- account name from the configuration
    holder      TEXT    NOT NULL,  -- a new uuid for every acquisition (one pass of one process)
    instance    TEXT    NOT NULL,  -- the store instance (process) of the holder: a dead one's lease is taken over at once
    token       INTEGER NOT NULL CHECK (token > 0),  -- fencing token: +1 on every acquisition of the account
    acquired_at TEXT    NOT NULL CHECK (acquired_at LIKE '____-__-__T__:__:__.______Z'),
    renewed_at  TEXT    NOT NULL CHECK (renewed_at LIKE '____-__-__T__:__:__.______Z'),
    -- until when the holder may work the account (the release time once released)
    expires_at  TEXT    NOT NULL CHECK (expires_at LIKE '____-__-__T__:__:__.______Z'),
    CHECK (acquired_at <= renewed_at)
);

-- +goose Down

DROP TABLE reaper_leases;
