package cli

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files of the --json contract")

// volatileKeys are the fields whose values change from run to run: ids,
// times and measured durations. normalise replaces their values with their
// JSON type, so the golden files pin every key and every stable value.
var volatileKeys = map[string]bool{
	"run_id": true, "plan_id": true, "id": true, "started_at": true, "finished_at": true, "duration_seconds": true,
	"age_seconds": true, "at": true, "added_at": true, "state_at": true, "first_seen": true, "last_seen": true,
	"delete_at": true, "marked_at": true, "delete_after": true, "deleted_at": true, "ms_request_id": true,
	"ms_correlation_id": true, "until": true,
}

var (
	rfc3339    = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$`)
	timeInText = regexp.MustCompile(`\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z`)
)

func normalise(t *testing.T, v any) any {
	t.Helper()
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			if s, ok := val.(string); ok && (k == "at" || k[max(0, len(k)-3):] == "_at" || k == "first_seen" || k == "last_seen" || k == "until" || k == "delete_after") {
				require.Regexp(t, rfc3339, s, "%s is an RFC 3339 UTC time", k)
				require.NotEqual(t, "0001-01-01T00:00:00Z", s, "%s: a zero time is left out, not written", k)
			}
			if volatileKeys[k] {
				switch val.(type) {
				case string:
					x[k] = "<string>"
				case float64:
					x[k] = "<number>"
				}
				continue
			}
			x[k] = normalise(t, val)
		}
		return x
	case string:
		// Sentences for people (age_source, next_pass) may name a time.
		return timeInText.ReplaceAllString(x, "<time>")
	case []any:
		for i := range x {
			x[i] = normalise(t, x[i])
		}
		sort.SliceStable(x, func(i, j int) bool {
			a, _ := x[i].(map[string]any)
			b, _ := x[j].(map[string]any)
			ka, _ := a["customer_id"].(string)
			kb, _ := b["customer_id"].(string)
			return ka < kb
		})
		return x
	}
	return v
}

// requireGolden compares the --json output with testdata/json/NAME.json
// after normalising the volatile fields; -update rewrites the file.
func requireGolden(t *testing.T, name, out string, trim ...func(any)) {
	t.Helper()
	var v any
	require.NoError(t, json.Unmarshal([]byte(out), &v), "stdout is one JSON document: %s", out)
	for _, f := range trim {
		f(v)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	require.NoError(t, enc.Encode(normalise(t, v)))
	got := buf.Bytes()
	path := filepath.Join("testdata", "json", name+".json")
	if *updateGolden {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -run TestJSONContract -update to create it")
	require.Equal(t, string(want), string(got), "the --json contract changed: if on purpose, document it in README and run -update")
}

func TestJSONContract(t *testing.T) {
	sb := newSandbox(t, testSeed(time.Now(), false))
	path := writeConfig(t, sb, "")
	t.Setenv("USER", "alice")

	r := reaper(t, "keep", "add", idOutside, "--reason", "prod tenant", "--until", "2099-01-31", "--config", path)
	require.Equal(t, 0, r.code, r)
	r = reaper(t, "keep", "add", idYoung, "--reason", "demo", "--config", path)
	require.Equal(t, 0, r.code, r)

	r = reaper(t, "once", "--dry-run", "--json", "--config", path)
	require.Equal(t, 0, r.code, r)
	requireGolden(t, "once_dry_run", r.stdout)
	var dry struct {
		PlanID string `json:"plan_id"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &dry))
	require.NotEmpty(t, dry.PlanID)

	r = reaper(t, "apply", dry.PlanID, "--json", "--config", path)
	require.Equal(t, 0, r.code, r)
	requireGolden(t, "apply", r.stdout)

	r = reaper(t, "why", idOld1, "--json", "--config", path)
	require.Equal(t, 0, r.code, r)
	// How many polls a deletion took varies: pin the last two events (the
	// DELETE's intent and its result), which every deletion ends with.
	requireGolden(t, "why_deleted", r.stdout, func(v any) {
		m := v.(map[string]any)
		evs := m["recent_events"].([]any)
		require.GreaterOrEqual(t, len(evs), 2)
		m["recent_events"] = evs[len(evs)-2:]
	})

	r = reaper(t, "why", idGolden, "--json", "--config", path)
	require.Equal(t, 0, r.code, r)
	requireGolden(t, "why_protected", r.stdout)

	r = reaper(t, "keep", "list", "--json", "--config", path)
	require.Equal(t, 0, r.code, r)
	requireGolden(t, "keep_list", r.stdout)
}
