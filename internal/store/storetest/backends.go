package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tipreaper/tipreaper/internal/store"
)

// DefaultDatabaseURL is the server tests use when TEST_DATABASE_URL is not set.
const DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// databases maps a test to its database (a Postgres url with search_path, or a state dir), so that a
// second open in the same test reaches the same data.
var databases sync.Map // testing.TB → string

// Postgres opens a migrated Store on a schema of the test's own in TEST_DATABASE_URL (default
// DefaultDatabaseURL); the schema is dropped and the Store closed when the test ends. Another call in the
// same test opens another Store (another instance) on the same schema. When the server cannot be
// reached the test is skipped, or fails if the environment variable CI is set.
func Postgres(tb testing.TB) store.Store {
	tb.Helper()
	return open(tb, PostgresURL(tb), "")
}

// PostgresURL returns the url of the test's own schema in TEST_DATABASE_URL (creating it empty, to be
// dropped when the test ends, on the first call), for tests that open or migrate a store themselves,
// e.g. through a configuration file. It skips or fails the test as Postgres does.
func PostgresURL(tb testing.TB) string {
	tb.Helper()
	if u, ok := databases.Load(tb); ok {
		return u.(string)
	}
	return newSchema(tb)
}

// SQLite opens a migrated Store on a state dir of the test's own (tb.TempDir()); the Store is closed when
// the test ends. Another call in the same test opens another Store (another instance) on the same state
// dir, as another process would.
func SQLite(tb testing.TB) store.Store {
	tb.Helper()
	dir, ok := databases.Load(tb)
	if !ok {
		dir = tb.TempDir()
		databases.Store(tb, dir)
		tb.Cleanup(func() { databases.Delete(tb) })
	}
	return open(tb, "", dir.(string))
}

func open(tb testing.TB, dbURL, dir string) store.Store {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := store.Open(ctx, dbURL, dir)
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("close store: %v", err)
		}
	})
	if err := s.Migrate(ctx); err != nil {
		tb.Fatalf("migrate store: %v", err)
	}
	return s
}

// DatabaseURL returns TEST_DATABASE_URL, or DefaultDatabaseURL.
func DatabaseURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultDatabaseURL
}

// newSchema creates an empty schema for tb and returns a url whose connections use it.
func newSchema(tb testing.TB) string {
	tb.Helper()
	base := DatabaseURL()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("postgres at TEST_DATABASE_URL unreachable (CI is set, so this fails): %v", err)
		}
		tb.Skipf("postgres at TEST_DATABASE_URL unreachable: %v", err)
	}
	defer conn.Close(ctx)

	var b [8]byte
	_, _ = rand.Read(b[:])
	schema := "tipreaper_test_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, `CREATE SCHEMA `+schema); err != nil {
		tb.Fatalf("create schema %s: %v", schema, err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
	})

	u, err := url.Parse(base)
	if err != nil {
		tb.Fatalf("TEST_DATABASE_URL is not a url: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema) // pgx sends unknown parameters as run-time settings of each session
	u.RawQuery = q.Encode()
	databases.Store(tb, u.String())
	tb.Cleanup(func() { databases.Delete(tb) })
	return u.String()
}
