package engine

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/tipreaper/tipreaper/internal/policy"
	"github.com/tipreaper/tipreaper/internal/store"
)

// Explanation says, for one customer, what tipreaper knows and would do.
type Explanation struct {
	CustomerID string
	Account    string
	Found      bool // known to the store or listed by an account
	Customer   store.CustomerState
	Age        time.Duration
	AgeKnown   bool
	AgeSource  string
	Decision   policy.Decision
	NextPass   string        // one sentence: what the next pass would do
	Recent     []store.Event // the last events of this customer, oldest first
}

// whyRecent is how many of the customer's latest events Why returns.
const whyRecent = 10

// Why explains one customer: which policies select it, which protection
// covers it, its age and where that age comes from, its state, and what the
// next pass would do. It makes no mutating call and changes nothing.
func (e *Engine) Why(ctx context.Context, customerID string) (*Explanation, error) {
	customerID = strings.ToLower(strings.TrimSpace(customerID))
	x := &Explanation{CustomerID: customerID}
	states, err := e.o.Store.FindCustomer(ctx, customerID)
	if err != nil {
		return nil, fmt.Errorf("look up customer %s: %w", customerID, err)
	}
	if len(states) > 0 {
		x.Found = true
		x.Customer = states[0]
		x.Account = states[0].Account
	}
	acct, ok := e.account(x.Account)
	if !x.Found || !ok {
		// Not sighted yet: look for it in every account's listing (read-only).
		for _, a := range e.o.Config.Accounts {
			c, err := e.client(a)
			if err != nil {
				return nil, err
			}
			cs, err := c.ListCustomers(ctx)
			if err != nil {
				return nil, fmt.Errorf("account %s: %w", a.Name, err)
			}
			for _, cu := range cs {
				if strings.EqualFold(cu.ID, customerID) {
					x.Found, x.Account, acct, ok = true, a.Name, a, true
					x.Customer = store.CustomerState{Account: a.Name, CustomerID: cu.ID, Domain: cu.CompanyProfile.Domain,
						CompanyName: cu.CompanyProfile.CompanyName, State: "unseen"}
				}
			}
		}
	}
	if !x.Found {
		x.NextPass = "no configured account lists this customer and the store has never seen it: nothing would happen"
		return x, nil
	}
	if !ok {
		x.NextPass = fmt.Sprintf("its account %q is no longer configured: nothing would happen", x.Account)
		return x, nil
	}
	now := e.o.Now()
	var added time.Time
	if acct.ActivityLog {
		if c, err := e.client(acct); err == nil {
			if recs, err := c.ListActivity(ctx, now.Add(-activityWindow), now); err == nil {
				l := addedLog{added: map[string]time.Time{}}
				l.merge(recs, now)
				added = l.added[x.Customer.CustomerID]
				if added.IsZero() {
					added = l.added[customerID]
				}
			}
		}
	}
	ks, err := storeKeeps(ctx, e.o.Store)
	if err != nil {
		return nil, fmt.Errorf("read reaper_keep: %w", err)
	}
	// The very classification a pass makes (classify.go).
	d := decider{cfg: e.o.Config, account: acct.Name, onlyPolicy: e.o.Policy, keeps: ks, now: now}
	f := facts{st: x.Customer, added: added}
	c := d.classify(f, nil)
	if e.ageFromOldRelationship(ctx, acct.Name, f, c) {
		f.added = time.Time{}
		c = d.classify(f, nil)
		added = time.Time{}
	}
	x.Age, x.AgeKnown = c.subj.Age, c.subj.AgeKnown
	switch {
	case !x.AgeKnown:
		x.AgeSource = "unknown: never sighted and not in the activity log"
	case !added.IsZero() && (x.Customer.FirstSeen.IsZero() || added.Before(x.Customer.FirstSeen)):
		x.AgeSource = "added per the partner activity log at " + added.UTC().Format(time.RFC3339)
	default:
		x.AgeSource = "first seen by tipreaper at " + x.Customer.FirstSeen.UTC().Format(time.RFC3339)
	}
	x.Decision = c.dec
	x.NextPass = c.nextPass()
	if x.Customer.State == store.StateDeleted {
		// Why does not list the account: a pass that lists it again flags it.
		x.NextPass = "nothing: it was deleted at " + x.Customer.DeletedAt.UTC().Format(time.RFC3339) +
			"; if it is listed again, a pass flags it reappeared and never deletes it again automatically"
	}

	evs, err := e.o.Store.CustomerEvents(ctx, customerID)
	if err != nil {
		return nil, fmt.Errorf("read the customer's audit rows: %w", err)
	}
	if len(evs) > whyRecent {
		evs = evs[len(evs)-whyRecent:]
	}
	x.Recent = evs
	return x, nil
}

func (e *Engine) account(name string) (policy.Account, bool) {
	for _, a := range e.o.Config.Accounts {
		if a.Name == name {
			return a, true
		}
	}
	return policy.Account{}, false
}
