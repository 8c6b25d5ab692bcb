package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

func (s *sqliteStore) CancelTiming(ctx context.Context, account string) (CancelTiming, bool, error) {
	ct := CancelTiming{Account: account}
	var us int64
	var early, late int
	err := s.db.QueryRowContext(ctx, `SELECT expect_us, early, late, updated_at FROM reaper_cancel_timing WHERE account = $1`,
		account).Scan(&us, &early, &late, timeCol{&ct.UpdatedAt})
	if errors.Is(err, sql.ErrNoRows) {
		return CancelTiming{}, false, nil
	}
	if err != nil {
		return CancelTiming{}, false, fmt.Errorf("read cancel timing of account %s: %w", account, err)
	}
	ct.Expect, ct.Early, ct.Late = time.Duration(us)*time.Microsecond, early == 1, late == 1
	return ct, true, nil
}

func (s *sqliteStore) SaveCancelTiming(ctx context.Context, ct CancelTiming) error {
	us, at, err := timingArgs(ct)
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO reaper_cancel_timing (account, expect_us, early, late, updated_at)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (account) DO UPDATE SET expect_us = excluded.expect_us, early = excluded.early,
			late = excluded.late, updated_at = excluded.updated_at`,
		ct.Account, us, boolInt(ct.Early), boolInt(ct.Late), sqliteTime(at))
	if err != nil {
		return fmt.Errorf("save cancel timing of account %s: %w", ct.Account, err)
	}
	return nil
}

func (s *postgresStore) CancelTiming(ctx context.Context, account string) (CancelTiming, bool, error) {
	ct := CancelTiming{Account: account}
	var us int64
	err := s.pool.QueryRow(ctx, `SELECT expect_us, early, late, updated_at FROM reaper_cancel_timing WHERE account = $1`,
		account).Scan(&us, &ct.Early, &ct.Late, timeCol{&ct.UpdatedAt})
	if errors.Is(err, pgx.ErrNoRows) {
		return CancelTiming{}, false, nil
	}
	if err != nil {
		return CancelTiming{}, false, fmt.Errorf("read cancel timing of account %s: %w", account, err)
	}
	ct.Expect = time.Duration(us) * time.Microsecond
	return ct, true, nil
}

func (s *postgresStore) SaveCancelTiming(ctx context.Context, ct CancelTiming) error {
	us, at, err := timingArgs(ct)
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO reaper_cancel_timing (account, expect_us, early, late, updated_at)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (account) DO UPDATE SET expect_us = excluded.expect_us, early = excluded.early,
			late = excluded.late, updated_at = excluded.updated_at`,
		ct.Account, us, ct.Early, ct.Late, pgTime(at))
	if err != nil {
		return fmt.Errorf("save cancel timing of account %s: %w", ct.Account, err)
	}
	return nil
}

// timingArgs checks ct and returns its expectation in microseconds and its time.
func timingArgs(ct CancelTiming) (us int64, at time.Time, err error) {
	us = ct.Expect.Microseconds()
	if us <= 0 {
		return 0, time.Time{}, fmt.Errorf("save cancel timing of account %s: expectation %s is not positive", ct.Account, ct.Expect)
	}
	at = ct.UpdatedAt
	if at.IsZero() {
		at = time.Now()
	}
	return us, at, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
