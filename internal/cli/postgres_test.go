package cli

import (
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tipreaper/tipreaper/internal/store/storetest"
)

// The same commands on the PostgreSQL store, reached through database.url
// as a user configures it, with a password that must never be printed.
func TestCommandsOnPostgres(t *testing.T) {
	dbURL := storetest.PostgresURL(t) // skips without a server, fails under CI
	const password = "pw-never-printed-0815"
	u, err := url.Parse(dbURL)
	require.NoError(t, err)
	if _, has := u.User.Password(); !has && u.User != nil {
		// The test server trusts local connections, so any password is accepted.
		u.User = url.UserPassword(u.User.Username(), password)
	}
	t.Setenv("REAPER_TEST_DATABASE_URL", u.String())

	sb := newSandbox(t, testSeed(time.Now(), false))
	path := writeConfig(t, sb, "database:\n  url: ${REAPER_TEST_DATABASE_URL}\n")

	var printed string
	run := func(args ...string) result {
		r := reaper(t, args...)
		printed += r.stdout + r.stderr
		return r
	}
	r := run("migrate", "--config", path)
	require.Equal(t, 0, r.code, r)
	require.Contains(t, r.stdout, "migrated (schema version")

	r = run("once", "--config", path)
	require.Equal(t, 0, r.code, r)
	left := present(sb.sim)
	require.False(t, left[idOld1])
	require.True(t, left[idGolden])

	r = run("keep", "add", idYoung, "--reason", "fixture", "--config", path)
	require.Equal(t, 0, r.code, r)
	r = run("why", idYoung, "--config", path)
	require.Equal(t, 0, r.code, r)
	require.Contains(t, r.stdout, "reaper_keep")

	require.NotContains(t, printed, password)
	require.NotContains(t, printed, testSecret)
}
