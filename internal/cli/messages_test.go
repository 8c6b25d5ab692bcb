package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// requireNoDoubledPrefix fails when a line repeats a prefix, as in
// "list customers: list customers: …": every line is cut at ": " and no
// two neighbouring parts may be equal.
func requireNoDoubledPrefix(t *testing.T, out string) {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		parts := strings.Split(l, ": ")
		for i := 1; i < len(parts)-1; i++ {
			require.NotEqual(t, strings.TrimSpace(parts[i-1]), strings.TrimSpace(parts[i]), "doubled prefix in %q", l)
		}
	}
}

func TestMessages(t *testing.T) {
	t.Run("an account whose listing fails: one prefix, no plan, and it says so", func(t *testing.T) {
		path := writeConfig(t, nil, "") // nothing listens on its Partner Center URL
		r := reaper(t, "once", "--dry-run", "--config", path)
		require.Equal(t, 1, r.code, r)
		requireNoDoubledPrefix(t, r.stdout+r.stderr)
		require.Contains(t, r.stdout, "account tip stopped before any change: list customers: ")
		require.Contains(t, r.stdout, "no plan for account tip")
		require.Contains(t, r.stdout, "no plan saved: every account stopped")
		require.NotContains(t, r.stdout, "reaper apply")
	})

	t.Run("a dry run that selects nothing saves no plan and says so", func(t *testing.T) {
		now := time.Now()
		var seed = testSeed(now, false)[2:3] // only the young one
		sb := newSandbox(t, seed)
		path := writeConfig(t, sb, "")
		r := reaper(t, "once", "--dry-run", "--config", path)
		require.Equal(t, 0, r.code, r)
		require.Contains(t, r.stdout, "no plan saved: no customer would be deleted or marked")
		require.NotContains(t, r.stdout, "reaper apply")
	})

	t.Run("apply of a plan already carried out says there is nothing left to do, exit 0", func(t *testing.T) {
		sb := newSandbox(t, testSeed(time.Now(), false))
		path := writeConfig(t, sb, "")
		r := reaper(t, "once", "--dry-run", "--config", path)
		require.Equal(t, 0, r.code, r)
		require.Contains(t, r.stdout, "(2 customers)")
		planID := regexp.MustCompile(`reaper apply ([0-9a-f-]{36})`).FindStringSubmatch(r.stdout)
		require.NotNil(t, planID, r)
		r = reaper(t, "apply", planID[1], "--config", path)
		require.Equal(t, 0, r.code, r)
		require.NotContains(t, r.stdout, "nothing left to do")

		r = reaper(t, "apply", planID[1], "--config", path)
		require.Equal(t, 0, r.code, r)
		require.Contains(t, r.stdout, "nothing left to do")
	})

	t.Run("an unknown plan id is a usage error", func(t *testing.T) {
		path := writeConfig(t, nil, "")
		r := reaper(t, "apply", "01a23d90-cc16-7a5b-afb9-89b1d7a709d6", "--config", path)
		require.Equal(t, 2, r.code, r)
		require.Contains(t, r.stderr, "reaper apply: no plan 01a23d90-cc16-7a5b-afb9-89b1d7a709d6 in sqlite in ")
		requireNoDoubledPrefix(t, r.stderr)
	})

	t.Run("a keep until the end of time is refused in words, not with a constraint error", func(t *testing.T) {
		path := writeConfig(t, nil, "")
		r := reaper(t, "keep", "add", idOld1, "--reason", "x", "--until", "9999-12-31", "--config", path)
		require.Equal(t, 2, r.code, r)
		require.Contains(t, r.stderr, "leave --until out for a keep without end")
		require.NotContains(t, strings.ToLower(r.stderr), "constraint")
		r = reaper(t, "keep", "add", idOld1, "--reason", "x", "--until", "9998-12-31", "--config", path)
		require.Equal(t, 0, r.code, r)
	})

	t.Run("a database URL that cannot be parsed is a config error, exit 2", func(t *testing.T) {
		path := writeConfig(t, nil, "database:\n  url: 'postgres://x:y@[::1'\n")
		for _, cmd := range [][]string{{"validate"}, {"once", "--dry-run"}, {"keep", "list"}} {
			r := reaper(t, append(cmd, "--config", path)...)
			require.Equal(t, 2, r.code, "%v: %s", cmd, r)
			require.Contains(t, r.stderr, "database.url")
		}
	})

	t.Run("a state_dir that is a file is a config error, exit 2", func(t *testing.T) {
		path := writeConfig(t, nil, "")
		text, err := os.ReadFile(path)
		require.NoError(t, err)
		file := filepath.Join(t.TempDir(), "a-file")
		require.NoError(t, os.WriteFile(file, nil, 0o600))
		text = regexp.MustCompile(`(?m)^state_dir: .*$`).ReplaceAll(text, []byte("state_dir: "+file))
		require.NoError(t, os.WriteFile(path, text, 0o600))
		for _, cmd := range [][]string{{"validate"}, {"once", "--dry-run"}, {"keep", "list"}} {
			r := reaper(t, append(cmd, "--config", path)...)
			require.Equal(t, 2, r.code, "%v: %s", cmd, r)
			require.Contains(t, r.stderr, "state_dir")
		}
	})

	t.Run("a store that cannot be opened is named once", func(t *testing.T) {
		path := writeConfig(t, nil, "database:\n  url: postgres://reaper@127.0.0.1:1/reaper?connect_timeout=5\n")
		r := reaper(t, "keep", "list", "--config", path)
		require.Equal(t, 1, r.code, r)
		require.Contains(t, r.stderr, "open store postgres://")
		require.Equal(t, 1, strings.Count(r.stderr, "open store"), r)
		requireNoDoubledPrefix(t, r.stderr)
	})
}
