package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/tipreaper/tipreaper/migrations"
)

// postgresStore keeps everything in PostgreSQL through a pgx pool. The one lock it holds is its instance's
// session advisory lock (liveness for CloseDeadRuns and lease takeover), on a connection of its own taken
// out of the pool (Hijack) so that it never uses up the pool's connections. Leadership is a lease row.
type postgresStore struct {
	pool     *pgxpool.Pool
	instance uuid.UUID
	// instanceConn holds the advisory lock on lockKey("tipreaper:instance:"+instance) for the Store's
	// life: while it is held, other instances know this one's running runs are alive.
	instanceConn *pgx.Conn

	mu     sync.Mutex
	closed bool
}

func openPostgres(ctx context.Context, url string) (_ *postgresStore, err error) {
	secrets := urlSecrets(url)
	fail := func(op string, err error) error {
		return fmt.Errorf("open store %s: %s: %w", redactURL(url), op, redactErr(err, secrets))
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fail("parse url", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fail("create pool", err)
	}
	defer func() {
		if err != nil {
			pool.Close()
		}
	}()
	if err := pool.Ping(ctx); err != nil {
		return nil, fail("connect", err)
	}
	s := &postgresStore{pool: pool, instance: uuid.New()}
	conn, ok, err := s.tryLock(ctx, "tipreaper:instance:"+s.instance.String())
	if err != nil {
		return nil, fail("lock instance", err)
	}
	if !ok {
		return nil, fail("lock instance", fmt.Errorf("instance %s is already locked", s.instance))
	}
	s.instanceConn = conn
	return s, nil
}

// tryLock takes the advisory lock of name on a new session, returning that session while locked.
func (s *postgresStore) tryLock(ctx context.Context, name string) (*pgx.Conn, bool, error) {
	pc, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, false, err
	}
	conn := pc.Hijack()
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, lockKey(name)).Scan(&ok); err != nil || !ok {
		closeConn(conn)
		return nil, false, err
	}
	return conn, true, nil
}

func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = conn.Close(ctx) // closing ends the session and with it any lock; nothing else to do on error
}

func (s *postgresStore) Migrate(ctx context.Context) error {
	// goose runs on database/sql; this view of the pool shares its connections and settings.
	db := stdlib.OpenDBFromPool(s.pool)
	defer db.Close()

	// Two tipreapers starting at once must not both apply a migration: serialise on a lock per schema,
	// waiting (not trying) so that the second simply finds nothing left to do.
	var schema string
	if err := s.pool.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return fmt.Errorf("migrate postgres: current schema: %w", err)
	}
	pc, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrate postgres: %w", err)
	}
	conn := pc.Hijack()
	defer closeConn(conn)
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, lockKey("tipreaper:migrate:"+schema)); err != nil {
		return fmt.Errorf("migrate postgres: lock schema %s: %w", schema, err)
	}

	p, err := goose.NewProvider(goose.DialectPostgres, db, migrations.Postgres(), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return fmt.Errorf("migrate postgres: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate postgres schema %s: %w", schema, err)
	}
	return nil
}

func (s *postgresStore) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	// Ending the session releases the instance lock: other instances may now take over our leases and
	// close our running runs.
	closeConn(s.instanceConn)
	s.pool.Close()
	return nil
}

func (s *postgresStore) StartRun(ctx context.Context, r Run) error {
	if r.ID == uuid.Nil {
		return errors.New("start run: the run has no id")
	}
	if r.StartedAt.IsZero() {
		r.StartedAt = time.Now()
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO reaper_runs (id, started_at, mode, status, policy, plan_id, instance_id, host, pid)
		VALUES ($1, $2, $3, 'running', $4, $5, $6, $7, $8)`,
		r.ID, normTime(r.StartedAt), r.Mode, textArg(r.Policy), uuidArg(r.PlanID), s.instance, textArg(r.Host), intArg(r.PID))
	if err != nil {
		return fmt.Errorf("start run %s: %w", r.ID, err)
	}
	return nil
}

func (s *postgresStore) FinishRun(ctx context.Context, id uuid.UUID, status RunStatus, c Counts, errText string) error {
	if status == RunRunning || status == "" {
		return fmt.Errorf("finish run %s: status %q is not an end", id, status)
	}
	now := normTime(time.Now())
	tag, err := s.pool.Exec(ctx, `UPDATE reaper_runs SET status = $2, finished_at = $3,
			listed = $4, selected = $5, deleted = $6, already_gone = $7, failed = $8, blocked = $9, skipped = $10, marked = $11,
			error = $12, interrupted_at = CASE WHEN $2 = 'interrupted' THEN COALESCE(interrupted_at, $3) ELSE interrupted_at END
		WHERE id = $1`,
		id, string(status), now, c.Listed, c.Selected, c.Deleted, c.AlreadyGone, c.Failed, c.Blocked, c.Skipped, c.Marked,
		textArg(errText))
	if err != nil {
		return fmt.Errorf("finish run %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("finish run %s: %w", id, ErrNotFound)
	}
	return nil
}

func (s *postgresStore) CloseDeadRuns(ctx context.Context, now time.Time) (int, error) {
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT instance_id FROM reaper_runs WHERE status = 'running' AND instance_id <> $1`, s.instance)
	if err != nil {
		return 0, fmt.Errorf("close dead runs: %w", err)
	}
	others, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return 0, fmt.Errorf("close dead runs: %w", err)
	}
	closed := 0
	for _, inst := range others {
		// The owner holds its instance lock while alive: if we can take it, the owner is gone (and, its
		// id being unique, can never come back), so its runs can be closed after letting go at once.
		conn, ownerGone, err := s.tryLock(ctx, "tipreaper:instance:"+inst.String())
		if err != nil {
			return closed, fmt.Errorf("close dead runs of instance %s: %w", inst, err)
		}
		if !ownerGone {
			continue
		}
		closeConn(conn)
		tag, err := s.pool.Exec(ctx, `UPDATE reaper_runs SET status = 'interrupted', interrupted_at = $2, finished_at = $2
			WHERE instance_id = $1 AND status = 'running'`, inst, normTime(now))
		if err != nil {
			return closed, fmt.Errorf("close dead runs of instance %s: %w", inst, err)
		}
		closed += int(tag.RowsAffected())
	}
	return closed, nil
}

func (s *postgresStore) Runs(ctx context.Context, limit int) ([]Run, error) {
	q := `SELECT ` + runColumns + ` FROM reaper_runs ORDER BY started_at DESC, id DESC`
	args := []any{}
	if limit > 0 {
		q += ` LIMIT $1`
		args = append(args, limit)
	}
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	runs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Run, error) { return scanRun(r) })
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	return runs, nil
}

// pgTime is a time argument for Postgres: NULL when zero.
func pgTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return normTime(t)
}

// queueEvents adds the inserts to b; sent as one batch they cost one round trip however many there are.
func queueEvents(b *pgx.Batch, evs []Event) {
	now := time.Now()
	for _, e := range evs {
		b.Queue(insertEventSQL, eventArgs(e, now, pgTime)...)
	}
}

func (s *postgresStore) AppendEvents(ctx context.Context, evs ...Event) error {
	if len(evs) == 0 {
		return nil
	}
	return s.appendEvents(ctx, Guard{}, evs)
}

func (s *postgresStore) appendEvents(ctx context.Context, g Guard, evs []Event) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		queueGuard(b, g, "")
		queueEvents(b, evs)
		return sendGuarded(ctx, tx, b, g)
	})
	if err != nil {
		return fmt.Errorf("append %d events: %w", len(evs), err)
	}
	return nil
}

// sendGuarded sends b, whose head holds the checks of g (queueGuard), as one round trip and fails if g
// does not hold; the caller's transaction then rolls back whatever the batch wrote.
func sendGuarded(ctx context.Context, tx pgx.Tx, b *pgx.Batch, g Guard) error {
	br := tx.SendBatch(ctx, b)
	if err := checkGuardResults(br, g); err != nil {
		_ = br.Close() // the guard's error is the one that matters; the transaction rolls back
		return err
	}
	return br.Close()
}

// pgUpsertCustomer replaces a customer row, keeping first_seen and moving last_seen only forward.
// $6 (last_seen) is NULL when unknown: a new row then takes first_seen, a known row keeps its own.
const pgUpsertCustomer = `INSERT INTO reaper_customers AS c (` + customerColumns + `)
	VALUES ($1, $2, $3, $4, $5, COALESCE($6::timestamptz, $5::timestamptz), $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
	ON CONFLICT (account, customer_id) DO UPDATE SET
		last_seen = GREATEST(c.last_seen, $6::timestamptz),
		domain = EXCLUDED.domain, company_name = EXCLUDED.company_name,
		state = EXCLUDED.state, reason = EXCLUDED.reason, policy = EXCLUDED.policy, state_at = EXCLUDED.state_at,
		marked_at = EXCLUDED.marked_at, delete_after = EXCLUDED.delete_after, deleted_at = EXCLUDED.deleted_at,
		correlation_id = EXCLUDED.correlation_id, pending_action = EXCLUDED.pending_action,
		pending_order_id = EXCLUDED.pending_order_id, pending_request_id = EXCLUDED.pending_request_id`

func (s *postgresStore) Transition(ctx context.Context, cs CustomerState, evs ...Event) error {
	return s.transition(ctx, Guard{}, cs, evs)
}

func (s *postgresStore) transition(ctx context.Context, g Guard, cs CustomerState, evs []Event) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		queueGuard(b, g, cs.CustomerID)
		b.Queue(pgUpsertCustomer, customerArgs(cs, time.Now(), pgTime)...)
		queueEvents(b, evs)
		return sendGuarded(ctx, tx, b, g)
	})
	if err != nil {
		return fmt.Errorf("transition customer %s of account %s to %s: %w", cs.CustomerID, cs.Account, cs.State, err)
	}
	return nil
}

func (s *postgresStore) Sight(ctx context.Context, account string, seen []Sighting, at time.Time) ([]CustomerState, error) {
	if at.IsZero() {
		at = time.Now()
	}
	seen = dedupeSightings(seen)
	if len(seen) == 0 {
		return nil, nil
	}
	ids := make([]string, len(seen))
	domains := make([]string, len(seen))
	names := make([]string, len(seen))
	for i, x := range seen {
		ids[i], domains[i], names[i] = x.CustomerID, x.Domain, x.CompanyName
	}
	var got []CustomerState
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Customers absent from the account's previous (complete) listing
		// and listed again: their age restarts (see Store.Sight).
		rows, err := tx.Query(ctx, `UPDATE reaper_customers SET first_seen = $2, last_seen = $2
			WHERE account = $1 AND customer_id = ANY($3::text[])
				AND last_seen < (SELECT max(last_seen) FROM reaper_customers WHERE account = $1)
				AND (SELECT max(last_seen) FROM reaper_customers WHERE account = $1) < $2
			RETURNING customer_id`, account, normTime(at), ids)
		if err != nil {
			return err
		}
		restarted, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		// One statement for every customer: a pass sights thousands, each pass.
		rows, err = tx.Query(ctx, `INSERT INTO reaper_customers AS c (account, customer_id, domain, company_name,
				first_seen, last_seen, state, state_at)
			SELECT $1, x.customer_id, NULLIF(x.domain, ''), NULLIF(x.company_name, ''), $2, $2, 'seen', $2
			FROM unnest($3::text[], $4::text[], $5::text[]) AS x (customer_id, domain, company_name)
			ON CONFLICT (account, customer_id) DO UPDATE SET
				last_seen = GREATEST(c.last_seen, EXCLUDED.last_seen),
				domain = EXCLUDED.domain, company_name = EXCLUDED.company_name
			RETURNING `+customerColumns,
			account, normTime(at), ids, domains, names)
		if err != nil {
			return err
		}
		got, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (CustomerState, error) { return scanCustomer(r) })
		markResighted(got, restarted)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sight %d customers of account %s: %w", len(seen), account, err)
	}
	return orderCustomers(seen, got), nil
}

func (s *postgresStore) Customer(ctx context.Context, account, customerID string) (CustomerState, bool, error) {
	cs, err := scanCustomer(s.pool.QueryRow(ctx, `SELECT `+customerColumns+` FROM reaper_customers
		WHERE account = $1 AND customer_id = $2`, account, customerID))
	if errors.Is(err, pgx.ErrNoRows) {
		return CustomerState{}, false, nil
	}
	if err != nil {
		return CustomerState{}, false, fmt.Errorf("read customer %s of account %s: %w", customerID, account, err)
	}
	return cs, true, nil
}

func (s *postgresStore) FindCustomer(ctx context.Context, customerID string) ([]CustomerState, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+customerColumns+` FROM reaper_customers WHERE customer_id = $1 ORDER BY account`, customerID)
	if err != nil {
		return nil, fmt.Errorf("find customer %s: %w", customerID, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (CustomerState, error) { return scanCustomer(r) })
	if err != nil {
		return nil, fmt.Errorf("find customer %s: %w", customerID, err)
	}
	return out, nil
}

func (s *postgresStore) CustomerEvents(ctx context.Context, customerID string) ([]Event, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+eventColumns+` FROM reaper_events WHERE customer_id = $1 ORDER BY at, id`, customerID)
	if err != nil {
		return nil, fmt.Errorf("events of customer %s: %w", customerID, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Event, error) { return scanEvent(r) })
	if err != nil {
		return nil, fmt.Errorf("events of customer %s: %w", customerID, err)
	}
	return out, nil
}

func (s *postgresStore) AddKeep(ctx context.Context, k Keep) error {
	if k.AddedAt.IsZero() {
		k.AddedAt = time.Now()
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO reaper_keep (`+keepColumns+`) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (customer_id) DO UPDATE SET reason = EXCLUDED.reason, added_by = EXCLUDED.added_by,
			added_at = EXCLUDED.added_at, until = EXCLUDED.until`,
		k.CustomerID, textArg(k.Reason), textArg(k.AddedBy), pgTime(k.AddedAt), pgTime(k.Until))
	if err != nil {
		return fmt.Errorf("keep customer %s: %w", k.CustomerID, err)
	}
	return nil
}

func (s *postgresStore) RemoveKeep(ctx context.Context, customerID string) (bool, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM reaper_keep WHERE customer_id = $1`, customerID)
	if err != nil {
		return false, fmt.Errorf("remove keep of customer %s: %w", customerID, err)
	}
	return tag.RowsAffected() > 0, nil
}

func (s *postgresStore) Keeps(ctx context.Context) ([]Keep, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+keepColumns+` FROM reaper_keep ORDER BY customer_id`)
	if err != nil {
		return nil, fmt.Errorf("list keeps: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Keep, error) { return scanKeep(r) })
	if err != nil {
		return nil, fmt.Errorf("list keeps: %w", err)
	}
	return out, nil
}

func (s *postgresStore) SavePlan(ctx context.Context, p Plan) error {
	if p.CreatedAt.IsZero() {
		p.CreatedAt = time.Now()
	}
	items, err := encodeItems(p.Items)
	if err != nil {
		return fmt.Errorf("save plan %s: %w", p.ID, err)
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO reaper_plans (`+planColumns+`) VALUES ($1, $2, $3, $4, $5)`,
		p.ID, pgTime(p.CreatedAt), uuidArg(p.RunID), textArg(p.Policy), items)
	if err != nil {
		return fmt.Errorf("save plan %s: %w", p.ID, err)
	}
	return nil
}

func (s *postgresStore) Plan(ctx context.Context, id uuid.UUID) (Plan, error) {
	p, err := scanPlan(s.pool.QueryRow(ctx, `SELECT `+planColumns+` FROM reaper_plans WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Plan{}, fmt.Errorf("plan %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Plan{}, fmt.Errorf("plan %s: %w", id, err)
	}
	return p, nil
}

func (s *postgresStore) InFlight(ctx context.Context, account string) ([]CustomerState, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+customerColumns+` FROM reaper_customers
		WHERE account = $1 AND state IN `+inFlightSQL+` ORDER BY customer_id`, account)
	if err != nil {
		return nil, fmt.Errorf("customers in flight of account %s: %w", account, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (CustomerState, error) { return scanCustomer(r) })
	if err != nil {
		return nil, fmt.Errorf("customers in flight of account %s: %w", account, err)
	}
	return out, nil
}

func (s *postgresStore) CustomersIn(ctx context.Context, account string, states ...string) ([]CustomerState, error) {
	in, args := statesIn(states, 2)
	rows, err := s.pool.Query(ctx, `SELECT `+customerColumns+` FROM reaper_customers
		WHERE account = $1 AND `+in+` ORDER BY customer_id`, append([]any{account}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("customers of account %s in states %s: %w", account, strings.Join(states, ", "), err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (CustomerState, error) { return scanCustomer(r) })
	if err != nil {
		return nil, fmt.Errorf("customers of account %s in states %s: %w", account, strings.Join(states, ", "), err)
	}
	return out, nil
}
