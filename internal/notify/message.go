package notify

import (
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode"

	"github.com/tipreaper/tipreaper/internal/engine"
	"github.com/tipreaper/tipreaper/internal/store"
)

// Kinds of message.
const (
	KindPass   = "pass"
	KindQuota  = "quota"
	KindReload = "config_reload"
)

// Message is the JSON body of a notification. Fields that do not apply to its
// kind are omitted.
type Message struct {
	Text      string     `json:"text"` // the summary Slack and Teams display
	Kind      string     `json:"kind"` // pass | quota | config_reload
	At        time.Time  `json:"at"`
	RunID     string     `json:"run_id,omitempty"`
	Status    string     `json:"status,omitempty"`
	Counts    *Counts    `json:"counts,omitempty"`
	Stopped   []Stopped  `json:"stopped_accounts,omitempty"`
	Customers []Customer `json:"customers,omitempty"`
	// Quota: the account whose use crossed quota_warn.
	Account    string  `json:"account,omitempty"`
	QuotaUsed  int     `json:"quota_used,omitempty"`
	QuotaLimit int     `json:"quota_limit,omitempty"`
	QuotaWarn  float64 `json:"quota_warn,omitempty"`
	// Config reload: the file and its problems, one FILE:LINE: field: message a line.
	ConfigFile string `json:"config_file,omitempty"`
	Problems   string `json:"problems,omitempty"`
}

// Counts are a pass's counts.
type Counts struct {
	Listed      int `json:"listed"`
	Selected    int `json:"selected"`
	Deleted     int `json:"deleted"`
	AlreadyGone int `json:"already_gone"`
	Marked      int `json:"marked"`
	Skipped     int `json:"skipped"`
	Failed      int `json:"failed"`
	Blocked     int `json:"blocked"`
}

// Stopped is an account a guard stopped before any change.
type Stopped struct {
	Account string `json:"account"`
	Guard   string `json:"guard"`
	Reason  string `json:"reason"`
}

// Customer is one customer the pass did something to, or could not.
type Customer struct {
	Account     string     `json:"account"`
	CustomerID  string     `json:"customer_id"`
	Domain      string     `json:"domain,omitempty"`
	CompanyName string     `json:"company_name,omitempty"`
	Policy      string     `json:"policy,omitempty"`
	Outcome     string     `json:"outcome"`
	Reason      string     `json:"reason,omitempty"`
	Error       string     `json:"error,omitempty"`
	DeleteAt    *time.Time `json:"delete_at,omitempty"` // marked: when a later pass deletes it unless it is kept
}

// notable are the outcomes a person may need to act on or want to know of.
var notable = map[string]bool{
	engine.OutcomeDeleted: true, engine.OutcomeAlreadyGone: true, engine.OutcomeMarked: true,
	engine.OutcomeBlocked: true, engine.OutcomeFailed: true, engine.OutcomeInterrupted: true,
	engine.OutcomeReappeared: true,
}

// textLines bounds the customers listed in Text; the JSON lists all of them.
const textLines = 15

// ForPass returns the message for a finished live pass, and whether one is
// due: the pass deleted, marked, blocked or failed a customer, or a guard
// stopped an account.
func ForPass(r *engine.Report) (Message, bool) {
	if r == nil || r.Mode != store.ModeLive {
		return Message{}, false
	}
	m := Message{Kind: KindPass, At: r.Finished.UTC(), RunID: r.RunID.String(), Status: string(r.Status)}
	c := r.Counts
	m.Counts = &Counts{Listed: c.Listed, Selected: c.Selected, Deleted: c.Deleted, AlreadyGone: c.AlreadyGone,
		Marked: c.Marked, Skipped: c.Skipped, Failed: c.Failed, Blocked: c.Blocked}
	for _, a := range r.Accounts {
		if a.Stopped {
			m.Stopped = append(m.Stopped, Stopped{Account: a.Name, Guard: a.Guard, Reason: a.Reason})
		}
	}
	for _, it := range r.Items {
		if !notable[it.Outcome] {
			continue
		}
		cu := Customer{Account: it.Account, CustomerID: it.CustomerID, Domain: it.Domain, CompanyName: it.CompanyName,
			Policy: it.Policy, Outcome: it.Outcome, Reason: it.Reason, Error: it.Error}
		if it.Outcome == engine.OutcomeMarked && !it.DeleteAt.IsZero() {
			t := it.DeleteAt.UTC()
			cu.DeleteAt = &t
		}
		m.Customers = append(m.Customers, cu)
	}
	due := c.Deleted > 0 || c.Marked > 0 || c.Blocked > 0 || c.Failed > 0 || len(m.Stopped) > 0
	for _, cu := range m.Customers {
		// A customer gone by itself is not news; one that failed, was blocked or
		// came back is, whatever the counts say.
		if cu.Outcome != engine.OutcomeAlreadyGone {
			due = true
		}
	}
	if !due {
		return Message{}, false
	}
	m.Text = passText(m)
	return m, true
}

func passText(m Message) string {
	var b strings.Builder
	c := m.Counts
	fmt.Fprintf(&b, "tipreaper pass %s %s: %d deleted, %d marked, %d blocked, %d failed (%d listed)",
		m.RunID, m.Status, c.Deleted, c.Marked, c.Blocked, c.Failed, c.Listed)
	for _, s := range m.Stopped {
		fmt.Fprintf(&b, "\n- account %s stopped by guard %s before any change: %s", clean(s.Account), s.Guard, clean(s.Reason))
	}
	cs := append([]Customer(nil), m.Customers...)
	// Those that need a person first.
	rank := map[string]int{engine.OutcomeBlocked: 0, engine.OutcomeFailed: 1, engine.OutcomeReappeared: 2,
		engine.OutcomeInterrupted: 3, engine.OutcomeMarked: 4, engine.OutcomeDeleted: 5, engine.OutcomeAlreadyGone: 6}
	sort.SliceStable(cs, func(i, j int) bool { return rank[cs[i].Outcome] < rank[cs[j].Outcome] })
	for i, cu := range cs {
		if i == textLines {
			fmt.Fprintf(&b, "\n- … and %d more (see customers)", len(cs)-textLines)
			break
		}
		fmt.Fprintf(&b, "\n- %s %s (%s, %s): %s", cu.Outcome, clean(cu.Domain), cu.CustomerID, clean(cu.Account), clean(why(cu)))
		if cu.DeleteAt != nil {
			fmt.Fprintf(&b, "; deleted after %s unless `reaper keep add %s`", cu.DeleteAt.Format(time.RFC3339), cu.CustomerID)
		}
	}
	return b.String()
}

func why(c Customer) string {
	if c.Error != "" {
		return c.Error
	}
	return c.Reason
}

// ForReload returns the message for a config file that was refused.
func ForReload(file string, problems error, at time.Time) Message {
	p := problems.Error()
	return Message{Kind: KindReload, At: at.UTC(), ConfigFile: file, Problems: p,
		Text: fmt.Sprintf("tipreaper refused the changed config %s; the last good config stays in force:\n%s", clean(file), cleanLines(p))}
}

// QuotaWatch says when an account's quota use crosses the warning threshold
// upwards. Its zero value is ready; it is not safe for concurrent use.
type QuotaWatch struct {
	above map[string]bool
}

// Observe records an account's use and returns the message when the use went
// from below warn × limit (or unknown, at start) to at or above it.
func (q *QuotaWatch) Observe(account string, used, limit int, warn float64, at time.Time) (Message, bool) {
	if q.above == nil {
		q.above = map[string]bool{}
	}
	above := limit > 0 && warn > 0 && float64(used) >= warn*float64(limit)
	was := q.above[account]
	q.above[account] = above
	if !above || was {
		return Message{}, false
	}
	return Message{Kind: KindQuota, At: at.UTC(), Account: account, QuotaUsed: used, QuotaLimit: limit, QuotaWarn: warn,
		Text: fmt.Sprintf("tipreaper: account %s holds %d of its %d customers (%.0f%%, warning at %.0f%%)",
			clean(account), used, limit, 100*float64(used)/float64(limit), 100*warn)}, true
}

// clean makes a name from Partner Center or a file safe in a chat message:
// no control characters (a newline could forge a line), and Slack's three
// markup characters escaped as Slack asks.
func clean(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '?'
		}
		return r
	}, s)
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// cleanLines is clean for each line of s.
func cleanLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = clean(l)
	}
	return strings.Join(lines, "\n")
}
