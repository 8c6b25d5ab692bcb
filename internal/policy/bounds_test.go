package policy

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// withPolicy is account plus one policy of the given body lines (indented
// four spaces); the body starts on line 9.
func withPolicy(body string) string {
	return account + "policies:\n  - name: p\n    account: a\n" + body
}

func TestDangerousConfigsAreRefusedWithTheirBound(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"a domain pattern that matches everything", withPolicy("    older_than: 72h\n    select: {domain: '.*'}\n"),
			`10: policies[0].select.domain: selects a customer with an empty domain: it would select (nearly) every customer of the account. Anchor the pattern`},
		{"a domain pattern that matches any one character", withPolicy("    older_than: 72h\n    select: {domain: '.'}\n"),
			`10: policies[0].select.domain: selects a customer with "unrelated.onmicrosoft.com" as its domain`},
		{"a domain pattern that is only an anchor", withPolicy("    older_than: 72h\n    select: {domain: '^'}\n"),
			`10: policies[0].select.domain: selects a customer with an empty domain`},
		{"a domain alternation with an empty branch", withPolicy("    older_than: 72h\n    select: {domain: 'ci-|'}\n"),
			`10: policies[0].select.domain: selects a customer with an empty domain`},
		{"an unanchored domain pattern that matches the probe", withPolicy("    older_than: 72h\n    select: {domain: 'onmicrosoft'}\n"),
			`10: policies[0].select.domain: selects a customer with "unrelated.onmicrosoft.com" as its domain`},
		{"a company pattern that matches everything", withPolicy("    older_than: 72h\n    select: {company_name: '(?i)ltd|'}\n"),
			`10: policies[0].select.company_name: selects a customer with an empty company name`},
		{"a company pattern that matches the probe", withPolicy("    older_than: 72h\n    select: {company_name: 'Ltd'}\n"),
			`10: policies[0].select.company_name: selects a customer with "Contoso Ltd" as its company name`},
		{"both patterns matching everything", withPolicy("    older_than: 72h\n    select: {domain: '.*', company_name: '.*'}\n"),
			`10: policies[0].select: selects a customer with an empty domain and an empty company name`},
		{"older_than missing", withPolicy("    select: {domain: '^ci-'}\n"),
			"7: policies[0].older_than: is required: how old a selected customer must be before it expires, e.g. 72h or 7d (write 0s for no age requirement)"},
		{"older_than empty", withPolicy("    older_than: ''\n    select: {domain: '^ci-'}\n"),
			"9: policies[0].older_than: is empty; it is required"},
		{"older_than null", withPolicy("    older_than: ~\n    select: {domain: '^ci-'}\n"),
			"9: policies[0].older_than: is empty; it is required"},
		{"older_than from an unset variable with an empty default", withPolicy("    older_than: ${AGE:-}\n    select: {domain: '^ci-'}\n"),
			"9: policies[0].older_than: is empty; it is required"},
		{"older_than from an unset variable", withPolicy("    older_than: ${AGE}\n    select: {domain: '^ci-'}\n"),
			"9: policies[0].older_than: environment variable AGE is not set"},
		{"older_than a bare zero", withPolicy("    older_than: 0\n    select: {domain: '^ci-'}\n"),
			"9: policies[0].older_than: write 0s to mean no age requirement"},
		{"requests_per_minute above the documented limit", account + "limits:\n  requests_per_minute: 501\n",
			"7: limits.requests_per_minute: 501 is above 500, Partner Center's documented limit per partner tenant: Partner Center throttles above it; set limits.allow_above_documented_rate: true"},
		{"requests_per_minute far above even when allowed", account + "limits:\n  allow_above_documented_rate: true\n  requests_per_minute: 100000\n",
			"8: limits.requests_per_minute: 100000 is above the bound of 60000, even with allow_above_documented_rate"},
		{"allow_above_documented_rate false keeps the bound", account + "limits:\n  allow_above_documented_rate: false\n  requests_per_minute: 600\n",
			"8: limits.requests_per_minute: 600 is above 500"},
		{"poll_interval of a nanosecond", account + "limits:\n  poll_interval: 1ns\n",
			"7: limits.poll_interval: 1ns is below the bound of 100ms: polls more often than every 100ms only spend the account's request budget"},
		{"poll_interval of 99ms", account + "limits:\n  poll_interval: 99ms\n",
			"7: limits.poll_interval: 99ms is below the bound of 100ms"},
		{"poll_interval of an hour", account + "limits:\n  poll_interval: 1h\n  poll_max: 1h\n",
			"7: limits.poll_interval: 1h is above the bound of 10m"},
		{"poll_max of a day", account + "limits:\n  poll_max: 1d\n",
			"7: limits.poll_max: 1d is above the bound of 1h"},
		{"concurrency of a million", account + "limits:\n  concurrency: 1000000\n",
			"7: limits.concurrency: 1000000 is above the bound of 75: a Tip account holds at most 75 customers"},
		{"concurrency of 76", account + "limits:\n  concurrency: 76\n",
			"7: limits.concurrency: 76 is above the bound of 75"},
		{"max_deletes_per_pass above a sandbox", account + "limits:\n  max_deletes_per_pass: 500\n",
			"7: limits.max_deletes_per_pass: 500 is above the bound of 75: a Tip account holds at most 75 customers, so a larger cap caps nothing"},
		{"max_listed of a billion", account + "limits:\n  max_listed: 1000000000\n",
			"7: limits.max_listed: 1000000000 is above the bound of 100000"},
		{"cancel_timeout of a week", account + "limits:\n  cancel_timeout: 7d\n",
			"7: limits.cancel_timeout: 7d is above the bound of 1d"},
		{"max_retry_wait of a day", account + "limits:\n  max_retry_wait: 1d\n",
			"7: limits.max_retry_wait: 1d is above the bound of 1h: a longer Retry-After stalls the pass"},
		{"plan_max_age of a year", account + "limits:\n  plan_max_age: 52w\n",
			"7: limits.plan_max_age: 364d is above the bound of 30d"},
		{"drain_timeout of an hour", account + "limits:\n  drain_timeout: 1h\n",
			"7: limits.drain_timeout: 1h is above the bound of 10m"},
		{"a database url whose port is out of range", "database:\n  url: postgres://u:pw@db:99999/reaper\n" + account,
			"2: database.url: cannot be parsed as a PostgreSQL connection URL"},
		{"a database url with an unknown sslmode", "database:\n  url: postgres://u:pw@db/reaper?sslmode=sometimes\n" + account,
			"2: database.url: cannot be parsed as a PostgreSQL connection URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := problems(t, tt.src, nil)
			require.Len(t, ps, 1, "problems:\n%v", ps)
			got := fmt.Sprintf("%d: %s: %s", ps[0].Line, ps[0].Field, ps[0].Message)
			require.True(t, strings.HasPrefix(got, tt.want), "got  %q\nwant %q...", got, tt.want)
			require.NotContains(t, got, "pw")
		})
	}
}

// acceptedAtBounds are valid configs at the edges of the refusals; the
// schema test validates them against the schema too.
var acceptedAtBounds = []struct{ name, src string }{
	{"an anchored domain pattern", withPolicy("    older_than: 72h\n    select: {domain: '^ci-'}\n")},
	{"a pattern that matches everything, capped by max_selected_fraction",
		withPolicy("    older_than: 72h\n    max_selected_fraction: 0.5\n    select: {domain: '.*'}\n")},
	{"a vacuous domain pattern narrowed by the company name",
		withPolicy("    older_than: 72h\n    select: {domain: '.*', company_name: '^CI '}\n")},
	{"a vacuous pattern narrowed by customer ids",
		withPolicy("    older_than: 72h\n    select: {domain: '.*', customer_ids: [" + ciID + "]}\n")},
	{"no age requirement said as 0s", withPolicy("    older_than: 0s\n    select: {domain: '^ci-'}\n")},
	{"no age requirement from a variable", withPolicy("    older_than: ${AGE:-0s}\n    select: {domain: '^ci-'}\n")},
	{"every limit at its bound", account + `limits:
  concurrency: 75
  requests_per_minute: 500
  poll_interval: 100ms
  poll_max: 1h
  cancel_timeout: 1d
  max_deletes_per_pass: 75
  max_listed: 100000
  max_retry_wait: 1h
  plan_max_age: 30d
  drain_timeout: 10m
`},
	{"a rate above the documented limit when allowed", account + "limits:\n  requests_per_minute: 60000\n  allow_above_documented_rate: true\n"},
}

func TestConfigsAtTheBoundsAreAccepted(t *testing.T) {
	for _, tt := range acceptedAtBounds {
		t.Run(tt.name, func(t *testing.T) {
			parse(t, tt.src, nil)
		})
	}
}

func TestAStateDirThatIsAFileIsAConfigError(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "state", "x")
	ps := problems(t, "state_dir: "+file+"\n"+account, nil)
	require.Equal(t, fmt.Sprintf("reaper.yaml:1: state_dir: %q exists and is not a directory: the embedded SQLite file and its lock live in this directory", file), ps.Error())

	parse(t, "state_dir: "+dir+"\n"+account, nil)
	parse(t, "state_dir: "+filepath.Join(dir, "not-yet")+"\n"+account, nil)

	// The default state_dir is checked too, in the working directory.
	wd, err := os.Getwd()
	require.NoError(t, err)
	require.NoError(t, os.Chdir(dir))
	t.Cleanup(func() { require.NoError(t, os.Chdir(wd)) })
	writeFile(t, dir, "reaper-state", "x")
	ps = problems(t, account, nil)
	require.Equal(t, `reaper.yaml: state_dir: "./reaper-state" exists and is not a directory: the embedded SQLite file and its lock live in this directory`, ps.Error())
}
