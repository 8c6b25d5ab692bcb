package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestValidate(t *testing.T) {
	t.Run("a good config prints ok with its counts and exits 0", func(t *testing.T) {
		path := writeConfig(t, nil, "")
		r := reaper(t, "validate", "--config", path)
		require.Equal(t, 0, r.code, r)
		require.Equal(t, path+": ok (1 accounts, 1 policies)\n", r.stdout)
	})

	t.Run("a literal secret in a file others can read is a warning, not a failure", func(t *testing.T) {
		path := writeConfig(t, nil, "")
		data, err := os.ReadFile(path)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(path, []byte(strings.Replace(string(data), "${REAPER_TEST_SECRET}", testSecret, 1)), 0o600))
		require.NoError(t, os.Chmod(path, 0o644))
		r := reaper(t, "validate", "--config", path)
		require.Equal(t, 0, r.code, r)
		require.Regexp(t, `^warning: `+regexp.QuoteMeta(path)+`:7: accounts\[0\]\.client_secret: holds a secret as written and the file is readable by group or others \(mode 0644\)`, r.stderr)
		require.NotContains(t, r.stderr+r.stdout, testSecret)

		require.NoError(t, os.Chmod(path, 0o600))
		r = reaper(t, "validate", "--config", path)
		require.Equal(t, 0, r.code, r)
		require.Empty(t, r.stderr)
	})

	t.Run("a config that is a device, a state_dir that is a file and a database URL the driver cannot parse exit 2", func(t *testing.T) {
		r := reaper(t, "validate", "--config", "/dev/zero")
		require.Equal(t, 2, r.code, r)
		require.Equal(t, "/dev/zero: is a device, not a regular file\n", r.stderr)

		path := writeConfig(t, nil, "")
		stateFile := filepath.Join(t.TempDir(), "state")
		require.NoError(t, os.WriteFile(stateFile, nil, 0o600))
		data, err := os.ReadFile(path)
		require.NoError(t, err)
		text := regexp.MustCompile(`(?m)^state_dir: .*$`).ReplaceAllString(string(data), "state_dir: "+stateFile) +
			"database:\n  url: postgres://reaper:pw@db:99999/reaper\n"
		require.NoError(t, os.WriteFile(path, []byte(text), 0o600))
		r = reaper(t, "validate", "--config", path)
		require.Equal(t, 2, r.code, r)
		require.Contains(t, r.stderr, path+":2: state_dir: ")
		require.Contains(t, r.stderr, "database.url: cannot be parsed as a PostgreSQL connection URL")
		require.NotContains(t, r.stderr, "pw")
	})

	t.Run("every problem is printed as FILE:LINE and the exit code is 2", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "bad.yaml")
		require.NoError(t, os.WriteFile(path, []byte(strings.Join([]string{
			"accounts:",                         // 1
			"  - name: tip",                     // 2
			"    partner_tenant_id: not-a-guid", // 3
			"    client_id: " + testClientID,    // 4
			"    client_secret: x",              // 5
			"policies:",                         // 6
			"  - name: p",                       // 7
			"    account: tip",                  // 8
			"    select: {domain: '^ci-'}",      // 9
			"    older_than: 3 fortnights",      // 10
			"    colour: blue",                  // 11
		}, "\n")+"\n"), 0o600))
		// Relative, as typed: the messages must name the file the way the user did.
		t.Chdir(dir)
		r := reaper(t, "validate", "--config", "bad.yaml")
		require.Equal(t, 2, r.code, r)
		require.Empty(t, r.stdout)
		lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
		require.GreaterOrEqual(t, len(lines), 3, r)
		for _, l := range lines {
			require.Regexp(t, `^bad\.yaml:\d+: `, l)
		}
		require.Contains(t, r.stderr, "bad.yaml:3: ")
		require.Contains(t, r.stderr, "bad.yaml:10: ")
		require.Contains(t, r.stderr, "bad.yaml:11: ")
	})

	t.Run("a missing file is a config error, exit 2", func(t *testing.T) {
		r := reaper(t, "validate", "--config", filepath.Join(t.TempDir(), "nope.yaml"))
		require.Equal(t, 2, r.code, r)
		require.Contains(t, r.stderr, "nope.yaml")
	})

	t.Run("REAPER_CONFIG is the default config", func(t *testing.T) {
		path := writeConfig(t, nil, "")
		t.Setenv("REAPER_CONFIG", path)
		r := reaper(t, "validate")
		require.Equal(t, 0, r.code, r)
		require.Contains(t, r.stdout, path+": ok")
	})
}

func TestUsage(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string // substring
		stderr string // substring
	}{
		{"no command prints usage on stderr and exits 2", nil, 2, "", "usage: reaper"},
		{"an unknown command exits 2", []string{"frobnicate"}, 2, "", `unknown command "frobnicate"`},
		{"an unknown flag exits 2 with the command's usage", []string{"validate", "--colour"}, 2, "", "usage: reaper validate"},
		{"-h prints the command's usage on stdout and exits 0", []string{"once", "-h"}, 0, "--dry-run", ""},
		{"help prints the command list on stdout", []string{"help"}, 0, "unblock", ""},
		{"help <command> prints the command's usage on stdout", []string{"help", "keep"}, 0, "usage: reaper keep", ""},
		{"a mistyped command gets a did-you-mean", []string{"valdate"}, 2, "", "did you mean validate?"},
		{"a mistyped flag gets a did-you-mean", []string{"validate", "--confg", "x"}, 2, "", "did you mean --config?"},
		{"a mistyped flag of a subcommand gets a did-you-mean", []string{"keep", "add", idOld1, "--reasn", "x"}, 2, "", "did you mean --reason?"},
		{"keep with an unknown subcommand exits 2", []string{"keep", "frob"}, 2, "", `unknown subcommand "frob"`},
		{"a bad log level exits 2", []string{"once", "--log-level", "loud"}, 2, "", "unknown log level"},
		{"a missing positional exits 2", []string{"why"}, 2, "", "missing argument"},
		{"an extra positional exits 2", []string{"validate", "extra"}, 2, "", `unexpected argument "extra"`},
		{"a bad customer id exits 2", []string{"why", "contoso.onmicrosoft.com"}, 2, "", "is not a customer id"},
		{"a bad plan id exits 2", []string{"apply", "yesterday"}, 2, "", "is not a plan id"},
		{"keep without a subcommand exits 2", []string{"keep"}, 2, "", "usage: reaper keep"},
		{"keep add without a reason exits 2", []string{"keep", "add", idOld1}, 2, "", "--reason is required"},
		{"keep add with a bad date exits 2", []string{"keep", "add", idOld1, "--reason", "x", "--until", "31/01/2027"}, 2, "", "not a date"},
		{"a bad log format exits 2", []string{"run", "--log-format", "xml"}, 2, "", "unknown log format"},
		{"a bad latency range exits 2", []string{"sim", "--latency", "fast"}, 2, "", "usage: reaper sim"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := reaper(t, tt.args...)
			require.Equal(t, tt.code, r.code, r)
			require.Contains(t, r.stdout, tt.stdout)
			require.Contains(t, r.stderr, tt.stderr)
		})
	}
}

func TestEnvironmentSetsTheGlobalFlags(t *testing.T) {
	t.Run("REAPER_LOG_LEVEL and REAPER_LOG_FORMAT set the logger", func(t *testing.T) {
		path := writeConfig(t, nil, "")
		t.Setenv("REAPER_LOG_LEVEL", "debug")
		t.Setenv("REAPER_LOG_FORMAT", "json")
		// No simulator listens on the config's URL: the pass fails and logs why, at debug, as JSON.
		r := reaper(t, "once", "--dry-run", "--config", path)
		require.Equal(t, 1, r.code, r)
		require.Contains(t, r.stderr, `"level":"DEBUG"`)
	})

	t.Run("a flag on the command line wins over its variable", func(t *testing.T) {
		path := writeConfig(t, nil, "")
		t.Setenv("REAPER_CONFIG", filepath.Join(t.TempDir(), "nope.yaml"))
		t.Setenv("REAPER_LOG_LEVEL", "loud")
		r := reaper(t, "validate", "--config", path, "--log-level", "info")
		require.Equal(t, 0, r.code, r)
	})

	t.Run("a bad value in a variable is a usage error naming it", func(t *testing.T) {
		path := writeConfig(t, nil, "")
		t.Setenv("REAPER_LOG_FORMAT", "xml")
		r := reaper(t, "validate", "--config", path)
		require.Equal(t, 2, r.code, r)
		require.Contains(t, r.stderr, `$REAPER_LOG_FORMAT: unknown log format "xml"`)
	})
}

func TestCompletion(t *testing.T) {
	tests := []struct {
		shell string
		want  string // substring of the script
	}{
		{"bash", "__start_reaper"},
		{"zsh", "#compdef reaper"},
		{"fish", "complete -c reaper"},
	}
	for _, tt := range tests {
		t.Run(tt.shell, func(t *testing.T) {
			r := reaper(t, "completion", tt.shell)
			require.Equal(t, 0, r.code, r)
			require.Contains(t, r.stdout, tt.want)
		})
	}

	t.Run("an unknown shell exits 2", func(t *testing.T) {
		r := reaper(t, "completion", "tcsh")
		require.Equal(t, 2, r.code, r)
	})

	t.Run("the scripts complete from the same command tree", func(t *testing.T) {
		r := reaper(t, "__complete", "keep", "a")
		require.Equal(t, 0, r.code, r)
		require.Contains(t, r.stdout, "add\t")
		r = reaper(t, "__complete", "once", "--dr")
		require.Equal(t, 0, r.code, r)
		require.Contains(t, r.stdout, "--dry-run")
	})
}

func TestFlagsAndPositionalsInAnyOrder(t *testing.T) {
	path := writeConfig(t, nil, "")
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string // substring
	}{
		{"a flag after the positional, with its value", []string{"keep", "add", idOld1, "--reason", "x y", "--config", path}, 0, ""},
		{"flags before the positional", []string{"keep", "add", "--config", path, "--reason", "x", idOld1}, 0, ""},
		{"flag=value is one argument", []string{"keep", "add", idOld1, "--reason=x", "--config=" + path}, 0, ""},
		{"a global flag before the command", []string{"--config", path, "keep", "add", idOld1, "--reason", "x"}, 0, ""},
		{"a global flag between command and subcommand", []string{"keep", "--config", path, "add", idOld1, "--reason", "x"}, 0, ""},
		{"after -- everything is positional", []string{"keep", "add", "--config", path, "--reason", "x", "--", "--reason"}, 2, "is not a customer id"},
		{"an unknown flag after the positional is refused", []string{"why", idOld1, "--nope"}, 2, "unknown flag: --nope"},
		{"a boolean flag takes no value", []string{"apply", "--json", "x", "--config", path}, 2, `"x" is not a plan id`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := reaper(t, tt.args...)
			require.Equal(t, tt.code, r.code, r)
			require.Contains(t, r.stderr, tt.stderr)
		})
	}
}

func TestKeepRoundTrip(t *testing.T) {
	path := writeConfig(t, nil, "")
	t.Setenv("USER", "alice")

	r := reaper(t, "keep", "add", idOld1, "--reason", "golden tenant for the smoke tests", "--config", path)
	require.Equal(t, 0, r.code, r)
	// Flags before the positional work the same.
	r = reaper(t, "keep", "add", "--config", path, "--reason", "demo next week", "--until", "2099-01-31", "--by", "bob",
		strings.ToUpper(idOld2))
	require.Equal(t, 0, r.code, r)
	require.Contains(t, r.stdout, "through 2099-01-31")

	r = reaper(t, "keep", "list", "--config", path)
	require.Equal(t, 0, r.code, r)
	require.Regexp(t, regexp.MustCompile(idOld1+`\s+-\s+alice\s+\S+\s+golden tenant for the smoke tests`), r.stdout)
	// The id was normalised to lower case, so it matches what Partner Center lists.
	require.Regexp(t, regexp.MustCompile(idOld2+`\s+2099-01-31\s+bob\s+\S+\s+demo next week`), r.stdout)

	r = reaper(t, "keep", "rm", idOld1, "--config", path)
	require.Equal(t, 0, r.code, r)
	r = reaper(t, "keep", "rm", idOld1, "--config", path)
	require.Equal(t, 1, r.code, "removing a keep twice says there was none: %s", r)
	require.Contains(t, r.stderr, "no keep for")

	r = reaper(t, "keep", "list", "--config", path)
	require.Equal(t, 0, r.code, r)
	require.NotContains(t, r.stdout, idOld1)
	require.Contains(t, r.stdout, idOld2)

	r = reaper(t, "keep", "add", idOld1, "--reason", "x", "--until", "2001-01-01", "--config", path)
	require.Equal(t, 2, r.code, "a keep that already lapsed is refused: %s", r)
}
