package policy

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"gopkg.in/yaml.v3"
)

// Bounds of the limits. Each has a reason the message gives; they keep a
// typo (an extra zero, ms for s) from hammering Partner Center, stalling a
// daemon for days, or capping nothing.
const (
	// TipCustomerLimit is how many customers a Tip sandbox holds.
	TipCustomerLimit = 75
	// DocumentedRequestsPerMinute is Partner Center's documented request
	// limit per partner tenant.
	DocumentedRequestsPerMinute = 500
	maxRequestsPerMinute        = 60000 // even with allow_above_documented_rate: 1,000 a second
	maxListedBound              = 100000
)

type intBound struct {
	key      string
	min, max int
	why      string // why max
}

type durationBound struct {
	key      string
	min, max time.Duration
	why      string
}

var intBounds = []intBound{
	{"concurrency", 1, TipCustomerLimit, "a Tip account holds at most 75 customers"},
	{"max_deletes_per_pass", 1, TipCustomerLimit, "a Tip account holds at most 75 customers, so a larger cap caps nothing"},
	{"max_listed", 1, maxListedBound, "a Tip account holds at most 75 customers; the cap ends a listing that never ends"},
}

var durationBounds = []durationBound{
	{"poll_interval", 100 * time.Millisecond, 10 * time.Minute,
		"polls more often than every 100ms only spend the account's request budget; a sandbox cancels orders within minutes"},
	{"poll_max", 100 * time.Millisecond, time.Hour, "a sandbox cancels orders within minutes; longer pauses only hold the pass"},
	{"cancel_timeout", 0, 24 * time.Hour, "a customer waiting longer holds its pass for a day"},
	{"max_retry_wait", 0, time.Hour, "a longer Retry-After stalls the pass and every pass queued behind it"},
	{"plan_max_age", 0, 30 * 24 * time.Hour, "a plan older than a month no longer describes the sandbox"},
	{"drain_timeout", 0, 10 * time.Minute, "service managers kill a process that takes longer to stop"},
}

// checkLimits applies the bounds to decoded limits; m holds the limits: nodes
// (absent keys keep their defaults, which are within bounds).
func (d *decoder) checkLimits(m map[string]*yaml.Node, l *Limits) {
	ints := map[string]int{"concurrency": l.Concurrency, "max_deletes_per_pass": l.MaxDeletesPerPass, "max_listed": l.MaxListed}
	for _, b := range intBounds {
		n := m[b.key]
		if n == nil {
			continue
		}
		if v := ints[b.key]; v > b.max {
			d.addf(n, "limits."+b.key, "%d is above the bound of %d: %s", v, b.max, b.why)
		}
	}
	durs := map[string]Duration{"poll_interval": l.PollInterval, "poll_max": l.PollMax, "cancel_timeout": l.CancelTimeout,
		"max_retry_wait": l.MaxRetryWait, "plan_max_age": l.PlanMaxAge, "drain_timeout": l.DrainTimeout}
	for _, b := range durationBounds {
		n := m[b.key]
		if n == nil {
			continue
		}
		v := time.Duration(durs[b.key])
		switch {
		case b.min > 0 && v < b.min:
			d.addf(n, "limits."+b.key, "%s is below the bound of %s: %s", Duration(v), Duration(b.min), b.why)
		case v > b.max:
			d.addf(n, "limits."+b.key, "%s is above the bound of %s: %s", Duration(v), Duration(b.max), b.why)
		}
	}
	if n := m["requests_per_minute"]; n != nil {
		switch rpm := l.RequestsPerMinute; {
		case rpm > maxRequestsPerMinute:
			d.addf(n, "limits.requests_per_minute", "%d is above the bound of %d, even with allow_above_documented_rate", rpm, maxRequestsPerMinute)
		case rpm > DocumentedRequestsPerMinute && !l.AllowAboveDocumentedRate:
			d.addf(n, "limits.requests_per_minute", "%d is above %d, Partner Center's documented limit per partner tenant: "+
				"Partner Center throttles above it; set limits.allow_above_documented_rate: true if your tenant's limit is higher",
				rpm, DocumentedRequestsPerMinute)
		}
	}
}

// Probe customers no sane policy selects: a policy whose selector matches
// one of them matches (nearly) every customer, whatever the author meant.
var (
	probeDomains   = []string{"", "unrelated.onmicrosoft.com"}
	probeCompanies = []string{"", "Contoso Ltd"}
)

// checkSelectsAnything refuses a selector that selects a probe customer
// (an empty or unrelated name), unless the policy caps what it may select
// with max_selected_fraction. A selector with customer ids selects only those.
func (d *decoder) checkSelectsAnything(p *Policy, m map[string]*yaml.Node, path string) {
	sel := p.Select
	if p.MaxSelectedFraction > 0 || len(sel.CustomerIDs) > 0 || (sel.Domain == nil && sel.CompanyName == nil) {
		return
	}
	for _, dom := range probeDomains {
		for _, co := range probeCompanies {
			s := Subject{Domain: dom, CompanyName: co}
			if !sel.matches(&s) {
				continue
			}
			at, field := m["select"], path+".select"
			if sm := d.fieldsQuiet(m["select"]); sm != nil {
				switch {
				case sel.CompanyName == nil:
					at, field = sm["domain"], field+".domain"
				case sel.Domain == nil:
					at, field = sm["company_name"], field+".company_name"
				}
			}
			d.addf(at, field, "selects a customer with %s: it would select (nearly) every customer of the account. "+
				"Anchor the pattern to what your tests create (e.g. '^ci-[0-9a-f]{8}\\.onmicrosoft\\.com$'), "+
				"or set max_selected_fraction to say you mean it", probeName(dom, co, sel))
			return
		}
	}
}

func probeName(dom, co string, sel Selector) string {
	q := func(s string) string {
		if s == "" {
			return "an empty"
		}
		return strconv.Quote(s) + " as its"
	}
	switch {
	case sel.CompanyName == nil:
		return q(dom) + " domain"
	case sel.Domain == nil:
		return q(co) + " company name"
	default:
		return q(dom) + " domain and " + q(co) + " company name"
	}
}

// fieldsQuiet returns the key → value nodes of a mapping without recording
// problems (fields already did for this node).
func (d *decoder) fieldsQuiet(n *yaml.Node) map[string]*yaml.Node {
	n = resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	out := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		out[n.Content[i].Value] = n.Content[i+1]
	}
	return out
}

// checkDatabaseURL parses a database URL as the store will (pgxpool), so a
// URL the store cannot use is a config error. It never quotes the URL or the
// parser's error: both may hold the password.
func checkDatabaseURL(s string) string {
	if s == "" {
		return ""
	}
	const example = " (postgres://user:password@host:5432/db, or empty for the embedded SQLite file)"
	u, err := urlParse(s)
	if err != nil {
		return "is not a valid URL" + example
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return "must be a postgres:// or postgresql:// URL, or empty for the embedded SQLite file"
	}
	if _, err := pgxpool.ParseConfig(s); err != nil {
		return "cannot be parsed as a PostgreSQL connection URL: check the port, the parameters and their values" + example
	}
	return ""
}

// checkStateDir refuses a state_dir that exists and is not a directory: the
// SQLite store could not open its file there. One that does not exist yet is
// created by the store.
func checkStateDir(dir string) string {
	info, err := os.Stat(dir)
	if err != nil {
		return ""
	}
	if !info.IsDir() {
		return fmt.Sprintf("%s exists and is not a directory: the embedded SQLite file and its lock live in this directory", strconv.Quote(dir))
	}
	return ""
}
