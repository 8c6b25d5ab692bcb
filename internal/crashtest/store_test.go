package crashtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

const defaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// trialStore is where a trial's reaper processes keep their state.
type trialStore struct {
	stateDir string // SQLite (and the state dir either way)
	url      string // Postgres: the database url of the config, with the trial's schema
	base     string // Postgres: TEST_DATABASE_URL
	appName  string // Postgres: application_name of the reaper's sessions
	checkURL string // Postgres: the url the checks read with
}

// dbHandle reads a trial's tables with plain SQL, as an operator would.
type dbHandle struct{ db *sql.DB }

func databaseURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return defaultDatabaseURL
}

// postgresReachable says whether TEST_DATABASE_URL answers.
func postgresReachable() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, databaseURL())
	if err != nil {
		return false
	}
	conn.Close(ctx)
	return true
}

// newPostgresStore makes a schema of the trial's own, dropped at the end.
// The reaper's sessions carry an application_name of their own so the trial
// can wait for a killed process's sessions to end.
func newPostgresStore(t *testing.T) *trialStore {
	t.Helper()
	base := databaseURL()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("postgres at TEST_DATABASE_URL unreachable (CI is set, so this fails): %v", err)
		}
		t.Skipf("postgres at TEST_DATABASE_URL unreachable: %v", err)
	}
	defer conn.Close(ctx)
	var b [6]byte
	_, _ = rand.Read(b[:])
	tag := hex.EncodeToString(b[:])
	schema := "tipreaper_crash_" + tag
	_, err = conn.Exec(ctx, `CREATE SCHEMA `+schema)
	require.NoError(t, err, "create schema")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	withParams := func(app string) string {
		u, err := url.Parse(base)
		require.NoError(t, err, "TEST_DATABASE_URL")
		q := u.Query()
		q.Set("options", "-csearch_path="+schema)
		q.Set("application_name", app)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return &trialStore{
		stateDir: filepath.Join(t.TempDir(), "state"),
		url:      withParams("tipreaper-crash-" + tag),
		base:     base,
		appName:  "tipreaper-crash-" + tag,
		checkURL: withParams("tipreaper-crash-check-" + tag),
	}
}

// open returns a handle on the trial's tables, closed when the test ends.
// SQLite is read through the file the reaper writes; it is only read
// between passes.
func (s *trialStore) open(t *testing.T) dbHandle {
	t.Helper()
	driver, dsn := "sqlite", filepath.Join(s.stateDir, "reaper.db")+"?_pragma=busy_timeout(10000)"
	if s.checkURL != "" {
		driver, dsn = "pgx", s.checkURL
	}
	db, err := sql.Open(driver, dsn)
	require.NoError(t, err)
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return dbHandle{db: db}
}

// awaitSessionsGone waits until no session of the reaper is left on the
// server. A SIGKILLed client's backend ends when it notices the closed
// socket, which is soon but not at once.
func (s *trialStore) awaitSessionsGone(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.base)
	if err != nil {
		return fmt.Errorf("wait for the reaper's sessions to end: %w", err)
	}
	defer conn.Close(context.Background())
	for {
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1`, s.appName).Scan(&n); err != nil {
			return fmt.Errorf("wait for the reaper's sessions to end: %w", err)
		}
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for the reaper's sessions to end: %d still open: %w", n, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// stored is what the trial's tables hold after the final pass.
type stored struct {
	customers map[string]customerRow // by customer id
	events    map[string][]eventRow  // by customer id, in the order written
	runs      []runRow
}

type customerRow struct {
	state, reason, pendingAction string
	deleted                      bool // deleted_at is set
}

type eventRow struct {
	id                                                          int64
	action, orderID, outcome, requestID, detail, errText, runID string
}

type runRow struct{ id, status string }

// readStore reads the tables with SQL both backends understand.
func readStore(t *testing.T, h dbHandle) stored {
	t.Helper()
	ctx := t.Context()
	st := stored{customers: map[string]customerRow{}, events: map[string][]eventRow{}}

	rows, err := h.db.QueryContext(ctx, `SELECT customer_id, state, COALESCE(reason, ''), COALESCE(pending_action, ''),
		CASE WHEN deleted_at IS NULL THEN 0 ELSE 1 END FROM reaper_customers`)
	require.NoError(t, err)
	for rows.Next() {
		var id string
		var c customerRow
		var deleted int
		require.NoError(t, rows.Scan(&id, &c.state, &c.reason, &c.pendingAction, &deleted))
		c.deleted = deleted == 1
		st.customers[id] = c
	}
	require.NoError(t, rows.Err())
	rows.Close()

	rows, err = h.db.QueryContext(ctx, `SELECT id, COALESCE(customer_id, ''), action, COALESCE(order_id, ''), outcome,
		COALESCE(ms_request_id, ''), COALESCE(detail, ''), COALESCE(error, ''), COALESCE(CAST(run_id AS TEXT), '')
		FROM reaper_events ORDER BY id`)
	require.NoError(t, err)
	for rows.Next() {
		var cid string
		var e eventRow
		require.NoError(t, rows.Scan(&e.id, &cid, &e.action, &e.orderID, &e.outcome, &e.requestID, &e.detail, &e.errText, &e.runID))
		st.events[cid] = append(st.events[cid], e)
	}
	require.NoError(t, rows.Err())
	rows.Close()

	rows, err = h.db.QueryContext(ctx, `SELECT CAST(id AS TEXT), status FROM reaper_runs ORDER BY started_at, id`)
	require.NoError(t, err)
	for rows.Next() {
		var r runRow
		require.NoError(t, rows.Scan(&r.id, &r.status))
		st.runs = append(st.runs, r)
	}
	require.NoError(t, rows.Err())
	rows.Close()
	return st
}

// terminateSessions ends every session of the reaper on the server, as a
// server restart, an idle-session killer or an operator would, and says how
// many it ended.
func (s *trialStore) terminateSessions(ctx context.Context) (int64, error) {
	conn, err := pgx.Connect(ctx, s.base)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.Background())
	var n int64
	err = conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`, s.appName).Scan(&n)
	return n, err
}
