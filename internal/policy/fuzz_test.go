package policy

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// FuzzParse feeds the config decoder arbitrary files. Whatever the input, it
// must not panic, must answer with a Config or with Problems (sorted by line,
// each naming the file), must never show the value of SECRET, and a Config
// it accepts must keep the refusals of dangerous configs: limits within their
// bounds, every policy with an age requirement said, on a configured account,
// and no selector that selects a probe customer without max_selected_fraction.
//
// Seeds: every broken config of the corpus, the example config, and
// testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob("testdata/broken/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	files = append(files, "../../config.example.yaml")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	vars := map[string]string{"SECRET": "Hunter2Fuzz", "PC_CLIENT_SECRET": "Hunter2Fuzz", "BAD_REGEXP": "(Hunter2Fuzz"}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.yaml", data, env(vars))
		if err != nil {
			if cfg != nil {
				t.Fatal("Parse returned a Config and an error")
			}
			var ps Problems
			if !errors.As(err, &ps) || len(ps) == 0 {
				t.Fatalf("Parse failed without Problems: %v", err)
			}
			if !slices.IsSortedFunc(ps, func(a, b Problem) int { return a.Line - b.Line }) {
				t.Fatalf("problems not sorted by line:\n%v", ps)
			}
			for _, p := range ps {
				if p.File != "fuzz.yaml" {
					t.Fatalf("problem without the file: %+v", p)
				}
			}
			if strings.Contains(ps.Error(), "Hunter2Fuzz") {
				t.Fatalf("a secret is in a problem:\n%v", ps)
			}
			return
		}
		checkAcceptedConfig(t, cfg)
	})
}

func checkAcceptedConfig(t *testing.T, cfg *Config) {
	t.Helper()
	l := cfg.Limits
	if l.Concurrency < 1 || l.Concurrency > TipCustomerLimit || l.MaxDeletesPerPass < 1 || l.MaxDeletesPerPass > TipCustomerLimit {
		t.Fatalf("limits out of bounds: %+v", l)
	}
	if l.RequestsPerMinute < 1 || l.RequestsPerMinute > DocumentedRequestsPerMinute && !l.AllowAboveDocumentedRate {
		t.Fatalf("requests_per_minute %d accepted", l.RequestsPerMinute)
	}
	if time.Duration(l.PollInterval) < 100*time.Millisecond || l.PollInterval > l.PollMax {
		t.Fatalf("poll delays %s..%s accepted", l.PollInterval, l.PollMax)
	}
	if len(cfg.Accounts) == 0 {
		t.Fatal("a config without accounts accepted")
	}
	for _, a := range cfg.Accounts {
		switch a.Credential {
		case CredentialSecret, CredentialRefreshToken:
			if a.ClientSecret == "" {
				t.Fatalf("account %s without a secret accepted", a.Name)
			}
		case CredentialCertificate:
			if len(a.ClientCertificate) == 0 || a.ClientKey == "" {
				t.Fatalf("account %s without certificate or key accepted", a.Name)
			}
		default:
			t.Fatalf("account %s without a credential form accepted", a.Name)
		}
	}
	for _, p := range cfg.Policies {
		if _, ok := cfg.Account(p.Account); !ok {
			t.Fatalf("policy %s on unknown account %q accepted", p.Name, p.Account)
		}
		if p.MaxSelectedFraction > 0 {
			continue
		}
		for _, dom := range probeDomains {
			for _, co := range probeCompanies {
				if p.Select.matches(&Subject{Domain: dom, CompanyName: co}) {
					t.Fatalf("policy %s selects the probe (%q, %q) without max_selected_fraction", p.Name, dom, co)
				}
			}
		}
	}
}
