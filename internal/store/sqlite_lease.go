package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// The SQLite file is local, so every process using it shares one clock: leases use this process's.

func (s *sqliteStore) AcquireLease(ctx context.Context, account string, ttl time.Duration) (Lease, bool, error) {
	if err := checkLeaseArgs("acquire lease", account, ttl); err != nil {
		return Lease{}, false, err
	}
	var l Lease
	ok := false
	// One IMMEDIATE transaction holds SQLite's write lock throughout: a new row, the takeover of an
	// expired one, or of one whose holder's process is gone (a crashed pass's successor need not wait).
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		now := time.Now()
		var holder, instance string
		var token int64
		var expires time.Time
		err := tx.QueryRowContext(ctx, `SELECT holder, instance, token, expires_at FROM reaper_leases WHERE account = $1`, account).
			Scan(&holder, &instance, &token, timeCol{&expires})
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return err
		case expires.After(now) && (instance == s.instance.String() || s.instanceAlive(instance)):
			return nil // held
		}
		l = Lease{Account: account, Holder: uuid.New(), Token: token + 1, ExpiresAt: normTime(now.Add(ttl))}
		_, err = tx.ExecContext(ctx, `INSERT INTO reaper_leases (account, holder, instance, token, acquired_at, renewed_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $5, $6)
			ON CONFLICT (account) DO UPDATE SET holder = excluded.holder, instance = excluded.instance, token = excluded.token,
				acquired_at = excluded.acquired_at, renewed_at = excluded.renewed_at, expires_at = excluded.expires_at`,
			account, l.Holder.String(), s.instance.String(), l.Token, sqliteTime(now), sqliteTime(l.ExpiresAt))
		ok = err == nil
		return err
	})
	if err != nil {
		return Lease{}, false, fmt.Errorf("acquire lease of account %s: %w", account, err)
	}
	if !ok {
		return Lease{}, false, nil
	}
	return l, true, nil
}

func (s *sqliteStore) RenewLease(ctx context.Context, l Lease, ttl time.Duration) (Lease, error) {
	if err := checkLeaseArgs("renew lease", l.Account, ttl); err != nil {
		return l, err
	}
	now := time.Now()
	err := s.db.QueryRowContext(ctx, `UPDATE reaper_leases SET renewed_at = $4, expires_at = $5
		WHERE account = $1 AND holder = $2 AND token = $3 AND expires_at > $4
		RETURNING expires_at`, l.Account, l.Holder.String(), l.Token, sqliteTime(now), sqliteTime(now.Add(ttl))).
		Scan(timeCol{&l.ExpiresAt})
	if errors.Is(err, sql.ErrNoRows) {
		return l, fmt.Errorf("renew lease: %w", leaseLost(&l))
	}
	if err != nil {
		return l, fmt.Errorf("renew lease of account %s (token %d): %w", l.Account, l.Token, err)
	}
	return l, nil
}

func (s *sqliteStore) ReleaseLease(ctx context.Context, l Lease) error {
	now := sqliteTime(time.Now())
	_, err := s.db.ExecContext(ctx, `UPDATE reaper_leases SET expires_at = $4
		WHERE account = $1 AND holder = $2 AND token = $3 AND expires_at > $4`, l.Account, l.Holder.String(), l.Token, now)
	if err != nil {
		return fmt.Errorf("release lease of account %s (token %d): %w", l.Account, l.Token, err)
	}
	return nil
}

// checkGuardTx checks g inside tx, which holds SQLite's write lock from BEGIN (IMMEDIATE), so nothing can
// take the lease over or add a keep between the check and the commit.
func checkGuardTx(ctx context.Context, tx *sql.Tx, g Guard, customerID string) error {
	now := sqliteTime(time.Now())
	if g.Lease != nil {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM reaper_leases
			WHERE account = $1 AND holder = $2 AND token = $3 AND expires_at > $4`,
			g.Lease.Account, g.Lease.Holder.String(), g.Lease.Token, now).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return leaseLost(g.Lease)
		}
		if err != nil {
			return fmt.Errorf("check lease: %w", err)
		}
	}
	if g.Unprotected {
		var reason string
		err := tx.QueryRowContext(ctx, `SELECT coalesce(reason, '') FROM reaper_keep
			WHERE lower(customer_id) = lower($1) AND (until IS NULL OR until > $2)
			ORDER BY customer_id LIMIT 1`, customerID, now).Scan(&reason)
		if err == nil {
			return protected(reason)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("check reaper_keep: %w", err)
		}
	}
	return nil
}

func (s *sqliteStore) TransitionIf(ctx context.Context, g Guard, cs CustomerState, evs ...Event) error {
	if err := checkGuard(g, cs.Account, cs.CustomerID); err != nil {
		return fmt.Errorf("transition customer %s of account %s to %s: %w", cs.CustomerID, cs.Account, cs.State, err)
	}
	return s.transition(ctx, g, cs, evs)
}

func (s *sqliteStore) AppendEventsIf(ctx context.Context, g Guard, evs ...Event) error {
	if g.Unprotected {
		return fmt.Errorf("append %d events: an unprotected guard needs a customer: use TransitionIf", len(evs))
	}
	account, err := eventsAccount(evs)
	if err == nil {
		err = checkGuard(g, account, "")
	}
	if err != nil {
		return fmt.Errorf("append %d events: %w", len(evs), err)
	}
	return s.appendEvents(ctx, g, evs)
}
