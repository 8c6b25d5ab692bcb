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
	earliest, src := x.Customer.FirstSeen, "first seen by tipreaper"
	if acct.ActivityLog {
		if c, err := e.client(acct); err == nil {
			if recs, err := c.ListActivity(ctx, now.Add(-activityWindow), now); err == nil {
				for _, r := range recs {
					if strings.EqualFold(r.CustomerID, customerID) && r.OperationType == "add_customer" &&
						(earliest.IsZero() || r.OperationDate.Before(earliest)) {
						earliest, src = r.OperationDate, "added per the partner activity log"
					}
				}
			}
		}
	}
	if !earliest.IsZero() {
		x.AgeKnown, x.Age = true, now.Sub(earliest)
		x.AgeSource = src + " at " + earliest.UTC().Format(time.RFC3339)
	} else {
		x.AgeSource = "unknown: never sighted and not in the activity log"
	}
	ks, err := e.o.Store.Keeps(ctx)
	if err != nil {
		return nil, fmt.Errorf("read reaper_keep: %w", err)
	}
	keeps := make([]policy.StoreKeep, len(ks))
	for i, k := range ks {
		keeps[i] = policy.StoreKeep{CustomerID: k.CustomerID, Reason: k.Reason, Until: k.Until}
	}
	subj := policy.Subject{ID: x.Customer.CustomerID, Domain: x.Customer.Domain, CompanyName: x.Customer.CompanyName,
		Age: x.Age, AgeKnown: x.AgeKnown, MarkedAt: x.Customer.MarkedAt}
	x.Decision = e.o.Config.Decide(acct.Name, subj, keeps, now, e.o.Policy)
	x.NextPass = nextPass(x.Customer, x.Decision)

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

func nextPass(st store.CustomerState, d policy.Decision) string {
	switch st.State {
	case store.StateDeleted:
		return "nothing: it was deleted at " + st.DeletedAt.UTC().Format(time.RFC3339) + " (if it is listed again it is flagged reappeared)"
	case store.StateBlocked, store.StateReappeared:
		return "nothing until a person resolves it (" + st.Reason + "), then `reaper unblock`"
	}
	switch d.Verdict {
	case policy.Protected:
		return "skip it: protected by " + d.Protection
	case policy.NotSelected:
		return "nothing: no policy selects it"
	case policy.TooYoung, policy.AgeUnknown:
		return "nothing yet: " + d.Reason
	case policy.Mark:
		return "mark it; a pass after " + d.DeleteAt.UTC().Format(time.RFC3339) + " deletes it if it is still selected"
	case policy.Pending:
		return "wait: marked, deleted by a pass after " + d.DeleteAt.UTC().Format(time.RFC3339)
	case policy.Expired:
		if inFlight(st.State) {
			return "resume its deletion from state " + st.State + " (policy " + d.Policy + ")"
		}
		return "cancel its orders and delete it (policy " + d.Policy + "), unless max_deletes_per_pass is reached"
	}
	return d.Reason
}
