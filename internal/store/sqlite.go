package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver (pure Go)

	"github.com/tipreaper/tipreaper/migrations"
)

// sqliteStore keeps everything in one SQLite file, which any number of processes may use at once (WAL,
// busy timeout, short IMMEDIATE transactions): operators' commands work while a daemon or pass runs, and
// passes exclude each other per account by the lease rows in the file. Each Store holds an flock on a
// file of its own, stateDir/instances/<instance>.lock, until Close: a free lock says the instance's
// process is gone (the kernel drops flocks with their process), which is how CloseDeadRuns and lease
// takeover tell dead instances from live ones.
type sqliteStore struct {
	db       *sql.DB
	dir      string
	instance uuid.UUID
	alive    *os.File // holds the flock on stateDir/instances/<instance>.lock

	closeOnce sync.Once
	closeErr  error
}

func openSQLite(ctx context.Context, dir string) (_ *sqliteStore, err error) {
	if dir == "" {
		return nil, errors.New("open sqlite store: no state dir given")
	}
	if strings.ContainsAny(dir, "?#") {
		// The driver reads everything after '?' as its parameters.
		return nil, fmt.Errorf("open sqlite store: state dir %q: '?' and '#' are not supported in its path", dir)
	}
	if err := os.MkdirAll(filepath.Join(dir, instancesDir), 0o700); err != nil {
		return nil, fmt.Errorf("open sqlite store: %w", err)
	}
	instance := uuid.New()
	alive, ok, err := flockFile(instancePath(dir, instance.String()), true)
	if err != nil {
		return nil, fmt.Errorf("open sqlite store: %w", err)
	}
	if !ok {
		return nil, fmt.Errorf("open sqlite store: instance %s is already locked", instance)
	}
	defer func() {
		if err != nil {
			alive.Close()
			os.Remove(alive.Name())
		}
	}()

	// WAL lets readers (reaper why, plain SQL) read while a pass writes; busy_timeout makes writers queue
	// instead of failing; IMMEDIATE transactions take the write lock at BEGIN, so two transactions never
	// deadlock upgrading from read to write. Foreign keys are off in SQLite unless asked for.
	dsn := filepath.Join(dir, "reaper.db") +
		"?_busy_timeout=10000&_journal_mode=WAL&_foreign_keys=1&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open sqlite store in %s: %w", dir, err)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite store in %s: %w", dir, err)
	}
	return &sqliteStore{db: db, dir: dir, instance: instance, alive: alive}, nil
}

// instancesDir holds one lock file per live Store of the state dir.
const instancesDir = "instances"

func instancePath(dir, instance string) string {
	return filepath.Join(dir, instancesDir, instance+".lock")
}

// flockFile opens path and takes an exclusive flock on it without waiting; ok is false when another open
// file holds it. create says whether a missing file is created (else it counts as not locked: ok with a
// nil file).
func flockFile(path string, create bool) (_ *os.File, ok bool, _ error) {
	flags := os.O_RDWR
	if create {
		flags |= os.O_CREATE
	}
	f, err := os.OpenFile(path, flags, 0o600)
	if errors.Is(err, os.ErrNotExist) && !create {
		return nil, true, nil
	}
	if err != nil {
		return nil, false, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("lock %s: %w", path, err)
	}
	return f, true, nil
}

// instanceAlive says whether the store instance id still uses this state dir: its lock file is locked.
// A dead instance's file is removed. An error counts as alive: when in doubt, wait for the lease to expire.
func (s *sqliteStore) instanceAlive(id string) bool {
	if id == s.instance.String() {
		return true
	}
	if _, err := uuid.Parse(id); err != nil {
		return true // not a name this code wrote: never turn it into a path
	}
	f, free, err := flockFile(instancePath(s.dir, id), false)
	if err != nil || !free {
		return true
	}
	if f != nil {
		os.Remove(f.Name()) // dead for good: instance ids are never reused
		f.Close()
	}
	return false
}

// lockMigrations serialises Migrate across the processes of a state dir (goose reads the version before
// its transaction, so two at once could both apply a migration). It waits for the lock, bounded by ctx.
func lockMigrations(ctx context.Context, dir string) (*os.File, error) {
	for {
		f, ok, err := flockFile(filepath.Join(dir, "migrate.lock"), true)
		if err != nil || ok {
			return f, err
		}
		t := time.NewTimer(20 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

func (s *sqliteStore) Migrate(ctx context.Context) error {
	lock, err := lockMigrations(ctx, s.dir)
	if err != nil {
		return fmt.Errorf("migrate sqlite: lock: %w", err)
	}
	defer lock.Close()
	p, err := goose.NewProvider(goose.DialectSQLite3, s.db, migrations.SQLite(), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return fmt.Errorf("migrate sqlite: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate sqlite: %w", err)
	}
	return nil
}

func (s *sqliteStore) Close() error {
	s.closeOnce.Do(func() {
		s.closeErr = s.db.Close()
		// Say this instance is gone only after the database is closed: its runs and leases may then be
		// closed and taken over by others.
		os.Remove(s.alive.Name())
		if err := s.alive.Close(); err != nil && s.closeErr == nil {
			s.closeErr = err
		}
		if s.closeErr != nil {
			s.closeErr = fmt.Errorf("close sqlite store: %w", s.closeErr)
		}
	})
	return s.closeErr
}

// sqliteTime is a time argument for SQLite: fixed-width UTC text, NULL when zero.
func sqliteTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return normTime(t).Format(sqliteTimeLayout)
}

func (s *sqliteStore) StartRun(ctx context.Context, r Run) error {
	if r.ID == uuid.Nil {
		return errors.New("start run: the run has no id")
	}
	if r.StartedAt.IsZero() {
		r.StartedAt = time.Now()
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO reaper_runs (id, started_at, mode, status, policy, plan_id, instance_id, host, pid)
		VALUES ($1, $2, $3, 'running', $4, $5, $6, $7, $8)`,
		r.ID.String(), sqliteTime(r.StartedAt), r.Mode, textArg(r.Policy), uuidArg(r.PlanID), s.instance.String(),
		textArg(r.Host), intArg(r.PID))
	if err != nil {
		return fmt.Errorf("start run %s: %w", r.ID, err)
	}
	return nil
}

func (s *sqliteStore) FinishRun(ctx context.Context, id uuid.UUID, status RunStatus, c Counts, errText string) error {
	if status == RunRunning || status == "" {
		return fmt.Errorf("finish run %s: status %q is not an end", id, status)
	}
	res, err := s.db.ExecContext(ctx, `UPDATE reaper_runs SET status = $2, finished_at = $3,
			listed = $4, selected = $5, deleted = $6, already_gone = $7, failed = $8, blocked = $9, skipped = $10, marked = $11,
			error = $12, interrupted_at = CASE WHEN $2 = 'interrupted' THEN COALESCE(interrupted_at, $3) ELSE interrupted_at END
		WHERE id = $1`,
		id.String(), string(status), sqliteTime(time.Now()), c.Listed, c.Selected, c.Deleted, c.AlreadyGone, c.Failed,
		c.Blocked, c.Skipped, c.Marked, textArg(errText))
	if err != nil {
		return fmt.Errorf("finish run %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("finish run %s: %w", id, err)
	} else if n == 0 {
		return fmt.Errorf("finish run %s: %w", id, ErrNotFound)
	}
	return nil
}

func (s *sqliteStore) CloseDeadRuns(ctx context.Context, now time.Time) (int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT instance_id FROM reaper_runs WHERE status = 'running' AND instance_id <> $1`,
		s.instance.String())
	if err != nil {
		return 0, fmt.Errorf("close dead runs: %w", err)
	}
	others, err := collect(rows, func(r scanner) (string, error) {
		var id string
		return id, r.Scan(&id)
	})
	if err != nil {
		return 0, fmt.Errorf("close dead runs: %w", err)
	}
	closed := 0
	for _, inst := range others {
		if s.instanceAlive(inst) {
			continue
		}
		res, err := s.db.ExecContext(ctx, `UPDATE reaper_runs SET status = 'interrupted', interrupted_at = $2, finished_at = $2
			WHERE status = 'running' AND instance_id = $1`, inst, sqliteTime(now))
		if err != nil {
			return closed, fmt.Errorf("close dead runs of instance %s: %w", inst, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return closed, fmt.Errorf("close dead runs of instance %s: %w", inst, err)
		}
		closed += int(n)
	}
	return closed, nil
}

func (s *sqliteStore) Runs(ctx context.Context, limit int) ([]Run, error) {
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+runColumns+` FROM reaper_runs ORDER BY started_at DESC, id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	out, err := collect(rows, scanRun)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	return out, nil
}

// collect scans every row and closes rows.
func collect[T any](rows *sql.Rows, scan func(scanner) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func insertEvents(ctx context.Context, tx *sql.Tx, evs []Event) error {
	if len(evs) == 0 {
		return nil
	}
	stmt, err := tx.PrepareContext(ctx, insertEventSQL)
	if err != nil {
		return err
	}
	defer stmt.Close()
	now := time.Now()
	for _, e := range evs {
		if _, err := stmt.ExecContext(ctx, eventArgs(e, now, sqliteTime)...); err != nil {
			return err
		}
	}
	return nil
}

// inTx runs fn in one (IMMEDIATE) transaction, committing only if fn succeeds.
func (s *sqliteStore) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback() // the error that matters is fn's
		return err
	}
	return tx.Commit()
}

func (s *sqliteStore) AppendEvents(ctx context.Context, evs ...Event) error {
	if len(evs) == 0 {
		return nil
	}
	return s.appendEvents(ctx, Guard{}, evs)
}

func (s *sqliteStore) appendEvents(ctx context.Context, g Guard, evs []Event) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := checkGuardTx(ctx, tx, g, ""); err != nil {
			return err
		}
		return insertEvents(ctx, tx, evs)
	})
	if err != nil {
		return fmt.Errorf("append %d events: %w", len(evs), err)
	}
	return nil
}

// sqliteUpsertCustomer is pgUpsertCustomer in SQLite's words: max() of text times, which compare as
// instants because of their fixed width, and NULL-safe by hand (SQLite's max() of a NULL is NULL).
const sqliteUpsertCustomer = `INSERT INTO reaper_customers (` + customerColumns + `)
	VALUES ($1, $2, $3, $4, $5, COALESCE($6, $5), $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
	ON CONFLICT (account, customer_id) DO UPDATE SET
		last_seen = max(last_seen, COALESCE($6, last_seen)),
		domain = excluded.domain, company_name = excluded.company_name,
		state = excluded.state, reason = excluded.reason, policy = excluded.policy, state_at = excluded.state_at,
		marked_at = excluded.marked_at, delete_after = excluded.delete_after, deleted_at = excluded.deleted_at,
		correlation_id = excluded.correlation_id, pending_action = excluded.pending_action,
		pending_order_id = excluded.pending_order_id, pending_request_id = excluded.pending_request_id`

func (s *sqliteStore) Transition(ctx context.Context, cs CustomerState, evs ...Event) error {
	return s.transition(ctx, Guard{}, cs, evs)
}

func (s *sqliteStore) transition(ctx context.Context, g Guard, cs CustomerState, evs []Event) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := checkGuardTx(ctx, tx, g, cs.CustomerID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, sqliteUpsertCustomer, customerArgs(cs, time.Now(), sqliteTime)...); err != nil {
			return err
		}
		return insertEvents(ctx, tx, evs)
	})
	if err != nil {
		return fmt.Errorf("transition customer %s of account %s to %s: %w", cs.CustomerID, cs.Account, cs.State, err)
	}
	return nil
}

func (s *sqliteStore) Sight(ctx context.Context, account string, seen []Sighting, at time.Time) ([]CustomerState, error) {
	if at.IsZero() {
		at = time.Now()
	}
	seen = dedupeSightings(seen)
	if len(seen) == 0 {
		return nil, nil
	}
	out := make([]CustomerState, 0, len(seen))
	// One transaction and one prepared statement: a pass sights thousands of customers, each pass.
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		restarted, err := s.restartAbsent(ctx, tx, account, seen, at)
		if err != nil {
			return err
		}
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO reaper_customers (account, customer_id, domain, company_name,
				first_seen, last_seen, state, state_at)
			VALUES ($1, $2, NULLIF($3, ''), NULLIF($4, ''), $5, $5, 'seen', $5)
			ON CONFLICT (account, customer_id) DO UPDATE SET
				last_seen = max(last_seen, excluded.last_seen),
				domain = excluded.domain, company_name = excluded.company_name
			RETURNING `+customerColumns)
		if err != nil {
			return err
		}
		defer stmt.Close()
		when := sqliteTime(at)
		for _, x := range seen {
			cs, err := scanCustomer(stmt.QueryRowContext(ctx, account, x.CustomerID, x.Domain, x.CompanyName, when))
			if err != nil {
				return fmt.Errorf("customer %s: %w", x.CustomerID, err)
			}
			out = append(out, cs)
		}
		markResighted(out, restarted)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sight %d customers of account %s: %w", len(seen), account, err)
	}
	return out, nil
}

// restartAbsent restarts the age of the customers of seen that were absent
// from the account's previous listing (see Store.Sight) and returns their ids.
func (s *sqliteStore) restartAbsent(ctx context.Context, tx *sql.Tx, account string, seen []Sighting, at time.Time) ([]string, error) {
	var prev sql.NullString
	if err := tx.QueryRowContext(ctx, `SELECT max(last_seen) FROM reaper_customers WHERE account = $1`, account).Scan(&prev); err != nil {
		return nil, err
	}
	when := normTime(at).Format(sqliteTimeLayout)
	if !prev.Valid || prev.String >= when {
		return nil, nil
	}
	stmt, err := tx.PrepareContext(ctx, `UPDATE reaper_customers SET first_seen = $3, last_seen = $3
		WHERE account = $1 AND customer_id = $2 AND last_seen < $4 RETURNING customer_id`)
	if err != nil {
		return nil, err
	}
	defer stmt.Close()
	var out []string
	for _, x := range seen {
		var id string
		err := stmt.QueryRowContext(ctx, account, x.CustomerID, when, prev.String).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("customer %s: %w", x.CustomerID, err)
		}
		out = append(out, id)
	}
	return out, nil
}

func (s *sqliteStore) Customer(ctx context.Context, account, customerID string) (CustomerState, bool, error) {
	cs, err := scanCustomer(s.db.QueryRowContext(ctx, `SELECT `+customerColumns+` FROM reaper_customers
		WHERE account = $1 AND customer_id = $2`, account, customerID))
	if errors.Is(err, sql.ErrNoRows) {
		return CustomerState{}, false, nil
	}
	if err != nil {
		return CustomerState{}, false, fmt.Errorf("read customer %s of account %s: %w", customerID, account, err)
	}
	return cs, true, nil
}

func (s *sqliteStore) FindCustomer(ctx context.Context, customerID string) ([]CustomerState, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+customerColumns+` FROM reaper_customers WHERE customer_id = $1 ORDER BY account`, customerID)
	if err != nil {
		return nil, fmt.Errorf("find customer %s: %w", customerID, err)
	}
	out, err := collect(rows, scanCustomer)
	if err != nil {
		return nil, fmt.Errorf("find customer %s: %w", customerID, err)
	}
	return out, nil
}

func (s *sqliteStore) CustomerEvents(ctx context.Context, customerID string) ([]Event, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+eventColumns+` FROM reaper_events WHERE customer_id = $1 ORDER BY at, id`, customerID)
	if err != nil {
		return nil, fmt.Errorf("events of customer %s: %w", customerID, err)
	}
	out, err := collect(rows, scanEvent)
	if err != nil {
		return nil, fmt.Errorf("events of customer %s: %w", customerID, err)
	}
	return out, nil
}

func (s *sqliteStore) AddKeep(ctx context.Context, k Keep) error {
	if k.AddedAt.IsZero() {
		k.AddedAt = time.Now()
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO reaper_keep (`+keepColumns+`) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (customer_id) DO UPDATE SET reason = excluded.reason, added_by = excluded.added_by,
			added_at = excluded.added_at, until = excluded.until`,
		k.CustomerID, textArg(k.Reason), textArg(k.AddedBy), sqliteTime(k.AddedAt), sqliteTime(k.Until))
	if err != nil {
		return fmt.Errorf("keep customer %s: %w", k.CustomerID, err)
	}
	return nil
}

func (s *sqliteStore) RemoveKeep(ctx context.Context, customerID string) (bool, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM reaper_keep WHERE customer_id = $1`, customerID)
	if err != nil {
		return false, fmt.Errorf("remove keep of customer %s: %w", customerID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("remove keep of customer %s: %w", customerID, err)
	}
	return n > 0, nil
}

func (s *sqliteStore) Keeps(ctx context.Context) ([]Keep, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+keepColumns+` FROM reaper_keep ORDER BY customer_id`)
	if err != nil {
		return nil, fmt.Errorf("list keeps: %w", err)
	}
	out, err := collect(rows, scanKeep)
	if err != nil {
		return nil, fmt.Errorf("list keeps: %w", err)
	}
	return out, nil
}

func (s *sqliteStore) SavePlan(ctx context.Context, p Plan) error {
	if p.CreatedAt.IsZero() {
		p.CreatedAt = time.Now()
	}
	items, err := encodeItems(p.Items)
	if err != nil {
		return fmt.Errorf("save plan %s: %w", p.ID, err)
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO reaper_plans (`+planColumns+`) VALUES ($1, $2, $3, $4, $5)`,
		p.ID.String(), sqliteTime(p.CreatedAt), uuidArg(p.RunID), textArg(p.Policy), string(items))
	if err != nil {
		return fmt.Errorf("save plan %s: %w", p.ID, err)
	}
	return nil
}

func (s *sqliteStore) Plan(ctx context.Context, id uuid.UUID) (Plan, error) {
	p, err := scanPlan(s.db.QueryRowContext(ctx, `SELECT `+planColumns+` FROM reaper_plans WHERE id = $1`, id.String()))
	if errors.Is(err, sql.ErrNoRows) {
		return Plan{}, fmt.Errorf("plan %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Plan{}, fmt.Errorf("plan %s: %w", id, err)
	}
	return p, nil
}

func (s *sqliteStore) InFlight(ctx context.Context, account string) ([]CustomerState, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+customerColumns+` FROM reaper_customers
		WHERE account = $1 AND state IN `+inFlightSQL+` ORDER BY customer_id`, account)
	if err != nil {
		return nil, fmt.Errorf("customers in flight of account %s: %w", account, err)
	}
	out, err := collect(rows, scanCustomer)
	if err != nil {
		return nil, fmt.Errorf("customers in flight of account %s: %w", account, err)
	}
	return out, nil
}

func (s *sqliteStore) CustomersIn(ctx context.Context, account string, states ...string) ([]CustomerState, error) {
	in, args := statesIn(states, 2)
	rows, err := s.db.QueryContext(ctx, `SELECT `+customerColumns+` FROM reaper_customers
		WHERE account = $1 AND `+in+` ORDER BY customer_id`, append([]any{account}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("customers of account %s in states %s: %w", account, strings.Join(states, ", "), err)
	}
	out, err := collect(rows, scanCustomer)
	if err != nil {
		return nil, fmt.Errorf("customers of account %s in states %s: %w", account, strings.Join(states, ", "), err)
	}
	return out, nil
}
