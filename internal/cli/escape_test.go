package cli

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/tipreaper/tipreaper/internal/pcsim"
)

func TestPrintable(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain text is kept", "ci-0a1b2c3d.onmicrosoft.com", "ci-0a1b2c3d.onmicrosoft.com"},
		{"letters of any script and spaces are kept", "Müller GmbH 東京 café\u00a0bar", "Müller GmbH 東京 café\u00a0bar"},
		{"ESC sequences are escaped", "a\x1b[2Jb\x1b]0;title\x07", `a\x1b[2Jb\x1b]0;title\a`},
		{"newline, carriage return and tab are escaped", "a\nb\rc\td", `a\nb\rc\td`},
		{"DEL and C1 controls are escaped", "a\x7fb\u009bc", `a\x7fb\u009bc`},
		{"bidi overrides and zero-width characters are escaped", "abc\u202edef\u200b", `abc\u202edef\u200b`},
		{"line and paragraph separators are escaped", "a\u2028b\u2029c", `a\u2028b\u2029c`},
		{"an invalid UTF-8 byte is escaped", "a\xffb", `a\xffb`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, printable(tt.in))
		})
	}
	require.Equal(t, `one line \x1b[2J`, oneLine("one\n  line\t\x1b[2J\n"), "oneLine folds white space, then escapes")
}

func TestEscapeJSONKeepsTheValue(t *testing.T) {
	in := map[string]string{"domain": "a\x1b[2J\nb\x7f\u009b\u202e\U0001F600\U000E0001c \"q\" \\"}
	b, err := json.Marshal(in)
	require.NoError(t, err)
	out := escapeJSON(b)
	requireNoControl(t, string(out))
	var back map[string]string
	require.NoError(t, json.Unmarshal(out, &back))
	require.Equal(t, in, back)
}

// requireNoControl fails when s holds a rune a terminal acts on: anything
// not graphic but the newlines that end lines.
func requireNoControl(t *testing.T, s string) {
	t.Helper()
	for i, r := range s {
		if r == '\n' {
			continue
		}
		if r == utf8.RuneError || !unicode.IsGraphic(r) {
			t.Fatalf("raw %U at byte %d of:\n%s", r, i, s)
		}
	}
	for _, l := range strings.Split(s, "\n") {
		require.False(t, strings.HasPrefix(strings.TrimSpace(l), "forged"), "a name started a line of its own: %q", l)
	}
}

// Names as a hostile Partner Center (or person) could write them.
const (
	hostileDomain  = "ci-\x1b[2J\x1b]0;pwned\x07\u202e.onmicrosoft.com\nforged row: deleted"
	hostileCompany = "Evil\x1b[31m\u009b\nforged company"
)

func TestNothingForgedOnTheScreen(t *testing.T) {
	now := time.Now()
	seed := []pcsim.SeedCustomer{{ID: idOld1, Domain: hostileDomain, CompanyName: hostileCompany, CreatedAt: now.Add(-10 * 24 * time.Hour),
		Orders: []pcsim.SeedOrder{{ID: "a0000000-0000-4000-8000-000000000001", Type: "software", Status: "completed",
			CreatedAt: now.Add(-10 * 24 * time.Hour)}}}}
	sb := newSandbox(t, seed)
	path := writeConfig(t, sb, "")
	text, err := os.ReadFile(path)
	require.NoError(t, err)
	// A selector loose enough to select the hostile domain.
	text = []byte(strings.Replace(string(text), `domain: '^ci-[0-9a-f]{8}\.onmicrosoft\.com$'`, `domain: '^ci-'`, 1))
	require.NoError(t, os.WriteFile(path, text, 0o600))

	t.Run("the plan table, progress and summary of a dry run", func(t *testing.T) {
		r := reaper(t, "once", "--dry-run", "--log-level", "debug", "--config", path)
		require.Equal(t, 0, r.code, r)
		requireNoControl(t, r.stdout)
		requireNoControl(t, r.stderr)
		// Partner Center lower-cases domains.
		require.Contains(t, r.stdout, `ci-\x1b[2j\x1b]0;pwned\a\u202e.onmicrosoft.com\nforged row: deleted`)
	})

	t.Run("--json escapes as JSON does, and more, and keeps the value", func(t *testing.T) {
		r := reaper(t, "once", "--dry-run", "--json", "--config", path)
		require.Equal(t, 0, r.code, r)
		requireNoControl(t, r.stdout)
		require.Contains(t, r.stdout, `\u001b[2j`)
		require.Contains(t, r.stdout, `\u202e`)
		var rep struct {
			Items []struct{ Domain string }
		}
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep))
		require.NotEmpty(t, rep.Items)
		require.Equal(t, strings.ToLower(hostileDomain), rep.Items[0].Domain)
	})

	t.Run("why", func(t *testing.T) {
		r := reaper(t, "why", idOld1, "--config", path)
		require.Equal(t, 0, r.code, r)
		requireNoControl(t, r.stdout)
		require.Contains(t, r.stdout, `Evil\x1b[31m\u009b\nforged company`)
	})

	t.Run("keep list with a hostile reason and --by", func(t *testing.T) {
		r := reaper(t, "keep", "add", idOld2, "--reason", "r\x1b[2J\nforged reason", "--by", "\x1b[31m\nforged by", "--config", path)
		require.Equal(t, 0, r.code, r)
		requireNoControl(t, r.stdout)
		r = reaper(t, "keep", "list", "--config", path)
		require.Equal(t, 0, r.code, r)
		requireNoControl(t, r.stdout)
		require.Contains(t, r.stdout, `\x1b[31m\nforged by`)
	})

	t.Run("text logs", func(t *testing.T) {
		// A live pass logs at info what it does to the customer; slog's
		// TextHandler quotes the values.
		r := reaper(t, "once", "--log-level", "debug", "--config", path)
		requireNoControl(t, r.stdout)
		requireNoControl(t, r.stderr)
	})
}
