-- The newest refresh token of each App+User account (credential refresh_token). Partner Center rotates
-- refresh tokens: every grant answers a new one and voids the one it was given, so the config's token stops
-- working after the first pass and a restart needs the newest. The token is kept sealed: AES-256-GCM with
-- the config's token_key, a random nonce, the account name as additional data. The store never sees the key.

-- +goose Up

CREATE TABLE reaper_refresh_tokens (
    account    text        PRIMARY KEY,
    sealed     bytea       NOT NULL CHECK (octet_length(sealed) > 0),
    stored_at  timestamptz NOT NULL
);

COMMENT ON TABLE reaper_refresh_tokens IS 'Per App+User account: its newest refresh token, encrypted with the config''s token_key (never in clear).';
COMMENT ON COLUMN reaper_refresh_tokens.account IS 'Account name as in the config (also the additional data of the encryption).';
COMMENT ON COLUMN reaper_refresh_tokens.sealed IS 'AES-256-GCM nonce followed by the encrypted token and its tag.';
COMMENT ON COLUMN reaper_refresh_tokens.stored_at IS 'When the token was received and kept; an older one never replaces a newer one.';

-- +goose Down

DROP TABLE reaper_refresh_tokens;
