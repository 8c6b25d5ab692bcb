package deploy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/tipreaper/tipreaper/internal/store/storetest"
)

// superuser connects to TEST_DATABASE_URL, skipping the test when the server is unreachable (failing
// under CI), as the store's tests do.
func superuser(t *testing.T) (*pgx.Conn, string) {
	t.Helper()
	base := storetest.DatabaseURL()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("postgres at TEST_DATABASE_URL unreachable (CI is set, so this fails): %v", err)
		}
		t.Skipf("postgres at TEST_DATABASE_URL unreachable: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn, base
}

// asRole is base with another user name.
func asRole(t *testing.T, base, role string) string {
	t.Helper()
	u, err := url.Parse(base)
	require.NoError(t, err)
	u.User = url.User(role)
	return u.String()
}

// TestLeastPrivilegeRoles runs the README's two-role setup as written (role and schema names made unique
// to the test) and then: `reaper migrate` works as the owner and not as the runtime role; every other
// command (reports included) works as the runtime role; the runtime role can neither rewrite the audit nor lift its guard.
func TestLeastPrivilegeRoles(t *testing.T) {
	su, base := superuser(t)
	ctx := t.Context()

	var b [6]byte
	_, _ = rand.Read(b[:])
	suffix := hex.EncodeToString(b[:])
	owner, runtime, schema := "reaper_owner_"+suffix, "reaper_runtime_"+suffix, "tipreaper_test_roles_"+suffix
	rename := func(sql string) string {
		sql = regexp.MustCompile(`\breaper_owner\b`).ReplaceAllString(sql, owner)
		sql = regexp.MustCompile(`\breaper_runtime\b`).ReplaceAllString(sql, runtime)
		return regexp.MustCompile(`\btipreaper\b`).ReplaceAllString(sql, schema)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, stmt := range []string{
			`DROP SCHEMA IF EXISTS ` + schema + ` CASCADE`,
			`DROP OWNED BY ` + owner + `, ` + runtime,
			`DROP ROLE IF EXISTS ` + runtime,
			`DROP ROLE IF EXISTS ` + owner,
		} {
			if _, err := su.Exec(ctx, stmt); err != nil {
				t.Errorf("clean up: %s: %v", stmt, err)
			}
		}
	})

	setup := readmeBlock(t, "-- roles:")
	_, err := su.Exec(ctx, rename(setup.text))
	require.NoError(t, err, "README.md:%d: the role setup", setup.line)

	sb := newSandbox(t)
	ownerURL := asRole(t, base, owner)
	ownerConfig := sb.writeConfig(t, ownerURL)
	runtimeConfig := sb.writeConfig(t, asRole(t, base, runtime))

	t.Run("the runtime role cannot create the schema", func(t *testing.T) {
		r := reaper(ctx, "migrate", "--config", runtimeConfig)
		require.NotZero(t, r.code, r)
		require.Contains(t, r.stderr, "permission denied", r)
	})
	t.Run("the owner migrates", func(t *testing.T) {
		r := reaper(ctx, "migrate", "--config", ownerConfig)
		require.Zero(t, r.code, r)
	})

	ownerConn, err := pgx.Connect(ctx, ownerURL)
	require.NoError(t, err)
	defer ownerConn.Close(context.Background())
	grants := readmeBlock(t, "-- grants:")
	_, err = ownerConn.Exec(ctx, rename(grants.text))
	require.NoError(t, err, "README.md:%d: the grants", grants.line)

	t.Run("every table and view has its grant in the README", func(t *testing.T) {
		rows, err := ownerConn.Query(ctx, `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname = $1 AND c.relkind IN ('r', 'v') AND NOT has_table_privilege($2, c.oid, 'SELECT')`, schema, runtime)
		require.NoError(t, err)
		missing, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		require.Empty(t, missing, "README.md:%d: a migration added tables or views the runtime role has no grant on", grants.line)
	})

	t.Run("every other command works as the runtime role", func(t *testing.T) {
		// want -1: a pass, whose exit code (0, or 1 for the blocked customer) other tests pin.
		run := func(want int, args ...string) result {
			t.Helper()
			r := reaper(ctx, append(args, "--config", runtimeConfig)...)
			if want < 0 {
				require.Contains(t, []int{0, 1}, r.code, "reaper %v as the runtime role:\n%s", args, r)
			} else {
				require.Equal(t, want, r.code, "reaper %v as the runtime role:\n%s", args, r)
			}
			require.NotContains(t, r.stdout+r.stderr, "permission denied")
			return r
		}
		run(0, "validate")
		run(0, "migrate") // nothing to do: only reads goose_db_version

		r := run(-1, "once", "--dry-run")
		m := planIDPattern.FindStringSubmatch(r.stdout)
		require.NotNil(t, m, r)
		run(-1, "apply", m[1])
		left := sb.present()
		require.False(t, left[idOld1])
		require.False(t, left[idOld2])
		require.True(t, left[idYoung])
		require.True(t, left[idGolden])
		require.True(t, left[idAncient])

		require.Contains(t, run(-1, "once").stdout, "blocked 1") // the ancient customer cannot be deleted
		run(0, "keep", "add", idYoung, "--reason", "role test", "--by", "tester")
		require.Contains(t, run(0, "keep", "list").stdout, idYoung)
		require.Contains(t, run(0, "why", idYoung).stdout, "role test")
		run(0, "keep", "rm", idYoung)
		for _, args := range [][]string{{"report", "runs"}, {"report", "deletions"}, {"report", "blocked"}, {"report", "customer", idOld1}} {
			require.NotContains(t, run(0, args...).stdout, "(no rows)", "reaper %v", args)
		}
		run(0, "unblock", idAncient)

		// The daemon: one pass at start (the ancient customer is blocked again), then stopped as SIGTERM would.
		runCtx, stop := context.WithTimeout(ctx, 2*time.Minute)
		defer stop()
		started := time.Now()
		done := make(chan result, 1)
		go func() { done <- reaper(runCtx, "run", "--now", "--config", runtimeConfig) }()
		require.Eventually(t, func() bool {
			var n int
			err := ownerConn.QueryRow(ctx, `SELECT count(*) FROM reaper_runs WHERE started_at >= $1 AND status <> 'running'`, started).Scan(&n)
			return err == nil && n > 0
		}, time.Minute, 50*time.Millisecond, "the daemon's pass never finished")
		stop()
		r = <-done
		require.Zero(t, r.code, "reaper run as the runtime role:\n%s", r)
		require.NotContains(t, r.stdout+r.stderr, "permission denied")
	})

	t.Run("the runtime role can neither rewrite the audit nor lift its guard", func(t *testing.T) {
		conn, err := pgx.Connect(ctx, asRole(t, base, runtime))
		require.NoError(t, err)
		defer conn.Close(context.Background())
		var events int
		require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM reaper_events`).Scan(&events))
		require.Positive(t, events)
		for _, stmt := range []string{
			`UPDATE reaper_events SET detail = 'rewritten'`,
			`DELETE FROM reaper_events`,
			`TRUNCATE reaper_events`,
			`ALTER TABLE reaper_events DISABLE TRIGGER reaper_events_append_only`,
			`DROP TRIGGER reaper_events_append_only ON reaper_events`,
			`DROP TABLE reaper_events`,
			`DELETE FROM reaper_runs`,
			`CREATE TABLE reaper_mine (x int)`,
		} {
			_, err := conn.Exec(ctx, stmt)
			require.Error(t, err, stmt)
		}
		var after int
		require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM reaper_events`).Scan(&after))
		require.Equal(t, events, after)
	})
}
