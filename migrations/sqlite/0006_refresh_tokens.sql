-- The newest refresh token of each App+User account (credential refresh_token). Partner Center rotates
-- refresh tokens: every grant answers a new one and voids the one it was given, so the config's token stops
-- working after the first pass and a restart needs the newest. The token is kept sealed: AES-256-GCM with
-- the config's token_key, a random nonce, the account name as additional data. The store never sees the key.

-- +goose Up

CREATE TABLE reaper_refresh_tokens (
    account    TEXT PRIMARY KEY,  -- account name as in the config (also the additional data of the encryption)
    sealed     BLOB NOT NULL CHECK (typeof(sealed) = 'blob' AND length(sealed) > 0),  -- nonce, then ciphertext and tag
    stored_at  TEXT NOT NULL CHECK (stored_at LIKE '____-__-__T__:__:__.______Z')     -- when the token was kept
);

-- +goose Down

DROP TABLE reaper_refresh_tokens;
