package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Leases use the database's clock (clock_timestamp(), not the transaction's now()), so that daemons on
// hosts whose clocks disagree still agree on who holds an account.

func (s *postgresStore) AcquireLease(ctx context.Context, account string, ttl time.Duration) (Lease, bool, error) {
	if err := checkLeaseArgs("acquire lease", account, ttl); err != nil {
		return Lease{}, false, err
	}
	l, ok, err := s.acquireLease(ctx, account, ttl)
	if err != nil {
		return Lease{}, false, fmt.Errorf("acquire lease of account %s: %w", account, err)
	}
	return l, ok, nil
}

func (s *postgresStore) acquireLease(ctx context.Context, account string, ttl time.Duration) (Lease, bool, error) {
	l := Lease{Account: account, Holder: uuid.New()}
	// One statement: a new row, or the takeover of an expired one. Concurrent acquirers serialise on the
	// row; the WHERE is evaluated on its latest version, so exactly one of them wins.
	err := s.pool.QueryRow(ctx, `INSERT INTO reaper_leases AS l (account, holder, instance, token, acquired_at, renewed_at, expires_at)
		VALUES ($1, $2, $3, 1, clock_timestamp(), clock_timestamp(), clock_timestamp() + $4 * interval '1 microsecond')
		ON CONFLICT (account) DO UPDATE SET holder = EXCLUDED.holder, instance = EXCLUDED.instance, token = l.token + 1,
			acquired_at = EXCLUDED.acquired_at, renewed_at = EXCLUDED.renewed_at, expires_at = EXCLUDED.expires_at
		WHERE l.expires_at <= clock_timestamp()
		RETURNING token, expires_at`, account, l.Holder, s.instance, ttl.Microseconds()).
		Scan(&l.Token, timeCol{&l.ExpiresAt})
	if err == nil {
		return l, true, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return Lease{}, false, err
	}
	// Held and unexpired. If the holder's process is gone (its instance lock is free; an instance id is
	// never reused), take the lease over now rather than at its expiry: a crashed pass's successor
	// should not wait. The takeover is conditional on the row being unchanged since it was read.
	var holder, instance uuid.UUID
	var token int64
	err = s.pool.QueryRow(ctx, `SELECT holder, instance, token FROM reaper_leases WHERE account = $1`, account).
		Scan(&holder, &instance, &token)
	if errors.Is(err, pgx.ErrNoRows) {
		return Lease{}, false, nil // released and deleted by hand meanwhile: the next attempt takes it
	}
	if err != nil {
		return Lease{}, false, err
	}
	if instance == s.instance {
		return Lease{}, false, nil
	}
	conn, dead, err := s.tryLock(ctx, "tipreaper:instance:"+instance.String())
	if err != nil {
		return Lease{}, false, fmt.Errorf("check instance %s of the holder: %w", instance, err)
	}
	if !dead {
		return Lease{}, false, nil
	}
	closeConn(conn)
	err = s.pool.QueryRow(ctx, `UPDATE reaper_leases SET holder = $4, instance = $5, token = token + 1,
			acquired_at = clock_timestamp(), renewed_at = clock_timestamp(), expires_at = clock_timestamp() + $6 * interval '1 microsecond'
		WHERE account = $1 AND holder = $2 AND token = $3
		RETURNING token, expires_at`, account, holder, token, l.Holder, s.instance, ttl.Microseconds()).
		Scan(&l.Token, timeCol{&l.ExpiresAt})
	if errors.Is(err, pgx.ErrNoRows) {
		return Lease{}, false, nil // someone else took it over first
	}
	if err != nil {
		return Lease{}, false, err
	}
	return l, true, nil
}

func (s *postgresStore) RenewLease(ctx context.Context, l Lease, ttl time.Duration) (Lease, error) {
	if err := checkLeaseArgs("renew lease", l.Account, ttl); err != nil {
		return l, err
	}
	err := s.pool.QueryRow(ctx, `UPDATE reaper_leases SET renewed_at = clock_timestamp(),
			expires_at = clock_timestamp() + $4 * interval '1 microsecond'
		WHERE account = $1 AND holder = $2 AND token = $3 AND expires_at > clock_timestamp()
		RETURNING expires_at`, l.Account, l.Holder, l.Token, ttl.Microseconds()).Scan(timeCol{&l.ExpiresAt})
	if errors.Is(err, pgx.ErrNoRows) {
		return l, fmt.Errorf("renew lease: %w", leaseLost(&l))
	}
	if err != nil {
		return l, fmt.Errorf("renew lease of account %s (token %d): %w", l.Account, l.Token, err)
	}
	return l, nil
}

func (s *postgresStore) ReleaseLease(ctx context.Context, l Lease) error {
	_, err := s.pool.Exec(ctx, `UPDATE reaper_leases SET expires_at = clock_timestamp()
		WHERE account = $1 AND holder = $2 AND token = $3 AND expires_at > clock_timestamp()`, l.Account, l.Holder, l.Token)
	if err != nil {
		return fmt.Errorf("release lease of account %s (token %d): %w", l.Account, l.Token, err)
	}
	return nil
}

// queueGuard queues the guard's checks at the head of b. They run, in the transaction, before the writes
// queued after them; checkGuardResults reads their answers first and fails the transaction (which rolls
// back the writes) if the guard does not hold. FOR SHARE keeps the lease row from being taken over until
// the transaction ends, so a write that passed the fence commits while its holder still leads.
func queueGuard(b *pgx.Batch, g Guard, customerID string) {
	if g.Lease != nil {
		b.Queue(`SELECT 1 FROM reaper_leases
			WHERE account = $1 AND holder = $2 AND token = $3 AND expires_at > clock_timestamp() FOR SHARE`,
			g.Lease.Account, g.Lease.Holder, g.Lease.Token)
	}
	if g.Unprotected {
		b.Queue(`SELECT coalesce(reason, '') FROM reaper_keep
			WHERE lower(customer_id) = lower($1) AND (until IS NULL OR until > clock_timestamp())
			ORDER BY customer_id LIMIT 1`, customerID)
	}
}

func checkGuardResults(br pgx.BatchResults, g Guard) error {
	if g.Lease != nil {
		var one int
		err := br.QueryRow().Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return leaseLost(g.Lease)
		}
		if err != nil {
			return fmt.Errorf("check lease: %w", err)
		}
	}
	if g.Unprotected {
		var reason string
		err := br.QueryRow().Scan(&reason)
		if err == nil {
			return protected(reason)
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("check reaper_keep: %w", err)
		}
	}
	return nil
}

func (s *postgresStore) TransitionIf(ctx context.Context, g Guard, cs CustomerState, evs ...Event) error {
	if err := checkGuard(g, cs.Account, cs.CustomerID); err != nil {
		return fmt.Errorf("transition customer %s of account %s to %s: %w", cs.CustomerID, cs.Account, cs.State, err)
	}
	return s.transition(ctx, g, cs, evs)
}

func (s *postgresStore) AppendEventsIf(ctx context.Context, g Guard, evs ...Event) error {
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
