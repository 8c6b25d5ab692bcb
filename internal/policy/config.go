package policy

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Config is a decoded and validated config file. Parse fills every default, so
// a Config from Parse or Load is ready to use; tests may also build one by hand.
type Config struct {
	File     string   // the file it came from, for messages
	Schedule string   // cron spec for `reaper run`; "" when not set (see ValidateSchedule)
	Database Database // where audit rows and state live
	StateDir string   // default "./reaper-state"
	Accounts []Account
	Limits   Limits
	Keep     Keep // global protections: beat every policy of every account
	Policies []Policy
	HTTP     HTTP   // the daemon's HTTP endpoints
	Notify   Notify // where pass outcomes are announced
	// TokenKey encrypts the refresh tokens kept in the store (App+User
	// credentials): the 32 bytes decoded from token_key or token_key_file
	// (base64). "" when not set; required when an account uses refresh_token.
	TokenKey Secret

	// Warnings are things Load found that work but are risky (a literal
	// secret in a file others can read). Print them; they never stop a command.
	Warnings []Problem

	scheduleLine   int
	literalSecrets []Problem // where the file holds a secret as written, for Load's permission warning
}

// HTTP configures the endpoints `reaper run` serves (/metrics, /healthz, /readyz).
type HTTP struct {
	Listen string // host:port; "" = no server
}

// Notify configures the webhook told about passes.
type Notify struct {
	WebhookURL Secret  // https (http only for loopback); a Secret because such URLs carry a token; "" = off
	QuotaWarn  float64 // notify when an account's customers reach this share of the Tip limit (75); default 0.9
}

// Database says where state lives. An empty URL means the embedded SQLite file
// in StateDir.
type Database struct {
	URL Secret // postgres:// or postgresql://; a Secret because it may hold a password
}

// Account is one Partner Center Tip sandbox the reaper works on.
type Account struct {
	Name            string
	Cloud           string // "public" (default), "china" or "usgov"
	PartnerTenantID string // lower-case GUID
	ClientID        string // lower-case GUID
	// Credential is how the account signs in; exactly one form is configured:
	//   CredentialSecret:       ClientSecret (client_secret or client_secret_file)
	//   CredentialCertificate:  ClientCertificate + ClientKey (client assertion)
	//   CredentialRefreshToken: RefreshToken + ClientSecret (App+User, Secure Application Model)
	Credential        Credential
	ClientSecret      Secret // "" for CredentialCertificate
	ClientCertificate []byte // PEM, certificate first (then its chain); not secret; nil unless CredentialCertificate
	ClientKey         Secret // PEM private key matching ClientCertificate
	RefreshToken      Secret // the first refresh token; the store keeps the rotated ones (encrypted with Config.TokenKey)
	BaseURL           string // "" = the cloud's API root
	Authority         string // "" = the cloud's login authority
	ActivityLog       bool   // default true: also date customers from the partner activity log
	Line              int    // where the account starts in the file
}

// Limits bound how hard and how far one pass may go.
type Limits struct {
	Concurrency       int      // customers in flight per account; default 8
	RequestsPerMinute int      // client-side request cap per account; default 450 (90 % of the documented 500)
	PollInterval      Duration // first poll while the account's cancellation time is unknown; default 500ms
	PollMax           Duration // the poll delay backs off up to this; default 60s
	CancelTimeout     Duration // give up waiting for orders to cancel after this; default 30m
	MaxDeletesPerPass int      // blast-radius cap per account per pass; default 50
	PlanMaxAge        Duration // `apply` refuses plans older than this; default 24h
	DrainTimeout      Duration // graceful stop lets in-flight steps finish this long; default 30s
	MaxRetryWait      Duration // longest wait a Retry-After may impose (API and token endpoint); beyond it the call ends throttled; default 2m
	MaxListed         int      // a listing with more customers (or pages) than this is an error: the account stops; default 1000
	// AllowAboveDocumentedRate lets RequestsPerMinute exceed 500, Partner
	// Center's documented limit; default false.
	AllowAboveDocumentedRate bool
}

// Credential names an account's form of credentials.
type Credential string

const (
	CredentialSecret       Credential = "client_secret" // app-only, client credentials with a secret
	CredentialCertificate  Credential = "certificate"   // app-only, client credentials with a signed assertion
	CredentialRefreshToken Credential = "refresh_token" // App+User: refresh-token grant with the app's id and secret
)

// Policy selects customers of one account and says when they expire.
type Policy struct {
	Name                string
	Account             string
	Select              Selector // all given fields must match; a Selector with no field selects nothing
	OlderThan           Duration // 0 = no age requirement
	Grace               Duration // 0 = delete as soon as expired; > 0: mark first, delete after Grace
	MaxSelectedFraction float64  // 0 = no cap; else the account's pass stops if this policy selects more than this share
	Keep                Keep     // protects customers of this policy's account from every policy
	Line                int
}

// Selector picks customers. Domain patterns match case-insensitively (domain
// names have no case); company names match as written.
type Selector struct {
	Domain      *regexp.Regexp
	CompanyName *regexp.Regexp
	CustomerIDs []string
}

// Keep lists protections. A customer matching any entry is never deleted.
type Keep struct {
	CustomerIDs  []string
	Domains      []*regexp.Regexp // case-insensitive, like Selector.Domain
	CompanyNames []*regexp.Regexp
}

// clouds are the values `cloud:` accepts.
var clouds = []string{"public", "china", "usgov"}

// Defaults returns the limits a config that sets none gets.
func Defaults() Limits { return defaultLimits() }

func defaultLimits() Limits {
	return Limits{
		Concurrency:       8,
		RequestsPerMinute: 450,
		PollInterval:      Duration(500 * time.Millisecond),
		PollMax:           Duration(60 * time.Second),
		CancelTimeout:     Duration(30 * time.Minute),
		MaxDeletesPerPass: 50,
		PlanMaxAge:        Duration(24 * time.Hour),
		DrainTimeout:      Duration(30 * time.Second),
		MaxRetryWait:      Duration(2 * time.Minute),
		MaxListed:         1000,
	}
}

const defaultQuotaWarn = 0.9

const defaultStateDir = "./reaper-state"

// Load reads the config file at path and parses it with the process
// environment for ${VAR} references. The file must be a regular file of at
// most 1 MiB (a problem naming the file otherwise). When the file holds a
// secret as written and group or others may read it, Load adds a Warning.
func Load(path string) (*Config, error) {
	data, info, err := readRegularFile(path, maxConfigSize)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("read config: %w", err)
		}
		return nil, Problems{{File: path, Message: err.Error()}}
	}
	cfg, err := Parse(path, data, os.LookupEnv)
	if err != nil {
		return nil, err
	}
	if perm := info.Mode().Perm(); perm&0o044 != 0 {
		for _, p := range Problems(cfg.literalSecrets).sorted() {
			p.Message = fmt.Sprintf("holds a secret as written and the file is readable by group or others (mode %04o): "+
				"chmod 600 %s, or take the value from the environment (${VAR}) or a *_file", perm, path)
			cfg.Warnings = append(cfg.Warnings, p)
		}
	}
	return cfg, nil
}

// ValidateSchedule reports whether Schedule is set and parses as a cron spec:
// five fields, optionally prefixed with CRON_TZ=Zone or TZ=Zone. Parse already
// checks a schedule that is present; only `reaper run` needs one at all.
func (c *Config) ValidateSchedule() error {
	if c.Schedule == "" {
		return Problems{{File: c.File, Line: c.scheduleLine, Field: "schedule",
			Message: `is required to run on a schedule (e.g. "0 */4 * * *")`}}
	}
	if msg := checkSchedule(c.Schedule); msg != "" {
		return Problems{{File: c.File, Line: c.scheduleLine, Field: "schedule", Message: msg}}
	}
	return nil
}

func checkSchedule(spec string) string {
	if _, err := cron.ParseStandard(spec); err != nil {
		return "invalid cron schedule: " + err.Error()
	}
	return ""
}

// Account returns the account called name.
func (c *Config) Account(name string) (Account, bool) {
	for _, a := range c.Accounts {
		if a.Name == name {
			return a, true
		}
	}
	return Account{}, false
}

// Policy returns the policy called name.
func (c *Config) Policy(name string) (Policy, bool) {
	for _, p := range c.Policies {
		if p.Name == name {
			return p, true
		}
	}
	return Policy{}, false
}

// PoliciesFor returns the policies of an account in file order.
func (c *Config) PoliciesFor(account string) []Policy {
	var out []Policy
	for _, p := range c.Policies {
		if p.Account == account {
			out = append(out, p)
		}
	}
	return out
}

// Redacted returns the database URL with its password (in the user info or a
// password= query parameter) replaced, for logs and `reaper validate`.
func (d *Database) Redacted() string {
	if d.URL == "" {
		return ""
	}
	u, err := url.Parse(d.URL.Reveal())
	if err != nil {
		return redacted
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// Problem is one thing wrong with a config file.
type Problem struct {
	File    string
	Line    int    // 0 when no line applies (an empty file, a hand-built Config)
	Field   string // "policies[0].select.domain"; "" for YAML syntax errors
	Message string
}

func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
	}
	b.WriteString(": ")
	if p.Field != "" {
		b.WriteString(p.Field)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Problems is every problem found in a config file, sorted by line. Parse
// collects them all rather than stopping at the first, so one edit fixes the file.
type Problems []Problem

// Error gives one "FILE:LINE: field: message" per line.
func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

func (ps Problems) sorted() Problems {
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Line < ps[j].Line })
	return ps
}
