package policy

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// env returns a lookupEnv over a fixed map, so tests never touch the process environment.
func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	}
}

// problems parses src and returns its Problems, failing if it parsed cleanly.
func problems(t *testing.T, src string, vars map[string]string) Problems {
	t.Helper()
	cfg, err := Parse("reaper.yaml", []byte(src), env(vars))
	require.Error(t, err)
	require.Nil(t, cfg)
	var ps Problems
	require.True(t, errors.As(err, &ps), "error is %T, want Problems", err)
	return ps
}

func parse(t *testing.T, src string, vars map[string]string) *Config {
	t.Helper()
	cfg, err := Parse("reaper.yaml", []byte(src), env(vars))
	require.NoError(t, err)
	return cfg
}

// account is a valid accounts: block; its first line is line 2 of a file that starts with it.
const account = `accounts:
  - name: a
    partner_tenant_id: 11111111-1111-1111-1111-111111111111
    client_id: 22222222-2222-2222-2222-222222222222
    client_secret: s
`

func TestParseAcceptsAMinimalConfigAndFillsDefaults(t *testing.T) {
	cfg := parse(t, account, nil)
	require.Equal(t, "", cfg.Schedule)
	require.Equal(t, "./reaper-state", cfg.StateDir)
	require.Equal(t, Secret(""), cfg.Database.URL)
	require.Equal(t, defaultLimits(), cfg.Limits)
	require.Equal(t, Limits{
		Concurrency: 8, RequestsPerMinute: 450,
		PollInterval: Duration(500 * time.Millisecond), PollMax: Duration(time.Minute),
		CancelTimeout: Duration(30 * time.Minute), MaxDeletesPerPass: 50,
		PlanMaxAge: Duration(24 * time.Hour), DrainTimeout: Duration(30 * time.Second),
		MaxRetryWait: Duration(2 * time.Minute), MaxListed: 1000, AllowAboveDocumentedRate: false,
	}, cfg.Limits)
	require.Equal(t, HTTP{}, cfg.HTTP)
	require.Equal(t, Notify{QuotaWarn: 0.9}, cfg.Notify)
	require.Equal(t, Secret(""), cfg.TokenKey)
	require.Equal(t, []Account{{
		Name: "a", Cloud: "public",
		PartnerTenantID: "11111111-1111-1111-1111-111111111111",
		ClientID:        "22222222-2222-2222-2222-222222222222",
		Credential:      CredentialSecret, ClientSecret: "s", ActivityLog: true, Line: 2,
	}}, cfg.Accounts)
	require.Empty(t, cfg.Policies)
}

func TestTheExampleConfigParsesCleanly(t *testing.T) {
	data, err := os.ReadFile("../../config.example.yaml")
	require.NoError(t, err)
	cfg, err := Parse("config.example.yaml", data, env(map[string]string{"PC_CLIENT_SECRET": "from-env"}))
	require.NoError(t, err)
	require.NoError(t, cfg.ValidateSchedule())
	require.Equal(t, Secret("from-env"), cfg.Accounts[0].ClientSecret)
	require.Equal(t, CredentialSecret, cfg.Accounts[0].Credential)
	require.Equal(t, "127.0.0.1:9464", cfg.HTTP.Listen)
	require.Equal(t, Notify{QuotaWarn: 0.9}, cfg.Notify)
	require.Equal(t, defaultLimits(), cfg.Limits)
	require.Len(t, cfg.Policies, 1)
	p := cfg.Policies[0]
	require.Equal(t, "contoso-tip", p.Account)
	require.Equal(t, Duration(72*time.Hour), p.OlderThan)
	require.Equal(t, Duration(24*time.Hour), p.Grace)
	require.Equal(t, 0.5, p.MaxSelectedFraction)
	require.True(t, p.Select.Domain.MatchString("ci-0123abcd.onmicrosoft.com"))
	require.Equal(t, []string{"33333333-3333-3333-3333-333333333333"}, p.Keep.CustomerIDs)

	_, err = Parse("config.example.yaml", data, env(nil))
	require.ErrorContains(t, err, "config.example.yaml:56: accounts[0].client_secret: environment variable PC_CLIENT_SECRET is not set")
}

func TestParseReportsEachProblemWithItsLineAndField(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string // "LINE: field: message prefix"
	}{
		{"a schedule with four fields is rejected", `schedule: "0 */4 * *"` + "\n" + account,
			"1: schedule: invalid cron schedule: expected exactly 5 fields"},
		{"a schedule in an unknown time zone is rejected", `schedule: "CRON_TZ=Mars/Olympus 0 3 * * *"` + "\n" + account,
			"1: schedule: invalid cron schedule: provided bad location Mars/Olympus"},
		{"an unknown top-level key is an error with a suggestion", "schedul: x\n" + account,
			"1: schedul: unknown field; did you mean schedule?"},
		{"a top-level key set twice is an error", account + "state_dir: a\nstate_dir: b\n",
			"7: state_dir: set twice (first on line 6)"},
		{"a file without accounts is rejected", "state_dir: x\n",
			"1: accounts: at least one account is required"},
		{"accounts written as a mapping are rejected", "accounts:\n  name: a\n",
			"2: accounts: must be a list, not a mapping"},
		{"an unknown cloud is rejected", account + "    cloud: azure\n",
			`6: accounts[0].cloud: "azure" is not a cloud: use public, china, usgov`},
		{"an unknown account key is an error at its line", account + "    clinet_id: x\n",
			"6: accounts[0].clinet_id: unknown field; did you mean client_id?"},
		{"a tenant id that is not a GUID is rejected", strings.Replace(account, "11111111-1111-1111-1111-111111111111", "contoso.onmicrosoft.com", 1),
			`3: accounts[0].partner_tenant_id: "contoso.onmicrosoft.com" is not a GUID`},
		{"a client id that is not a GUID is rejected", strings.Replace(account, "22222222-2222-2222-2222-222222222222", "2222", 1),
			`4: accounts[0].client_id: "2222" is not a GUID`},
		{"the nil GUID is rejected", strings.Replace(account, "11111111-1111-1111-1111-111111111111", "00000000-0000-0000-0000-000000000000", 1),
			"3: accounts[0].partner_tenant_id: must not be the nil GUID"},
		{"a missing client secret is reported at the account", strings.Replace(account, "    client_secret: s\n", "", 1),
			"2: accounts[0].client_secret: is required"},
		{"an empty client secret is rejected", strings.Replace(account, "client_secret: s", `client_secret: ""`, 1),
			"5: accounts[0].client_secret: must not be empty"},
		{"an account name with spaces is rejected", strings.Replace(account, "name: a", "name: my account", 1),
			`2: accounts[0].name: "my account" is not a valid name`},
		{"two accounts with one name are rejected", account + strings.TrimPrefix(strings.Replace(strings.Replace(account, "1111", "4444", 1), "2222", "5555", 1), "accounts:\n"),
			`6: accounts[1].name: account "a" is defined twice (first on line 2)`},
		{"two accounts on one sandbox are rejected", account + strings.TrimPrefix(strings.Replace(account, "name: a", "name: b", 1), "accounts:\n"),
			"7: accounts[1].partner_tenant_id: the same sandbox (cloud, base_url and tenant) is already configured on line 2"},
		{"activity_log must be a boolean", account + "    activity_log: maybe\n",
			`6: accounts[0].activity_log: "maybe" is not true or false`},
		{"a plain http base_url to a remote host is rejected", account + "    base_url: http://api.partnercenter.microsoft.com\n",
			"6: accounts[0].base_url: must use https://"},
		{"an ftp authority is rejected", account + "    authority: ftp://login.microsoftonline.com\n",
			"6: accounts[0].authority: must use https://"},
		{"a base_url without a host is rejected", account + "    base_url: https:///v1\n",
			"6: accounts[0].base_url: must be an absolute URL with a host"},
		{"a base_url with credentials is rejected", account + "    base_url: https://u:p@proxy.example.com\n",
			"6: accounts[0].base_url: must not contain credentials"},
		{"a mysql database url is rejected", "database:\n  url: mysql://db.example.com/reaper\n" + account,
			"2: database.url: must be a postgres:// or postgresql:// URL"},
		{"a limit of zero is rejected", account + "limits:\n  concurrency: 0\n",
			`7: limits.concurrency: "0" must be a whole number greater than 0`},
		{"a negative limit is rejected", account + "limits:\n  requests_per_minute: -5\n",
			`7: limits.requests_per_minute: "-5" must be a whole number greater than 0`},
		{"a zero delete cap is rejected", account + "limits:\n  max_deletes_per_pass: 0\n",
			`7: limits.max_deletes_per_pass: "0" must be a whole number greater than 0`},
		{"a zero duration limit is rejected", account + "limits:\n  drain_timeout: 0s\n",
			"7: limits.drain_timeout: must be greater than 0"},
		{"a poll interval above poll_max is rejected", account + "limits:\n  poll_interval: 2m\n  poll_max: 1m\n",
			"7: limits.poll_interval: 2m is longer than limits.poll_max 1m"},
		{"an unknown limit is an error", account + "limits:\n  poll_intervall: 5s\n",
			"7: limits.poll_intervall: unknown field; did you mean poll_interval?"},
		{"a global keep id that is not a GUID is rejected", account + "keep:\n  customer_ids: [golden]\n",
			`7: keep.customer_ids[0]: "golden" is not a GUID`},
		{"keep ids written as one value are rejected", account + "keep:\n  customer_ids: 33333333-3333-3333-3333-333333333333\n",
			"7: keep.customer_ids: must be a list, not a single value"},
		{"a merge key is rejected", account + "keep: &k\n  domains: []\nlimits:\n  <<: *k\n",
			"9: limits.<<: merge keys (<<) are not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := problems(t, tt.src, nil)
			require.Len(t, ps, 1, "problems:\n%v", ps)
			got := fmt.Sprintf("%d: %s: %s", ps[0].Line, ps[0].Field, ps[0].Message)
			require.True(t, strings.HasPrefix(got, tt.want), "got  %q\nwant %q...", got, tt.want)
			require.Equal(t, "reaper.yaml", ps[0].File)
		})
	}
}

// policy is a valid policies: block after account (lines 6-11).
const policy = `policies:
  - name: p
    account: a
    older_than: 72h
    select:
      domain: '^ci-'
`

func TestParseReportsEachPolicyProblemWithItsLineAndField(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string
	}{
		{"a policy naming no configured account is rejected", strings.Replace(policy, "account: a", "account: b", 1),
			`8: policies[0].account: no account is named "b" (accounts: a)`},
		{"a policy without an account is rejected", strings.Replace(policy, "    account: a\n", "", 1),
			"7: policies[0].account: is required"},
		{"a policy without select is rejected", strings.Replace(policy, "    select:\n      domain: '^ci-'\n", "", 1),
			"7: policies[0].select: is required"},
		{"an empty select is rejected", strings.Replace(policy, "select:\n      domain: '^ci-'", "select: {}", 1),
			"10: policies[0].select: needs at least one of domain, company_name, customer_ids"},
		{"a select with only an empty id list is rejected", strings.Replace(policy, "domain: '^ci-'", "customer_ids: []", 1),
			"11: policies[0].select: needs at least one of domain, company_name, customer_ids"},
		{"an invalid domain regexp is rejected", strings.Replace(policy, "'^ci-'", "'^(ci'", 1),
			"11: policies[0].select.domain: invalid RE2 regexp: missing closing ): `^(ci`"},
		{"an empty domain pattern is rejected", strings.Replace(policy, "'^ci-'", "''", 1),
			"11: policies[0].select.domain: must not be empty"},
		{"a Perl-only regexp construct is rejected", strings.Replace(policy, "domain: '^ci-'", `company_name: '^(?!golden)'`, 1),
			"11: policies[0].select.company_name: invalid RE2 regexp: invalid or unsupported Perl syntax"},
		{"an unknown select key deep in a policy is reported", strings.Replace(policy, "domain:", "domian:", 1),
			"11: policies[0].select.domian: unknown field; did you mean domain?"},
		{"a selector id that is not a GUID is rejected", policy + "      customer_ids: [abc]\n",
			`12: policies[0].select.customer_ids[0]: "abc" is not a GUID`},
		{"select written as a list is rejected", strings.Replace(policy, "select:\n      domain: '^ci-'", "select: ['^ci-']", 1),
			"10: policies[0].select: must be a mapping of domain, company_name, customer_ids, not a list"},
		{"an older_than with an unknown unit is rejected", strings.Replace(policy, "older_than: 72h", "older_than: 3x", 1),
			`9: policies[0].older_than: invalid duration "3x": unknown unit (use ns, us, ms, s, m, h, d or w)`},
		{"a negative older_than is rejected", strings.Replace(policy, "older_than: 72h", "older_than: -72h", 1),
			`9: policies[0].older_than: invalid duration "-72h": negative durations are not allowed`},
		{"a grace without unit is rejected", policy + "    grace: 24\n",
			`12: policies[0].grace: invalid duration "24": missing unit`},
		{"a fraction of zero is rejected", policy + "    max_selected_fraction: 0\n",
			`12: policies[0].max_selected_fraction: "0" must be a number greater than 0 and at most 1`},
		{"a fraction above one is rejected", policy + "    max_selected_fraction: 1.5\n",
			`12: policies[0].max_selected_fraction: "1.5" must be a number greater than 0 and at most 1`},
		{"a fraction of NaN is rejected", policy + "    max_selected_fraction: NaN\n",
			`12: policies[0].max_selected_fraction: "NaN" must be a number`},
		{"an invalid keep pattern in a policy is reported at depth", policy + "    keep:\n      domains: ['^ok', '[golden']\n",
			"13: policies[0].keep.domains[1]: invalid RE2 regexp: missing closing ]: `[golden`"},
		{"an unknown keep key in a policy is reported at depth", policy + "    keep:\n      domain: ['^golden']\n",
			"13: policies[0].keep.domain: unknown field; did you mean domains?"},
		{"two policies with one name are rejected", policy + strings.TrimPrefix(policy, "policies:\n"),
			`12: policies[1].name: policy "p" is defined twice (first on line 7)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := problems(t, account+tt.src, nil)
			require.Len(t, ps, 1, "problems:\n%v", ps)
			got := fmt.Sprintf("%d: %s: %s", ps[0].Line, ps[0].Field, ps[0].Message)
			require.True(t, strings.HasPrefix(got, tt.want), "got  %q\nwant %q...", got, tt.want)
		})
	}
}

func TestParseAcceptsLoopbackHTTPAndPostgresURLs(t *testing.T) {
	tests := []struct{ name, db, baseURL string }{
		{"localhost over http", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "http://localhost:8080"},
		{"an IPv4 loopback over http", "postgresql://u:p@db/reaper", "http://127.0.0.1:9/v1"},
		{"an IPv6 loopback over http", "", "http://[::1]:8080"},
		{"https anywhere", "", "https://proxy.example.com/pc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "database:\n  url: '" + tt.db + "'\n" + account + "    base_url: " + tt.baseURL + "\n    authority: " + tt.baseURL + "\n"
			cfg := parse(t, src, nil)
			require.Equal(t, tt.baseURL, cfg.Accounts[0].BaseURL)
			require.Equal(t, tt.db, cfg.Database.URL.Reveal())
		})
	}
}

func TestParseReportsEveryProblemSortedByLine(t *testing.T) {
	src := `schedule: "every day"
accounts:
  - name: a
    cloud: mars
    partner_tenant_id: 11111111-1111-1111-1111-111111111111
    client_id: nope
    client_secret: s
limits:
  concurrency: 0
  poll_max: forever
policies:
  - name: p
    account: ghost
    select:
      domain: '(('
    grace: -1d
    surprise: true
`
	ps := problems(t, src, nil)
	var got []string
	for _, p := range ps {
		got = append(got, fmt.Sprintf("%d %s", p.Line, p.Field))
	}
	require.Equal(t, []string{
		"1 schedule",
		"4 accounts[0].cloud",
		"6 accounts[0].client_id",
		"9 limits.concurrency",
		"10 limits.poll_max",
		"12 policies[0].older_than",
		"13 policies[0].account",
		"15 policies[0].select.domain",
		"16 policies[0].grace",
		"17 policies[0].surprise",
	}, got)
	lines := strings.Split(ps.Error(), "\n")
	require.Len(t, lines, len(ps))
	require.True(t, strings.HasPrefix(lines[0], "reaper.yaml:1: schedule: invalid cron schedule: "), lines[0])
	require.Equal(t, `reaper.yaml:17: policies[0].surprise: unknown field (known: name, account, select, older_than, grace, max_selected_fraction, keep)`, lines[9])
}

func TestParseRejectsDocumentsThatAreNotOneMapping(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"an empty file", "", []string{"reaper.yaml: the config file is empty"}},
		{"a file of comments", "# nothing yet\n", []string{"reaper.yaml: the config file is empty"}},
		{"a null document", "---\n~\n", []string{"reaper.yaml:2: the config file is empty"}},
		{"a list at the top", "- a\n", []string{"reaper.yaml:1: the top level must be a mapping"}},
		{"a second document", account + "---\nstate_dir: /tmp\n", []string{"reaper.yaml:6: a second YAML document (after ---) is not allowed"}},
		{"a second document and a problem in the first", "bogus: 1\n" + account + "---\nstate_dir: /tmp\n", []string{
			"reaper.yaml:1: bogus: unknown field",
			"reaper.yaml:7: a second YAML document (after ---) is not allowed",
		}},
		{"a syntax error", "accounts:\n  - name: a\n    cloud: public\n      x: y\n", []string{"reaper.yaml:4: YAML syntax: mapping values are not allowed in this context"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := problems(t, tt.src, nil)
			require.Len(t, ps, len(tt.want), "problems:\n%v", ps)
			for i, want := range tt.want {
				require.True(t, strings.HasPrefix(ps[i].String(), want), "got  %q\nwant %q...", ps[i].String(), want)
			}
		})
	}
}

func TestValidateScheduleRequiresAParsableSchedule(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"a missing schedule", account, "reaper.yaml: schedule: is required"},
		{"an empty schedule", "schedule: ''\n" + account, "reaper.yaml:1: schedule: is required"},
		{"a plain schedule", "schedule: '0 */4 * * *'\n" + account, ""},
		{"a schedule in a zone", "schedule: 'CRON_TZ=Europe/Berlin 0 3 * * *'\n" + account, ""},
		{"a schedule with TZ=", "schedule: 'TZ=UTC 0 3 * * 1-5'\n" + account, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := parse(t, tt.src, nil).ValidateSchedule()
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.want)
		})
	}
	err := (&Config{File: "x.yaml", Schedule: "61 * * * *"}).ValidateSchedule()
	require.ErrorContains(t, err, "x.yaml: schedule: invalid cron schedule")
}

func TestEnvironmentReferencesExpandInValuesOnly(t *testing.T) {
	const tricky = "a: b\n- [x]\n# not a comment\n${NOT_EXPANDED_AGAIN} &anchor *alias"
	tests := []struct {
		name   string
		secret string // the client_secret value as written
		vars   map[string]string
		want   string
	}{
		{"a set variable is substituted", "${S}", map[string]string{"S": "hunter2"}, "hunter2"},
		{"text around a variable is kept", "pre-${S}-post", map[string]string{"S": "x"}, "pre-x-post"},
		{"a default is used when the variable is unset", "${S:-fallback}", nil, "fallback"},
		{"a default is used when the variable is empty", "${S:-fallback}", map[string]string{"S": ""}, "fallback"},
		{"a set variable beats its default", "${S:-fallback}", map[string]string{"S": "real"}, "real"},
		{"$$ is a literal dollar", "pa$$${S}$$", map[string]string{"S": "x"}, "pa$x$"},
		{"a lone dollar is kept", "a$b$", nil, "a$b$"},
		{"a value with YAML syntax is taken literally", "${S}", map[string]string{"S": tricky}, tricky},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := strings.Replace(account, "client_secret: s", "client_secret: '"+tt.secret+"'", 1)
			cfg := parse(t, src, tt.vars)
			require.Len(t, cfg.Accounts, 1)
			require.Equal(t, tt.want, cfg.Accounts[0].ClientSecret.Reveal())
		})
	}

	t.Run("typed values are expanded before they are parsed", func(t *testing.T) {
		cfg := parse(t, account+"limits:\n  concurrency: ${C:-3}\n  poll_max: ${P}\n", map[string]string{"P": "2m"})
		require.Equal(t, 3, cfg.Limits.Concurrency)
		require.Equal(t, Duration(2*time.Minute), cfg.Limits.PollMax)
	})
	t.Run("keys are not expanded", func(t *testing.T) {
		ps := problems(t, account+"${K}: x\n", map[string]string{"K": "state_dir"})
		require.Equal(t, "${K}", ps[0].Field)
	})
	t.Run("an empty default makes an unset variable empty", func(t *testing.T) {
		cfg := parse(t, "database:\n  url: ${DB:-}\n"+account, nil)
		require.Equal(t, Secret(""), cfg.Database.URL)
	})
}

func TestEnvironmentProblemsNameTheVariable(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"an unset variable in a required field", strings.Replace(account, "client_secret: s", "client_secret: ${PC_SECRET}", 1),
			"reaper.yaml:5: accounts[0].client_secret: environment variable PC_SECRET is not set"},
		{"an unset variable in an optional field", account + "    base_url: ${PC_PROXY}\n",
			"reaper.yaml:6: accounts[0].base_url: environment variable PC_PROXY is not set"},
		{"several unset variables", account + "state_dir: ${A}/${B}\n",
			"reaper.yaml:6: state_dir: environment variables A, B are not set"},
		{"an unterminated reference", account + "state_dir: ${A\n",
			"reaper.yaml:6: state_dir: unterminated ${"},
		{"a reference with an invalid name", account + "state_dir: ${1A}\n",
			"reaper.yaml:6: state_dir: invalid ${...} reference"},
		{"a default holding a reference", account + "state_dir: ${A:-${B}}\n",
			"reaper.yaml:6: state_dir: ${A:-...}: a default cannot contain another ${...}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := problems(t, tt.src, nil)
			require.Len(t, ps, 1)
			require.True(t, strings.HasPrefix(ps[0].String(), tt.want), "got  %q\nwant %q...", ps[0].String(), tt.want)
		})
	}
}

func TestSecretValuesNeverAppearInProblems(t *testing.T) {
	const secret = "Hunter2Secret"
	tests := []struct {
		name string
		src  string
		vars map[string]string
	}{
		{"a client secret with an unterminated reference", strings.Replace(account, "client_secret: s", "client_secret: '"+secret+"${'", 1), nil},
		{"a client secret with a bad reference", strings.Replace(account, "client_secret: s", "client_secret: '${"+secret+"-x}'", 1), nil},
		{"a client secret given as a list", strings.Replace(account, "client_secret: s", "client_secret: ["+secret+"]", 1), nil},
		{"a client secret given as a mapping", strings.Replace(account, "client_secret: s", "client_secret: {"+secret+": 1}", 1), nil},
		{"a database url of the wrong scheme", "database:\n  url: mysql://reaper:" + secret + "@db/reaper\n" + account, nil},
		{"a database url that does not parse", "database:\n  url: 'postgres://reaper:" + secret + "@[db/reaper'\n" + account, nil},
		{"a database url from the environment", "database:\n  url: ${DB}\n" + account, map[string]string{"DB": "mysql://u:" + secret + "@h/d"}},
		{"a database url that is a list", "database:\n  url: [postgres://reaper:" + secret + "@db]\n" + account, nil},
		{"a secret exported to the wrong fields", `schedule: ${S}
accounts:
  - name: ${S}
    cloud: ${S}
    partner_tenant_id: ${S}
    client_id: x${S}
    client_secret: s
    activity_log: ${S}
keep:
  customer_ids: ['${S}']
  domains: ['${S}']
limits:
  concurrency: ${S}
  poll_max: ${S}
policies:
  - name: p
    account: ${S}
    select:
      company_name: ${S}
    max_selected_fraction: ${S}
`, map[string]string{"S": "(" + secret}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := problems(t, tt.src, tt.vars)
			require.NotContains(t, ps.Error(), secret)
			require.NotContains(t, fmt.Sprintf("%+v %#v", ps, ps), secret)
		})
	}
}

func TestDurationParsing(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{"72h", 72 * time.Hour, ""},
		{"7d", 7 * 24 * time.Hour, ""},
		{"1d12h", 36 * time.Hour, ""},
		{"2w", 14 * 24 * time.Hour, ""},
		{"1w2d", 9 * 24 * time.Hour, ""},
		{"90m", 90 * time.Minute, ""},
		{"5s", 5 * time.Second, ""},
		{"1.5d", 36 * time.Hour, ""},
		{"1h30m15s", time.Hour + 30*time.Minute + 15*time.Second, ""},
		{"250ms", 250 * time.Millisecond, ""},
		{"0", 0, ""},
		{"0s", 0, ""},
		{"", 0, `invalid duration "": empty`},
		{"-1h", 0, "negative durations are not allowed"},
		{"-7d", 0, "negative durations are not allowed"},
		{"7", 0, "missing unit"},
		{"7days", 0, `invalid duration "7days": unknown unit`},
		{"d", 0, "expected a number"},
		{"1..5h", 0, "out of range"},
		{"9999999w", 0, "out of range"},
		{"106751d23h47m16s854775807ns", 1<<63 - 1, ""},
		{"106751d23h47m16s854775808ns", 0, "out of range"},
		{"15251w", 0, "out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseDuration(tt.in)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, Duration(tt.want), got)
		})
	}
}

func TestDurationStringReadsBack(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"},
		{72 * time.Hour, "3d"},
		{36 * time.Hour, "1d12h"},
		{90 * time.Minute, "1h30m"},
		{5 * time.Second, "5s"},
		{14 * 24 * time.Hour, "14d"},
		{1500 * time.Millisecond, "1.5s"},
		{24*time.Hour + time.Second, "1d1s"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			require.Equal(t, tt.want, Duration(tt.d).String())
			back, err := ParseDuration(tt.want)
			require.NoError(t, err)
			require.Equal(t, Duration(tt.d), back)
			var u Duration
			require.NoError(t, u.UnmarshalText([]byte(tt.want)))
			require.Equal(t, Duration(tt.d), u)
		})
	}
}

func TestLoadReadsTheFileAndNamesItInProblems(t *testing.T) {
	dir := t.TempDir()
	good := dir + "/good.yaml"
	require.NoError(t, os.WriteFile(good, []byte(account), 0o600))
	cfg, err := Load(good)
	require.NoError(t, err)
	require.Equal(t, good, cfg.File)

	bad := dir + "/bad.yaml"
	require.NoError(t, os.WriteFile(bad, []byte(account+"bogus: 1\n"), 0o600))
	_, err = Load(bad)
	require.EqualError(t, err, bad+":6: bogus: unknown field (known: schedule, database, state_dir, token_key, token_key_file, http, notify, accounts, limits, keep, policies)")

	_, err = Load(dir + "/missing.yaml")
	require.ErrorIs(t, err, os.ErrNotExist)
}
