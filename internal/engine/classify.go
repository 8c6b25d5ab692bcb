package engine

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/tipreaper/tipreaper/internal/pc"
	"github.com/tipreaper/tipreaper/internal/policy"
	"github.com/tipreaper/tipreaper/internal/store"
)

// This file is the pure part of a pass: what each listed customer is and
// why. It makes no I/O and writes nothing, so a pass and `reaper why` reach
// the same verdict from the same facts. account.go runs the guards over its
// result and then the effects.

// kind is what a listed customer is to this pass.
type kind int

const (
	kindIgnore      kind = iota // nothing to do and nothing to report (no policy selects it, or apply: not in the plan)
	kindProtected               // selected but protected: skipped, audited
	kindYoung                   // selected, too young or of unknown age: skipped, not audited
	kindNeedsPerson             // blocked or reappeared before this pass: reported, left alone
	kindReappeared              // recorded deleted but listed again: flagged now
	kindPlanChanged             // apply: the plan's decision no longer holds
	kindMark                    // mark it; deleted after the grace
	kindPending                 // marked, grace not over
	kindExpired                 // cancel its orders and delete it
)

// facts are what a pass knows of one listed customer before it decides.
type facts struct {
	st    store.CustomerState // the store's row (after sighting)
	added time.Time           // the activity log's add_customer record; zero: none
}

// classified is one customer of the listing and what the pass makes of it.
type classified struct {
	st     store.CustomerState
	subj   policy.Subject
	dec    policy.Decision
	kind   kind
	reason string // one sentence for people
	// clearMark says the customer's mark (and an in-flight state) must be
	// cleared: it is no longer selected, now protected, or needs a new mark
	// and a full grace after a failure.
	clearMark bool
}

// decider is what classification needs of the configuration.
type decider struct {
	cfg        *policy.Config
	account    string
	onlyPolicy string
	keeps      []policy.StoreKeep
	now        time.Time
}

// subject is the policy's view of a customer: the older of its first
// sighting and the activity log's add record makes its age.
func (d decider) subject(f facts) policy.Subject {
	st := f.st
	earliest := st.FirstSeen
	if !f.added.IsZero() && (earliest.IsZero() || f.added.Before(earliest)) {
		earliest = f.added
	}
	s := policy.Subject{ID: st.CustomerID, Domain: st.Domain, CompanyName: st.CompanyName,
		AgeKnown: !earliest.IsZero(), MarkedAt: st.MarkedAt}
	if s.AgeKnown {
		s.Age = d.now.Sub(earliest)
	}
	return s
}

// classify says what one listed customer is. planned is nil outside apply;
// in apply it holds the plan's items of the account by customer id.
func (d decider) classify(f facts, planned map[string]store.PlanItem) classified {
	st := f.st
	subj := d.subject(f)
	// A mark means "still selected after the grace": anything that breaks
	// that chain (no longer selected, protected, failed, blocked or unblocked
	// since) clears it, and a new mark starts a full grace.
	hasMark := !st.MarkedAt.IsZero() || st.State == store.StateMarked
	failed := st.State == store.StateFailed || st.State == store.StateBlocked
	if failed {
		subj.MarkedAt = time.Time{}
	}
	dec := d.cfg.Decide(d.account, subj, d.keeps, d.now, d.onlyPolicy)
	c := classified{st: st, subj: subj, dec: dec, reason: dec.Reason, clearMark: failed && !st.MarkedAt.IsZero()}
	switch st.State {
	case store.StateDeleted:
		c.kind = kindReappeared
		c.reason = "recorded deleted at " + st.DeletedAt.UTC().Format(time.RFC3339) + " but listed again: needs a person"
		return c
	case store.StateReappeared:
		c.kind, c.reason = kindNeedsPerson, "listed again after it was recorded deleted: needs a person ("+st.Reason+")"
		return c
	}
	if planned != nil {
		it, inPlan := planned[st.CustomerID]
		if !inPlan {
			c.kind = kindIgnore
			return c
		}
		if reason := stillPlanned(it, dec); reason != "" {
			c.kind, c.reason = kindPlanChanged, "plan no longer holds: "+reason
			c.clearMark = dec.Verdict != policy.Pending && (hasMark || inFlight(st.State))
			return c
		}
	}
	switch dec.Verdict {
	case policy.NotSelected:
		c.kind = kindIgnore
		c.clearMark = hasMark || inFlight(st.State)
		return c
	case policy.Protected, policy.TooYoung, policy.AgeUnknown:
		c.kind = kindYoung
		if dec.Verdict == policy.Protected {
			c.kind = kindProtected
		}
		c.clearMark = hasMark || inFlight(st.State)
		return c
	}
	if st.State == store.StateBlocked {
		c.kind, c.reason = kindNeedsPerson, "blocked: needs a person ("+st.Reason+"), then `reaper unblock`"
		return c
	}
	switch dec.Verdict {
	case policy.Mark:
		c.kind = kindMark
	case policy.Pending:
		c.kind = kindPending
	default:
		c.kind = kindExpired
	}
	return c
}

// nextPass is one sentence: what a pass would do with the customer.
func (c classified) nextPass() string {
	switch c.kind {
	case kindReappeared:
		return "flag it reappeared and leave it alone: " + c.reason
	case kindNeedsPerson:
		if c.st.State == store.StateReappeared {
			return "nothing: it was recorded deleted and is listed again; a person must find out why (it is never deleted again automatically)"
		}
		return "nothing until a person resolves it (" + c.st.Reason + "), then `reaper unblock`"
	case kindProtected:
		return "skip it: protected by " + c.dec.Protection
	case kindYoung:
		return "nothing yet: " + c.dec.Reason
	case kindPlanChanged:
		return "skip it: " + c.reason
	case kindMark:
		return "mark it; a pass after " + c.dec.DeleteAt.UTC().Format(time.RFC3339) + " deletes it if it is still selected"
	case kindPending:
		return "wait: marked, deleted by a pass after " + c.dec.DeleteAt.UTC().Format(time.RFC3339)
	case kindExpired:
		if inFlight(c.st.State) {
			return "resume its deletion from state " + c.st.State + " (policy " + c.dec.Policy + ")"
		}
		return "cancel its orders and delete it (policy " + c.dec.Policy + "), unless max_deletes_per_pass is reached"
	}
	if c.st.State == store.StateDeleted {
		return "nothing: it was deleted at " + c.st.DeletedAt.UTC().Format(time.RFC3339) + " (if it is listed again it is flagged reappeared)"
	}
	return "nothing: no policy selects it"
}

// guidPattern is the one form of a customer id: a GUID in its 8-4-4-4-12
// form (uuid.Parse would also take braces, a urn: prefix or no hyphens).
var guidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// orderIDPattern is the form of an order id. The contract does not pin it
// down (Partner Center's are 32 hex digits); what matters is that it is one
// plain path segment that no proxy can decode into another resource.
var orderIDPattern = regexp.MustCompile(`^[0-9A-Za-z_-]{1,64}$`)

// listing is a customer listing checked for defects: one entry per id.
type listing struct {
	customers []pc.Customer
	collapsed []string // ids listed more than once with identical profiles
}

// checkListing returns the listing with one entry per customer id, or a
// listing defect: an id that is not a GUID, or one id listed with two
// different profiles. Either stops the account before any mutation: a
// listing that cannot tell which customer an id is cannot be acted on.
func checkListing(customers []pc.Customer) (listing, error) {
	var l listing
	first := make(map[string]pc.Customer, len(customers))
	for _, c := range customers {
		if !guidPattern.MatchString(c.ID) {
			return listing{}, fmt.Errorf("listing defect: customer id %q is not a GUID", c.ID)
		}
		id := strings.ToLower(c.ID)
		prev, dup := first[id]
		if !dup {
			first[id] = c
			l.customers = append(l.customers, c)
			continue
		}
		if !strings.EqualFold(prev.ID, c.ID) || prev.CompanyProfile != c.CompanyProfile {
			return listing{}, fmt.Errorf("listing defect: customer %s is listed twice with different profiles (%s %q and %s %q)",
				c.ID, prev.CompanyProfile.Domain, prev.CompanyProfile.CompanyName, c.CompanyProfile.Domain, c.CompanyProfile.CompanyName)
		}
		l.collapsed = append(l.collapsed, c.ID)
	}
	return l, nil
}

// checkOrderIDs returns a defect for the first order id that is not of the
// contract's form.
func checkOrderIDs(customerID string, orders []pc.Order) error {
	for _, o := range orders {
		if !orderIDPattern.MatchString(o.ID) {
			return fmt.Errorf("listing defect: order id %q of customer %s is not of the contract's form", o.ID, customerID)
		}
	}
	return nil
}

// fractionGuard returns why a policy's max_selected_fraction is exceeded, or
// "". It counts, per policy, every listed customer the policy's select
// matches (protected, too young and needing a person included): the cap is
// about what a selector reaches, not about what expires this pass.
func fractionGuard(cfg *policy.Config, account string, cls []classified) string {
	if len(cls) == 0 {
		return ""
	}
	matched := map[string]int{}
	for _, c := range cls {
		for _, name := range c.dec.Selected {
			matched[name]++
		}
	}
	for _, pol := range cfg.PoliciesFor(account) {
		if pol.MaxSelectedFraction <= 0 {
			continue
		}
		n := matched[pol.Name]
		if frac := float64(n) / float64(len(cls)); frac > pol.MaxSelectedFraction {
			return fmt.Sprintf("policy %s selects %d of %d listed customers (%.0f%%, protected and too young included), more than its max_selected_fraction %g",
				pol.Name, n, len(cls), 100*frac, pol.MaxSelectedFraction)
		}
	}
	return ""
}
