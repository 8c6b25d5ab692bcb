package crashtest

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/tipreaper/tipreaper/internal/pcsim"
)

// checked is what the checks found: every violation, and how much crash
// recovery the trial exercised.
type checked struct {
	problems []string
	resumes  int // resume rows
	reused   int // intents repeated with the MS-RequestId of an unanswered one
}

func (c *checked) addf(format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

// check holds the sandbox and the store to the five promises of the crash
// test (see the package comment), after the final pass.
func check(sb *sandbox, st stored) checked {
	var c checked
	stats := sb.sim.Stats()
	present := map[string]bool{}
	for _, id := range sb.sim.Customers() {
		present[id] = true
	}
	muts := sb.rec.log()
	reqs := sb.sim.Requests()

	c.untouchedOutsideSelection(sb, st, stats, present, muts)
	c.selectedEndWell(sb, st, stats, present)
	c.noRepeatedMutation(muts, reqs)
	for id, s := range sb.customers {
		c.gapFreeTrail(id, s, st, reqs)
	}
	c.noRunLeftRunning(st)
	return c
}

// 1. No PATCH or DELETE ever reached a customer outside the selection.
func (c *checked) untouchedOutsideSelection(sb *sandbox, st stored, stats pcsim.Stats, present map[string]bool, muts []mutation) {
	for id, m := range stats.Mutations {
		s, known := sb.customers[id]
		switch {
		case !known:
			c.addf("%d PATCH and %d DELETE reached %s, a customer the sandbox never held", m.Patches, m.Deletes, id)
		case !s.kind.selected() && (m.Patches > 0 || m.Deletes > 0):
			c.addf("%s customer %s got %d PATCH and %d DELETE", s.kind, id, m.Patches, m.Deletes)
		}
	}
	for _, m := range muts {
		s, known := sb.customers[m.customerID]
		switch {
		case !known:
			c.addf("%s %s was sent for %s, a customer the sandbox never held", m.method, m.orderID, m.customerID)
		case !s.kind.selected():
			c.addf("%s %s was sent for %s customer %s (MS-RequestId %s)", m.method, m.orderID, s.kind, m.customerID, m.requestID)
		}
	}
	for id, s := range sb.customers {
		if s.kind.selected() {
			continue
		}
		if !present[id] {
			c.addf("%s customer %s is gone from the sandbox", s.kind, id)
		}
		if row, ok := st.customers[id]; ok && row.state != "seen" {
			c.addf("%s customer %s is %s in reaper_customers, want seen", s.kind, id, row.state)
		}
		for _, ev := range st.events[id] {
			if ev.outcome == "intent" {
				c.addf("%s customer %s has an intent row: %s %s", s.kind, id, ev.action, ev.orderID)
			}
		}
	}
}

// 2. Every selected customer ends deleted and gone, or blocked, or (only
// where the simulator injected failures) failed with a fail row.
func (c *checked) selectedEndWell(sb *sandbox, st stored, stats pcsim.Stats, present map[string]bool) {
	for id, s := range sb.customers {
		if !s.kind.selected() {
			continue
		}
		row, ok := st.customers[id]
		if !ok {
			c.addf("%s customer %s has no row in reaper_customers", s.kind, id)
			continue
		}
		has := func(action string) bool {
			return slices.ContainsFunc(st.events[id], func(e eventRow) bool { return e.action == action })
		}
		m := stats.Mutations[id]
		switch s.kind {
		case ancient:
			if row.state != "blocked" || !has("block") {
				c.addf("customer %s holding an order older than 60 days is %s (%s), want blocked with a block row", id, row.state, row.reason)
			}
			if m.Patches > 0 || m.Deletes > 0 {
				c.addf("customer %s holding an order older than 60 days got %d PATCH and %d DELETE, want none", id, m.Patches, m.Deletes)
			}
		case subscription:
			if row.state != "blocked" || !has("block") {
				c.addf("customer %s holding a subscription order is %s (%s), want blocked with a block row", id, row.state, row.reason)
			}
			if m.Deletes > 0 || !present[id] {
				c.addf("customer %s holding a subscription order got %d DELETE (present: %v), want none", id, m.Deletes, present[id])
			}
		case expired:
			switch {
			case row.state == "deleted":
				if present[id] {
					c.addf("customer %s is deleted in reaper_customers but still in the sandbox", id)
				}
				if !row.deleted {
					c.addf("customer %s is deleted in reaper_customers without deleted_at", id)
				}
			case row.state == "failed" && sb.failures > 0:
				if !has("fail") {
					c.addf("customer %s is failed without a fail row", id)
				}
				if !present[id] {
					c.addf("customer %s is failed in reaper_customers but gone from the sandbox", id)
				}
			default:
				c.addf("expired customer %s ends %s (%s) with pending %q, want deleted (present in the sandbox: %v)",
					id, row.state, row.reason, row.pendingAction, present[id])
			}
		}
		if row.pendingAction != "" {
			c.addf("customer %s ends with pending_action %s", id, row.pendingAction)
		}
	}
}

// 3. No PATCH under a new MS-RequestId met an order whose cancellation was
// already accepted (pending) or done (cancelled): only a repeat of the same
// logical request may, and it carries the same id. No DELETE met an order
// that was not cancelled, and none was answered 400.
func (c *checked) noRepeatedMutation(muts []mutation, reqs []pcsim.Request) {
	sent := map[string]map[string]bool{} // customer/order → MS-RequestIds of PATCHes that reached it
	for _, m := range muts {
		switch m.method {
		case http.MethodPatch:
			key := m.customerID + "/" + m.orderID
			if sent[key] == nil {
				sent[key] = map[string]bool{}
			}
			if (m.orderStatus == pcsim.StatusCancelled || m.orderStatus == pcsim.StatusPending) && !sent[key][m.requestID] {
				c.addf("PATCH of order %s under a new MS-RequestId %s met it already %s", key, m.requestID, m.orderStatus)
			}
			sent[key][m.requestID] = true
		case http.MethodDelete:
			if len(m.notCancelled) > 0 {
				c.addf("DELETE of customer %s (MS-RequestId %s) arrived while orders %s were not cancelled",
					m.customerID, m.requestID, strings.Join(m.notCancelled, ", "))
			}
		}
	}
	for _, r := range reqs {
		if r.Method == http.MethodDelete && r.Status == http.StatusBadRequest {
			c.addf("DELETE %s (MS-RequestId %s) was answered 400", r.Path, r.RequestID)
		}
	}
}

// 4. The customer's audit trail has no gap: every intent row is answered by
// a result row of the same action and order, carrying the same MS-RequestId,
// or by a resume row; a step resumed after that repeats the unanswered
// intent's MS-RequestId; no result row stands without its intent; and a
// deleted customer's delete ok row names a DELETE the simulator received.
func (c *checked) gapFreeTrail(id string, s seeded, st stored, reqs []pcsim.Request) {
	open := map[string]eventRow{}  // action/order → intent not answered yet
	carried := map[string]string{} // action/order → MS-RequestId of an intent a resume found unanswered
	var deleteOK *eventRow
	for _, ev := range st.events[id] {
		key := ev.action + "/" + ev.orderID
		switch {
		case ev.outcome == "intent":
			if prev, ok := open[key]; ok {
				c.addf("customer %s: intent %d (%s) follows intent %d with no result or resume between", id, ev.id, key, prev.id)
			}
			if rid, ok := carried[key]; ok {
				if rid != ev.requestID {
					c.addf("customer %s: resumed %s under MS-RequestId %s, not the unanswered intent's %s", id, key, ev.requestID, rid)
				} else {
					c.reused++
				}
				delete(carried, key)
			}
			open[key] = ev
		case ev.action == "resume":
			c.resumes++
			for k, in := range open {
				carried[k] = in.requestID
			}
			clear(open)
		case (ev.action == "cancel_order" || ev.action == "delete") && ev.outcome != "dry_run":
			in, ok := open[key]
			switch {
			case !ok:
				c.addf("customer %s: result row %d (%s %s) has no intent before it", id, ev.id, key, ev.outcome)
			case in.requestID != ev.requestID:
				c.addf("customer %s: result row %d (%s) carries MS-RequestId %s, its intent %s", id, ev.id, key, ev.requestID, in.requestID)
			}
			delete(open, key)
			if ev.action == "delete" && ev.outcome == "ok" {
				deleteOK = &ev
			}
		}
	}
	for key, in := range open {
		c.addf("customer %s: intent row %d (%s, MS-RequestId %s) was never answered", id, in.id, key, in.requestID)
	}
	if st.customers[id].state != "deleted" {
		return
	}
	if deleteOK == nil {
		c.addf("customer %s is deleted without a delete ok row", id)
		return
	}
	received := slices.ContainsFunc(reqs, func(r pcsim.Request) bool {
		return r.Method == http.MethodDelete && strings.HasSuffix(r.Path, "/customers/"+id) && r.RequestID == deleteOK.requestID
	})
	if !received {
		c.addf("customer %s: the delete ok row carries MS-RequestId %s, which no DELETE the simulator received carried", id, deleteOK.requestID)
	}
}

// 5. No reaper_runs row is left running: the runs of killed processes were
// closed as interrupted by the passes after them.
func (c *checked) noRunLeftRunning(st stored) {
	for i, r := range st.runs {
		if r.status == "running" {
			c.addf("run %s is still running", r.id)
		}
		if i == len(st.runs)-1 && r.status != "succeeded" && r.status != "partial" {
			c.addf("the final run %s ended %s, want succeeded or partial", r.id, r.status)
		}
	}
}
