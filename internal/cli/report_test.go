package cli

import (
	"encoding/csv"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tipreaper/tipreaper/internal/policy"
	"github.com/tipreaper/tipreaper/internal/store"
	"github.com/tipreaper/tipreaper/internal/store/storetest"
)

// The report commands against a known audit: one live pass over the test sandbox, in which idOld1 and
// idOld2 are deleted and idAncient is blocked, on both stores.
func TestReports(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			extra := ""
			if backend == "postgres" {
				t.Setenv("REAPER_TEST_DATABASE_URL", storetest.PostgresURL(t))
				extra = "database:\n  url: ${REAPER_TEST_DATABASE_URL}\n"
			}
			sb := newSandbox(t, testSeed(time.Now(), true))
			path := writeConfig(t, sb, extra)
			r := reaper(t, "once", "--config", path)
			require.Equal(t, 1, r.code, "the blocked customer makes the pass exit 1: %s", r)

			report := func(args ...string) result {
				t.Helper()
				r := reaper(t, append(append([]string{"report"}, args...), "--config", path)...)
				require.Equal(t, 0, r.code, r)
				return r
			}
			jsonRows := func(args ...string) []map[string]any {
				t.Helper()
				var rows []map[string]any
				out := report(append(args, "--json")...).stdout
				require.NoError(t, json.Unmarshal([]byte(out), &rows), out)
				require.NotNil(t, rows, "an empty report is [], not null")
				return rows
			}
			ids := func(rows []map[string]any) []string {
				var out []string
				for _, row := range rows {
					out = append(out, row["customer_id"].(string))
				}
				slices.Sort(out)
				return out
			}

			t.Run("deletions lists exactly the deleted customers", func(t *testing.T) {
				table := report("deletions").stdout
				require.Regexp(t, regexp.MustCompile(`(?m)^AT\s+ACCOUNT\s+CUSTOMER_ID\s+DOMAIN`), table)
				require.Contains(t, table, idOld1)
				require.Contains(t, table, idOld2)
				for _, id := range []string{idYoung, idGolden, idOutside, idAncient} {
					require.NotContains(t, table, id)
				}
				rows := jsonRows("deletions", "--since", "7d")
				require.Equal(t, []string{idOld1, idOld2}, ids(rows))
				for _, row := range rows {
					require.Equal(t, "ok", row["outcome"])
					require.Equal(t, "tip", row["account"])
					require.NotEmpty(t, row["ms_request_id"])
					_, err := time.Parse(time.RFC3339, row["at"].(string))
					require.NoError(t, err)
				}
				require.Empty(t, jsonRows("deletions", "--account", "elsewhere"))
			})
			t.Run("deletions as CSV has a header and a record per deletion", func(t *testing.T) {
				recs, err := csv.NewReader(strings.NewReader(report("deletions", "--csv").stdout)).ReadAll()
				require.NoError(t, err)
				require.Len(t, recs, 3)
				require.Equal(t, []string{"at", "account", "customer_id"}, recs[0][:3])
				got := []string{recs[1][2], recs[2][2]}
				slices.Sort(got)
				require.Equal(t, []string{idOld1, idOld2}, got)
			})
			t.Run("blocked lists the customer that waits for a person, with the reason", func(t *testing.T) {
				rows := jsonRows("blocked")
				require.Equal(t, []string{idAncient}, ids(rows))
				require.NotEmpty(t, rows[0]["reason"])
				require.Contains(t, report("blocked").stdout, idAncient)
			})
			t.Run("runs lists the pass with its counts", func(t *testing.T) {
				rows := jsonRows("runs")
				require.Len(t, rows, 1)
				require.Equal(t, "live", rows[0]["mode"])
				require.EqualValues(t, 2, rows[0]["deleted"])
				require.EqualValues(t, 1, rows[0]["blocked"])
				require.NotContains(t, rows[0], "policy", "NULL is left out, not null or \"\"")
				require.Contains(t, report("runs", "--since", "0").stdout, rows[0]["run_id"])
			})
			t.Run("customer shows its whole history in order", func(t *testing.T) {
				rows := jsonRows("customer", idOld1)
				var actions []string
				for _, row := range rows {
					actions = append(actions, row["action"].(string)+"/"+row["outcome"].(string))
				}
				require.Equal(t, "plan/ok", actions[0])
				require.Equal(t, "delete/ok", actions[len(actions)-1])
				require.Contains(t, actions, "cancel_order/intent")
				require.Equal(t, "[]\n", report("customer", idOutside, "--json").stdout, "a customer no policy selected has no events")
			})
			t.Run("since bounds runs and deletions by time", func(t *testing.T) {
				cfg, err := policy.Load(path)
				require.NoError(t, err)
				st, err := store.Open(t.Context(), cfg.Database.URL.Reveal(), cfg.StateDir)
				require.NoError(t, err)
				defer st.Close()
				r := st.(reporter)
				for _, c := range []struct {
					report string
					since  time.Time
					rows   int
				}{
					{store.ReportDeletions, time.Now().Add(-time.Hour), 2},
					{store.ReportDeletions, time.Now().Add(time.Hour), 0},
					{store.ReportRuns, time.Now().Add(-time.Hour), 1},
					{store.ReportRuns, time.Now().Add(time.Hour), 0},
				} {
					tbl, err := r.Report(t.Context(), store.ReportQuery{Report: c.report, Since: c.since})
					require.NoError(t, err)
					require.Len(t, tbl.Rows, c.rows, "%s since %s", c.report, c.since)
				}
			})
		})
	}
}

func TestReportUsageErrors(t *testing.T) {
	path := writeConfig(t, nil, "")
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"an unknown report", []string{"report", "everything"}, "unknown report"},
		{"no report", []string{"report"}, "usage"},
		{"--json with --csv", []string{"report", "runs", "--json", "--csv"}, "exclude each other"},
		{"a bad --since", []string{"report", "deletions", "--since", "soon"}, "--since"},
		{"a customer id that is not one", []string{"report", "customer", "ci-0a1b2c3d.onmicrosoft.com"}, "not a customer id"},
		{"a customer report without the id", []string{"report", "customer"}, "missing argument"},
		{"--since where there is no time to bound", []string{"report", "blocked", "--since", "7d"}, "unknown flag"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := reaper(t, append(c.args, "--config", path)...)
			require.Equal(t, exitUsage, r.code, r)
			require.Contains(t, r.stderr, c.want)
		})
	}
}
