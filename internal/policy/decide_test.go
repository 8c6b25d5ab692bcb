package policy

import (
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const (
	ciID     = "aaaaaaaa-0000-0000-0000-000000000001"
	goldenID = "aaaaaaaa-0000-0000-0000-000000000002"
)

// baseConfig has account a with policy "ci" (domains ^ci-, older than 3d)
// and "named" (company ^CI , no age requirement), and account b with "b-ci".
// Tests add protections to it and check that they, and only they, flip a
// verdict.
func baseConfig() *Config {
	return &Config{
		Policies: []Policy{
			{Name: "ci", Account: "a", Select: Selector{Domain: regexp.MustCompile(`(?i)^ci-`)}, OlderThan: Duration(72 * time.Hour)},
			{Name: "named", Account: "a", Select: Selector{CompanyName: regexp.MustCompile(`^CI `)}},
			{Name: "b-ci", Account: "b", Select: Selector{Domain: regexp.MustCompile(`(?i)^ci-`)}},
		},
	}
}

// old is a customer both policies of account a find expired.
func old() Subject {
	return Subject{ID: ciID, Domain: "ci-1234.onmicrosoft.com", CompanyName: "CI run 1234", Age: 5 * 24 * time.Hour, AgeKnown: true}
}

func TestEachProtectionBeatsSelection(t *testing.T) {
	tests := []struct {
		name    string
		protect func(*Config)
		keeps   []StoreKeep
		want    string // Decision.Protection
	}{
		{"a global keep id", func(c *Config) { c.Keep.CustomerIDs = []string{ciID} }, nil,
			"keep.customer_ids (global)"},
		{"a global keep id in upper case", func(c *Config) { c.Keep.CustomerIDs = []string{"AAAAAAAA-0000-0000-0000-000000000001"} }, nil,
			"keep.customer_ids (global)"},
		{"a global keep domain", func(c *Config) { c.Keep.Domains = []*regexp.Regexp{regexp.MustCompile(`(?i)^ci-1234\.`)} }, nil,
			`keep.domains '^ci-1234\.' (global)`},
		{"a global keep company name", func(c *Config) { c.Keep.CompanyNames = []*regexp.Regexp{regexp.MustCompile(`1234$`)} }, nil,
			"keep.company_names '1234$' (global)"},
		{"the keep of the selecting policy", func(c *Config) { c.Policies[0].Keep.CustomerIDs = []string{ciID} }, nil,
			"policy ci keep.customer_ids"},
		{"the keep of another policy of the account", func(c *Config) {
			c.Policies[1].Keep.Domains = []*regexp.Regexp{regexp.MustCompile(`(?i)onmicrosoft`)}
		}, nil, "policy named keep.domains 'onmicrosoft'"},
		{"a store keep forever", nil, []StoreKeep{{CustomerID: ciID, Reason: "demo for sales"}},
			"reaper_keep: demo for sales"},
		{"a store keep until later", nil, []StoreKeep{{CustomerID: ciID, Reason: "debugging", Until: now.Add(time.Hour)}},
			"reaper_keep until 2026-03-01T13:00:00Z: debugging"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			unprotected := baseConfig().Decide("a", old(), nil, now, "")
			require.Equal(t, Expired, unprotected.Verdict, unprotected.Reason)

			c := baseConfig()
			if tt.protect != nil {
				tt.protect(c)
			}
			got := c.Decide("a", old(), tt.keeps, now, "")
			require.Equal(t, Protected, got.Verdict, got.Reason)
			require.Equal(t, tt.want, got.Protection)
			require.Equal(t, "ci", got.Policy)
			require.Equal(t, []string{"ci", "named"}, got.Selected)
			require.Equal(t, "selected by ci but protected by "+tt.want, got.Reason)

			// The same protection also holds when only one policy may act.
			require.Equal(t, Protected, c.Decide("a", old(), tt.keeps, now, "named").Verdict)
		})
	}
}

func TestProtectionsThatDoNotApplyDoNotProtect(t *testing.T) {
	tests := []struct {
		name    string
		protect func(*Config)
		keeps   []StoreKeep
	}{
		{"the keep of a policy of another account", func(c *Config) { c.Policies[2].Keep.CustomerIDs = []string{ciID} }, nil},
		{"an expired store keep", nil, []StoreKeep{{CustomerID: ciID, Until: now}}},
		{"a store keep of another customer", nil, []StoreKeep{{CustomerID: goldenID}}},
		{"a keep domain that does not match", func(c *Config) { c.Keep.Domains = []*regexp.Regexp{regexp.MustCompile(`^golden\.`)} }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := baseConfig()
			if tt.protect != nil {
				tt.protect(c)
			}
			got := c.Decide("a", old(), tt.keeps, now, "")
			require.Equal(t, Expired, got.Verdict, got.Reason)
			require.Empty(t, got.Protection)
		})
	}
}

func TestAProtectedCustomerNoPolicySelectsIsNotSelected(t *testing.T) {
	c := baseConfig()
	c.Keep.CustomerIDs = []string{goldenID}
	got := c.Decide("a", Subject{ID: goldenID, Domain: "golden.onmicrosoft.com", CompanyName: "Golden"}, nil, now, "")
	require.Equal(t, Decision{Verdict: NotSelected, Reason: "selected by no policy"}, got)
}

func TestDecideVerdicts(t *testing.T) {
	day := 24 * time.Hour
	withGrace := func(c *Config) { c.Policies[0].Grace = Duration(day) }
	tests := []struct {
		name       string
		configure  func(*Config)
		subject    Subject
		onlyPolicy string
		account    string
		want       Decision
	}{
		{
			name:    "a customer no selector matches is not selected",
			subject: Subject{ID: goldenID, Domain: "golden.onmicrosoft.com", CompanyName: "Golden", Age: 400 * day, AgeKnown: true},
			want:    Decision{Verdict: NotSelected, Reason: "selected by no policy"},
		},
		{
			name:    "an old selected customer is expired",
			subject: Subject{ID: ciID, Domain: "ci-1.onmicrosoft.com", Age: 5*day + 3*time.Hour + 17*time.Minute, AgeKnown: true},
			want:    Decision{Verdict: Expired, Policy: "ci", Selected: []string{"ci"}, Reason: "selected by ci; 5d3h old (older_than 3d)"},
		},
		{
			name:    "domains match regardless of case",
			subject: Subject{ID: ciID, Domain: "CI-1.onmicrosoft.com", Age: 5 * day, AgeKnown: true},
			want:    Decision{Verdict: Expired, Policy: "ci", Selected: []string{"ci"}, Reason: "selected by ci; 5d old (older_than 3d)"},
		},
		{
			name:    "a young customer is too young",
			subject: Subject{ID: ciID, Domain: "ci-1.onmicrosoft.com", Age: 2 * day, AgeKnown: true},
			want:    Decision{Verdict: TooYoung, Policy: "ci", Selected: []string{"ci"}, Reason: "selected by ci; 2d old, not older than 3d yet"},
		},
		{
			name:    "a customer exactly as old as older_than is too young",
			subject: Subject{ID: ciID, Domain: "ci-1.onmicrosoft.com", Age: 3 * day, AgeKnown: true},
			want:    Decision{Verdict: TooYoung, Policy: "ci", Selected: []string{"ci"}, Reason: "selected by ci; 3d old, not older than 3d yet"},
		},
		{
			name:    "a customer of unknown age is never expired by older_than",
			subject: Subject{ID: ciID, Domain: "ci-1.onmicrosoft.com", Age: 400 * day, AgeKnown: false},
			want:    Decision{Verdict: AgeUnknown, Policy: "ci", Selected: []string{"ci"}, Reason: "selected by ci; age unknown, so older_than 3d cannot hold"},
		},
		{
			name:    "without older_than age does not matter",
			subject: Subject{ID: ciID, CompanyName: "CI run", AgeKnown: false},
			want:    Decision{Verdict: Expired, Policy: "named", Selected: []string{"named"}, Reason: "selected by named; no age requirement"},
		},
		{
			name:      "an unmarked customer under a grace is marked",
			configure: withGrace,
			subject:   Subject{ID: ciID, Domain: "ci-1.onmicrosoft.com", Age: 5 * day, AgeKnown: true},
			want: Decision{Verdict: Mark, Policy: "ci", Selected: []string{"ci"}, DeleteAt: now.Add(day),
				Reason: "selected by ci; 5d old (older_than 3d); marked now, grace 1d ends 2026-03-02T12:00:00Z"},
		},
		{
			name:      "a marked customer within the grace is pending",
			configure: withGrace,
			subject:   Subject{ID: ciID, Domain: "ci-1.onmicrosoft.com", Age: 5 * day, AgeKnown: true, MarkedAt: now.Add(-time.Hour)},
			want: Decision{Verdict: Pending, Policy: "ci", Selected: []string{"ci"}, DeleteAt: now.Add(23 * time.Hour),
				Reason: "selected by ci; 5d old (older_than 3d); marked 2026-03-01T11:00:00Z, grace 1d ends 2026-03-02T11:00:00Z"},
		},
		{
			name:      "a marked customer after the grace is expired",
			configure: withGrace,
			subject:   Subject{ID: ciID, Domain: "ci-1.onmicrosoft.com", Age: 5 * day, AgeKnown: true, MarkedAt: now.Add(-day)},
			want: Decision{Verdict: Expired, Policy: "ci", Selected: []string{"ci"},
				Reason: "selected by ci; 5d old (older_than 3d); marked 2026-02-28T12:00:00Z, grace 1d is over"},
		},
		{
			name:      "a young customer under a grace is not marked",
			configure: withGrace,
			subject:   Subject{ID: ciID, Domain: "ci-1.onmicrosoft.com", Age: day, AgeKnown: true},
			want:      Decision{Verdict: TooYoung, Policy: "ci", Selected: []string{"ci"}, Reason: "selected by ci; 1d old, not older than 3d yet"},
		},
		{
			name:       "onlyPolicy leaves other policies out",
			subject:    old(),
			onlyPolicy: "named",
			want:       Decision{Verdict: Expired, Policy: "named", Selected: []string{"named"}, Reason: "selected by named; no age requirement"},
		},
		{
			name:       "onlyPolicy that does not select leaves the customer unselected",
			subject:    Subject{ID: ciID, Domain: "ci-1.onmicrosoft.com", Age: 5 * day, AgeKnown: true},
			onlyPolicy: "named",
			want:       Decision{Verdict: NotSelected, Reason: "selected by no policy"},
		},
		{
			name:       "onlyPolicy of another account selects nothing here",
			subject:    old(),
			onlyPolicy: "b-ci",
			want:       Decision{Verdict: NotSelected, Reason: "selected by no policy"},
		},
		{
			name:    "the first policy that finds it expired decides",
			subject: old(),
			want:    Decision{Verdict: Expired, Policy: "ci", Selected: []string{"ci", "named"}, Reason: "selected by ci; 5d old (older_than 3d)"},
		},
		{
			name:    "a later policy that finds it expired beats an earlier one that finds it too young",
			subject: Subject{ID: ciID, Domain: "ci-1.onmicrosoft.com", CompanyName: "CI run", Age: time.Hour, AgeKnown: true},
			want:    Decision{Verdict: Expired, Policy: "named", Selected: []string{"ci", "named"}, Reason: "selected by named; no age requirement"},
		},
		{
			name:      "a later policy that would mark beats an earlier one that lacks the age",
			configure: func(c *Config) { c.Policies[1].Grace = Duration(day) },
			subject:   Subject{ID: ciID, Domain: "ci-1.onmicrosoft.com", CompanyName: "CI run"},
			want: Decision{Verdict: Mark, Policy: "named", Selected: []string{"ci", "named"}, DeleteAt: now.Add(day),
				Reason: "selected by named; no age requirement; marked now, grace 1d ends 2026-03-02T12:00:00Z"},
		},
		{
			name:    "policies of another account do not select",
			account: "b",
			subject: Subject{ID: ciID, CompanyName: "CI run"},
			want:    Decision{Verdict: NotSelected, Reason: "selected by no policy"},
		},
		{
			name: "a selector needs every given field to match",
			configure: func(c *Config) {
				c.Policies[0].Select.CustomerIDs = []string{goldenID}
				c.Policies[0].OlderThan = 0
			},
			subject: Subject{ID: ciID, Domain: "ci-1.onmicrosoft.com"},
			want:    Decision{Verdict: NotSelected, Reason: "selected by no policy"},
		},
		{
			name:      "an empty selector selects nothing",
			configure: func(c *Config) { c.Policies = []Policy{{Name: "all", Account: "a"}} },
			subject:   old(),
			want:      Decision{Verdict: NotSelected, Reason: "selected by no policy"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := baseConfig()
			if tt.configure != nil {
				tt.configure(c)
			}
			account := tt.account
			if account == "" {
				account = "a"
			}
			require.Equal(t, tt.want, c.Decide(account, tt.subject, nil, now, tt.onlyPolicy))
		})
	}
}

func TestParsedKeepsProtectWhateverTheCase(t *testing.T) {
	cfg := parse(t, account+`keep:
  domains: ['^golden\.']
policies:
  - name: all-ci
    account: a
    older_than: 0s
    select:
      company_name: '^CI '
`, nil)
	s := Subject{ID: ciID, Domain: "Golden.onmicrosoft.com", CompanyName: "CI golden"}
	got := cfg.Decide("a", s, nil, now, "")
	require.Equal(t, Protected, got.Verdict)
	require.Equal(t, `keep.domains '^golden\.' (global)`, got.Protection)

	s.Domain = "silver.onmicrosoft.com"
	require.Equal(t, Expired, cfg.Decide("a", s, nil, now, "").Verdict)
}

func TestVerdictNames(t *testing.T) {
	var names []string
	for v := NotSelected; v <= Expired+1; v++ {
		names = append(names, v.String())
	}
	require.Equal(t, []string{"not_selected", "protected", "too_young", "age_unknown", "mark", "pending", "expired", "verdict(7)"}, names)
}

func TestPoliciesForKeepsFileOrder(t *testing.T) {
	var names []string
	for _, p := range baseConfig().PoliciesFor("a") {
		names = append(names, p.Name)
	}
	require.Equal(t, []string{"ci", "named"}, names)
	require.Empty(t, baseConfig().PoliciesFor("nobody"))
}

func TestDecideAllocatesOnlyTheDecision(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	c := benchConfig()
	notSelected := Subject{ID: goldenID, Domain: "prod-42.onmicrosoft.com", CompanyName: "Contoso", Age: time.Hour, AgeKnown: true}
	require.Zero(t, testing.AllocsPerRun(100, func() { c.Decide("a", notSelected, nil, now, "") }))
	// Expired: the Selected slice and the Reason string.
	require.LessOrEqual(t, testing.AllocsPerRun(100, func() { c.Decide("a", old(), nil, now, "") }), 2.0)
}

func benchConfig() *Config {
	c := baseConfig()
	c.Keep = Keep{
		CustomerIDs: []string{goldenID, "bbbbbbbb-0000-0000-0000-000000000001", "bbbbbbbb-0000-0000-0000-000000000002"},
		Domains:     []*regexp.Regexp{regexp.MustCompile(`(?i)^golden\.`), regexp.MustCompile(`(?i)^demo-`)},
	}
	c.Policies[0].Keep.Domains = []*regexp.Regexp{regexp.MustCompile(`(?i)^ci-keep-`)}
	c.Policies[0].Grace = Duration(24 * time.Hour)
	return c
}

// BenchmarkDecide plans a 75,000-customer account: one in four is selected.
func BenchmarkDecide(b *testing.B) {
	c := benchConfig()
	subjects := make([]Subject, 75000)
	for i := range subjects {
		s := Subject{ID: fmt.Sprintf("cccccccc-0000-0000-0000-%012d", i), Age: time.Duration(i%10) * 24 * time.Hour, AgeKnown: i%7 != 0}
		switch i % 4 {
		case 0:
			s.Domain, s.CompanyName = fmt.Sprintf("ci-%08x.onmicrosoft.com", i), "CI run"
			if i%3 == 0 {
				s.MarkedAt = now.Add(-time.Duration(i%48) * time.Hour)
			}
		default:
			s.Domain, s.CompanyName = fmt.Sprintf("prod-%d.onmicrosoft.com", i), "Contoso"
		}
		subjects[i] = s
	}
	keeps := []StoreKeep{{CustomerID: "cccccccc-0000-0000-0000-000000000004", Reason: "demo"}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		c.Decide("a", subjects[i%len(subjects)], keeps, now, "")
	}
}
