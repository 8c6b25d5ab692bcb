package migrations_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/tipreaper/tipreaper/internal/store"
	"github.com/tipreaper/tipreaper/internal/store/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The audit trail is append-only in both stores (migration 0003): whoever asks, UPDATE and DELETE of
// reaper_events fail, and the rows stay as written.
func TestEventsAreAppendOnly(t *testing.T) {
	const row = `INSERT INTO reaper_events (at, action, outcome, detail) VALUES ('2026-03-01T12:00:00.000000Z', 'guard', 'ok', 'as written')`
	refused := []struct{ name, stmt string }{
		{"an UPDATE of a row", `UPDATE reaper_events SET detail = 'rewritten'`},
		{"an UPDATE that matches no row", `UPDATE reaper_events SET detail = 'rewritten' WHERE id < 0`},
		{"a DELETE of a row", `DELETE FROM reaper_events`},
	}

	t.Run("on PostgreSQL, for the table's owner too", func(t *testing.T) {
		ctx := t.Context()
		url := storetest.PostgresURL(t)
		migrate(t, url, "")
		conn, err := pgx.Connect(ctx, url)
		require.NoError(t, err)
		defer conn.Close(context.Background())
		_, err = conn.Exec(ctx, row)
		require.NoError(t, err)
		for _, c := range append(refused, struct{ name, stmt string }{"a TRUNCATE", `TRUNCATE reaper_events`}) {
			_, err := conn.Exec(ctx, c.stmt)
			require.ErrorContains(t, err, "reaper_events is append-only", c.name)
		}
		var detail string
		require.NoError(t, conn.QueryRow(ctx, `SELECT detail FROM reaper_events`).Scan(&detail))
		require.Equal(t, "as written", detail)
	})

	t.Run("on SQLite", func(t *testing.T) {
		dir := t.TempDir()
		migrate(t, "", dir)
		db, err := sql.Open("sqlite", filepath.Join(dir, "reaper.db"))
		require.NoError(t, err)
		defer db.Close()
		_, err = db.ExecContext(t.Context(), row)
		require.NoError(t, err)
		for _, c := range refused[:1] {
			_, err := db.ExecContext(t.Context(), c.stmt)
			require.ErrorContains(t, err, "reaper_events is append-only", c.name)
		}
		_, err = db.ExecContext(t.Context(), refused[2].stmt)
		require.ErrorContains(t, err, "reaper_events is append-only")
		var detail string
		require.NoError(t, db.QueryRowContext(t.Context(), `SELECT detail FROM reaper_events`).Scan(&detail))
		require.Equal(t, "as written", detail)
	})
}

// migrate brings a store's schema up to date and closes the store again.
func migrate(t *testing.T, url, dir string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	s, err := store.Open(ctx, url, dir)
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.Migrate(ctx))
}
