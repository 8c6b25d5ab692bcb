package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Both stores keep one row per account and replace it only with a token kept at the same time or later:
// two processes racing to save cannot leave the older token as the newest.

func (s *sqliteStore) RefreshToken(ctx context.Context, account string) (SealedToken, bool, error) {
	t := SealedToken{Account: account}
	err := s.db.QueryRowContext(ctx, `SELECT sealed, stored_at FROM reaper_refresh_tokens WHERE account = $1`,
		account).Scan(&t.Sealed, timeCol{&t.StoredAt})
	if errors.Is(err, sql.ErrNoRows) {
		return SealedToken{}, false, nil
	}
	if err != nil {
		return SealedToken{}, false, fmt.Errorf("read refresh token of account %s: %w", account, err)
	}
	return t, true, nil
}

func (s *sqliteStore) SaveRefreshToken(ctx context.Context, t SealedToken) error {
	at, err := sealedArgs(t)
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO reaper_refresh_tokens (account, sealed, stored_at) VALUES ($1, $2, $3)
		ON CONFLICT (account) DO UPDATE SET sealed = excluded.sealed, stored_at = excluded.stored_at
		WHERE reaper_refresh_tokens.stored_at <= excluded.stored_at`,
		t.Account, t.Sealed, sqliteTime(at))
	if err != nil {
		return fmt.Errorf("save refresh token of account %s: %w", t.Account, err)
	}
	return nil
}

func (s *postgresStore) RefreshToken(ctx context.Context, account string) (SealedToken, bool, error) {
	t := SealedToken{Account: account}
	err := s.pool.QueryRow(ctx, `SELECT sealed, stored_at FROM reaper_refresh_tokens WHERE account = $1`,
		account).Scan(&t.Sealed, timeCol{&t.StoredAt})
	if errors.Is(err, pgx.ErrNoRows) {
		return SealedToken{}, false, nil
	}
	if err != nil {
		return SealedToken{}, false, fmt.Errorf("read refresh token of account %s: %w", account, err)
	}
	return t, true, nil
}

func (s *postgresStore) SaveRefreshToken(ctx context.Context, t SealedToken) error {
	at, err := sealedArgs(t)
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO reaper_refresh_tokens (account, sealed, stored_at) VALUES ($1, $2, $3)
		ON CONFLICT (account) DO UPDATE SET sealed = excluded.sealed, stored_at = excluded.stored_at
		WHERE reaper_refresh_tokens.stored_at <= excluded.stored_at`,
		t.Account, t.Sealed, pgTime(at))
	if err != nil {
		return fmt.Errorf("save refresh token of account %s: %w", t.Account, err)
	}
	return nil
}

// sealedArgs checks t and returns its time (now when zero).
func sealedArgs(t SealedToken) (time.Time, error) {
	if t.Account == "" {
		return time.Time{}, errors.New("save refresh token: no account")
	}
	if len(t.Sealed) == 0 {
		return time.Time{}, fmt.Errorf("save refresh token of account %s: nothing to keep", t.Account)
	}
	if t.StoredAt.IsZero() {
		return time.Now(), nil
	}
	return t.StoredAt, nil
}
