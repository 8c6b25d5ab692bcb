package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/semaphore"

	"github.com/tipreaper/tipreaper/internal/pc"
	"github.com/tipreaper/tipreaper/internal/policy"
	"github.com/tipreaper/tipreaper/internal/store"
)

// activityWindow is how far back the partner activity log reaches.
const activityWindow = 90 * 24 * time.Hour

// accountPass is one account's share of a pass.
type accountPass struct {
	e     *Engine
	runID uuid.UUID
	acct  policy.Account
	dry   bool
	plan  *store.Plan
	log   *slog.Logger
	pc    PartnerCenter

	// work is the context of API calls and waits that must be allowed to
	// finish after a graceful stop began; it ends drain_timeout after ctx.
	work context.Context
	// lease is the account's lease this pass holds; every write of the
	// pass is fenced by it (nil only before it is taken).
	lease *store.Lease
	// lose ends the account's pass at once (cause wraps errLeaseLost).
	lose context.CancelCauseFunc

	// slots bounds the calls and steps in flight (limits.concurrency); see reapAll.
	slots *semaphore.Weighted
	// cancels is the account's cancellation model (poll.go), read before
	// the first customer and saved after the last.
	cancels *cancelModel

	mu     sync.Mutex
	report AccountReport
	items  []Item
	counts store.Counts
}

// candidate is a customer the pass will reap.
type candidate struct {
	state store.CustomerState
	dec   policy.Decision
	age   time.Duration
	item  int // index into accountPass.items
}

func (p *accountPass) run(ctx context.Context) {
	p.report.Name = p.acct.Name
	// lose ends the account's pass when its lease is lost: no customer is
	// started and the calls in flight are cut at once (no drain).
	ctx, lose := context.WithCancelCause(ctx)
	defer lose(nil)
	p.lose = lose
	drain := time.Duration(p.e.o.Config.Limits.DrainTimeout)
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	stopDrain := context.AfterFunc(ctx, func() {
		if errors.Is(context.Cause(ctx), errLeaseLost) {
			cancelWork()
			return
		}
		t := time.AfterFunc(drain, cancelWork)
		context.AfterFunc(work, func() { t.Stop() })
	})
	defer stopDrain()
	p.work = work

	lease, ok, err := p.acquireLease(ctx, lose)
	if err != nil {
		p.stop(ctx, GuardLease, fmt.Sprintf("take the account's lease: %v", err))
		return
	}
	if !ok {
		// Another tipreaper is the leader for this account: not a failure.
		p.log.Info("another tipreaper works this account; skipping it this pass")
		p.report.Reason = "another tipreaper holds this account's lease"
		return
	}
	p.lease = &lease.lease
	defer func() {
		lease.release(ctx)
		if cause := context.Cause(ctx); errors.Is(cause, errLeaseLost) {
			p.log.Error("lost the account's lease mid-pass: stopped working it; the new holder resumes its customers", "error", cause)
			p.report.Stopped = true
			p.report.Guard = GuardLease
			p.report.Reason = cause.Error() + "; another tipreaper may have taken it over and resumes its customers"
		}
	}()

	client, err := p.e.client(p.acct)
	if err != nil {
		p.stop(ctx, GuardConnect, err.Error())
		return
	}
	p.pc = client
	cands, ok := p.prepare(ctx)
	if !ok {
		return
	}
	if p.e.o.OnPlan != nil {
		p.mu.Lock()
		plan := slices.Clone(p.items)
		p.mu.Unlock()
		p.e.o.OnPlan(p.acct.Name, plan)
	}
	p.reapAll(ctx, cands)
}

// stop ends the account's pass before any mutating call and records why.
func (p *accountPass) stop(ctx context.Context, guard, reason string) {
	p.report.Stopped = true
	p.report.Guard = guard
	p.report.Reason = reason
	p.log.Error("account pass stopped before any change", "reason", reason)
	p.record(ctx, store.Event{Action: store.ActionGuard, Outcome: store.OutcomeError, Error: reason,
		Detail: "no customer of this account is touched this pass"})
}

// prepare lists, sights and decides; it runs every guard and writes the
// plan. It returns the candidates to reap, or ok=false when a guard stopped
// the account.
func (p *accountPass) prepare(ctx context.Context) (cands []*candidate, ok bool) {
	now := p.e.o.Now()
	customers, err := p.pc.ListCustomers(p.work)
	if err != nil {
		// pc's errors name the operation ("list customers: …") already.
		p.stop(ctx, GuardListing, err.Error())
		return nil, false
	}
	p.report.Listed = len(customers)
	p.counts.Listed = len(customers)

	added := p.activity(now)

	sightings := make([]store.Sighting, len(customers))
	for i, c := range customers {
		sightings[i] = store.Sighting{CustomerID: c.ID, Domain: c.CompanyProfile.Domain, CompanyName: c.CompanyProfile.CompanyName}
	}
	states, err := p.e.o.Store.Sight(ctx, p.acct.Name, sightings, now)
	if err != nil {
		p.stop(ctx, GuardStore, fmt.Sprintf("record sightings: %v", err))
		return nil, false
	}
	keeps, err := p.storeKeeps(ctx)
	if err != nil {
		p.stop(ctx, GuardStore, fmt.Sprintf("read reaper_keep: %v", err))
		return nil, false
	}
	byID := make(map[string]store.CustomerState, len(states))
	for _, s := range states {
		byID[s.CustomerID] = s
	}

	var planned map[string]store.PlanItem
	if p.plan != nil {
		planned = map[string]store.PlanItem{}
		for _, it := range p.plan.Items {
			if it.Account == p.acct.Name {
				planned[it.CustomerID] = it
			}
		}
	}

	type decided struct {
		st  store.CustomerState
		dec policy.Decision
		age time.Duration
	}
	var (
		work     []decided
		listed   = make(map[string]bool, len(customers))
		perPol   = map[string]int{}
		unmarks  []store.CustomerState
		skips    []skip
		reappear []store.CustomerState
	)
	for _, c := range customers {
		listed[c.ID] = true
		st, found := byID[c.ID]
		if !found {
			p.stop(ctx, GuardStore, fmt.Sprintf("the store returned no row for listed customer %s", c.ID))
			return nil, false
		}
		earliest := st.FirstSeen
		if t, ok := added[c.ID]; ok && (earliest.IsZero() || t.Before(earliest)) {
			earliest = t
		}
		subj := policy.Subject{ID: c.ID, Domain: c.CompanyProfile.Domain, CompanyName: c.CompanyProfile.CompanyName,
			AgeKnown: !earliest.IsZero(), MarkedAt: st.MarkedAt}
		if subj.AgeKnown {
			subj.Age = now.Sub(earliest)
		}
		dec := p.e.o.Config.Decide(p.acct.Name, subj, keeps, now, p.e.o.Policy)

		if st.State == store.StateDeleted {
			reappear = append(reappear, st)
			continue
		}
		if planned != nil {
			it, inPlan := planned[c.ID]
			if !inPlan {
				continue
			}
			if reason := stillPlanned(it, dec); reason != "" {
				skips = append(skips, skip{p.newItem(st, dec, subj.Age, ActionSkip, "plan no longer holds: "+reason), true})
				continue
			}
		}
		switch dec.Verdict {
		case policy.NotSelected:
			if st.State == store.StateMarked || inFlight(st.State) {
				unmarks = append(unmarks, st)
			}
			continue
		case policy.Protected, policy.TooYoung, policy.AgeUnknown:
			if st.State == store.StateMarked || inFlight(st.State) {
				unmarks = append(unmarks, st)
			}
			// Protections are audited every pass; youth is not worth a row.
			skips = append(skips, skip{p.newItem(st, dec, subj.Age, ActionSkip, dec.Reason), dec.Verdict == policy.Protected})
			continue
		}
		if st.State == store.StateBlocked || st.State == store.StateReappeared {
			it := p.newItem(st, dec, subj.Age, ActionSkip, "needs a person: "+st.Reason)
			it.Outcome = OutcomeBlocked
			skips = append(skips, skip{it, false})
			continue
		}
		perPol[dec.Policy]++
		work = append(work, decided{st, dec, subj.Age})
	}
	if planned != nil {
		for id, it := range planned {
			if !listed[id] {
				skips = append(skips, skip{Item{Account: p.acct.Name, CustomerID: id, Domain: it.Domain, CompanyName: it.CompanyName,
					Policy: it.Policy, Action: ActionSkip, Reason: "plan no longer holds: the customer is no longer listed"}, true})
			}
		}
	}

	// Guards: nothing below this block may run for an account that trips one.
	for _, pol := range p.e.o.Config.PoliciesFor(p.acct.Name) {
		if pol.MaxSelectedFraction <= 0 || len(customers) == 0 {
			continue
		}
		n := perPol[pol.Name]
		if frac := float64(n) / float64(len(customers)); frac > pol.MaxSelectedFraction {
			p.stop(ctx, GuardFraction, fmt.Sprintf("policy %s selects %d of %d customers (%.0f%%), more than its max_selected_fraction %g",
				pol.Name, n, len(customers), 100*frac, pol.MaxSelectedFraction))
			return nil, false
		}
	}
	tid, err := p.pc.TokenTenantID(p.work)
	if err != nil {
		p.stop(ctx, GuardTenant, fmt.Sprintf("read the tenant of the access token: %v", err))
		return nil, false
	}
	if !strings.EqualFold(tid, p.acct.PartnerTenantID) {
		p.stop(ctx, GuardTenant, fmt.Sprintf("the access token belongs to tenant %s, not to the configured partner_tenant_id %s", tid, p.acct.PartnerTenantID))
		return nil, false
	}

	// Observations and bookkeeping that are not mutating calls.
	p.confirmGone(ctx, listed)
	for _, st := range reappear {
		it := p.newItem(st, policy.Decision{Policy: st.Policy}, 0, ActionSkip,
			"recorded deleted at "+st.DeletedAt.UTC().Format(time.RFC3339)+" but listed again: needs a person")
		it.Outcome = OutcomeReappeared
		p.add(it, func(c *store.Counts) { c.Blocked++ })
		ev := p.event(st, store.ActionReappeared, store.OutcomeError)
		ev.Error = it.Reason
		if p.dry {
			p.record(ctx, ev)
			continue
		}
		st.State = store.StateReappeared
		st.Reason = it.Reason
		st.StateAt = now
		p.transition(ctx, st, ev)
	}
	for _, st := range unmarks {
		ev := p.event(st, store.ActionUnmark, store.OutcomeOK)
		ev.Detail = fmt.Sprintf("no longer selected or now protected; was %s", st.State)
		if p.dry {
			ev.Outcome = store.OutcomeDryRun
			p.record(ctx, ev)
			continue
		}
		st.State, st.Reason, st.StateAt = store.StateSeen, "no longer selected", now
		st.MarkedAt, st.DeleteAfter = time.Time{}, time.Time{}
		p.transition(ctx, st, ev)
	}
	for _, sk := range skips {
		it := sk.item
		if it.Outcome == "" {
			it.Outcome = OutcomeSkipped
		}
		if it.Outcome == OutcomeBlocked {
			p.add(it, func(c *store.Counts) { c.Blocked++ })
			continue
		}
		p.add(it, func(c *store.Counts) { c.Skipped++ })
		if sk.audit {
			ev := store.Event{Action: store.ActionSkip, Outcome: store.OutcomeSkipped, CustomerID: it.CustomerID,
				Domain: it.Domain, Policy: it.Policy, Detail: it.Reason}
			p.record(ctx, ev)
		}
	}

	slices.SortFunc(work, func(a, b decided) int {
		if c := cmp.Compare(rank(a.st.State), rank(b.st.State)); c != 0 {
			return c
		}
		if c := cmp.Compare(b.age, a.age); c != 0 {
			return c
		}
		return cmp.Compare(a.st.CustomerID, b.st.CustomerID)
	})
	deletes := 0
	maxDeletes := p.e.o.Config.Limits.MaxDeletesPerPass
	for _, d := range work {
		switch d.dec.Verdict {
		case policy.Mark:
			it := p.newItem(d.st, d.dec, d.age, ActionMark, d.dec.Reason)
			it.DeleteAt = d.dec.DeleteAt
			ev := p.event(d.st, store.ActionMark, store.OutcomeOK)
			ev.Policy = d.dec.Policy
			ev.Detail = "marked; deleted by a pass after " + d.dec.DeleteAt.UTC().Format(time.RFC3339) + " if still selected"
			if p.dry {
				it.Outcome = OutcomeWouldMark
				ev.Outcome = store.OutcomeDryRun
				p.add(it, func(c *store.Counts) { c.Marked++ })
				p.record(ctx, ev)
				continue
			}
			it.Outcome = OutcomeMarked
			p.add(it, func(c *store.Counts) { c.Marked++ })
			st := d.st
			st.State, st.Reason, st.Policy, st.StateAt = store.StateMarked, d.dec.Reason, d.dec.Policy, now
			st.MarkedAt, st.DeleteAfter = now, d.dec.DeleteAt
			p.transition(ctx, st, ev)
		case policy.Pending:
			it := p.newItem(d.st, d.dec, d.age, ActionWait, d.dec.Reason)
			it.DeleteAt = d.dec.DeleteAt
			it.Outcome = OutcomePending
			p.add(it, func(*store.Counts) {})
		case policy.Expired:
			if maxDeletes > 0 && deletes >= maxDeletes {
				it := p.newItem(d.st, d.dec, d.age, ActionSkip,
					fmt.Sprintf("max_deletes_per_pass (%d) reached; waits for the next pass", maxDeletes))
				it.Outcome = OutcomeSkipped
				p.add(it, func(c *store.Counts) { c.Skipped++ })
				p.record(ctx, store.Event{Action: store.ActionSkip, Outcome: store.OutcomeSkipped, CustomerID: it.CustomerID,
					Domain: it.Domain, Policy: it.Policy, Detail: it.Reason})
				continue
			}
			deletes++
			it := p.newItem(d.st, d.dec, d.age, ActionDelete, d.dec.Reason)
			idx := p.add(it, func(c *store.Counts) { c.Selected++ })
			ev := p.event(d.st, store.ActionPlan, store.OutcomeOK)
			ev.Policy = d.dec.Policy
			ev.Detail = "delete: " + d.dec.Reason
			if p.dry {
				ev.Outcome = store.OutcomeDryRun
			}
			p.record(ctx, ev)
			cands = append(cands, &candidate{state: d.st, dec: d.dec, age: d.age, item: idx})
		}
	}
	return cands, true
}

// stillPlanned says why a plan item no longer matches the current decision,
// or "" when it still does.
func stillPlanned(it store.PlanItem, dec policy.Decision) string {
	switch {
	case it.Action == ActionDelete && dec.Verdict == policy.Expired:
		return ""
	case it.Action == ActionMark && dec.Verdict == policy.Mark:
		return ""
	case dec.Verdict == policy.Protected:
		return "now protected by " + dec.Protection
	}
	return fmt.Sprintf("planned %s, now %s: %s", it.Action, dec.Verdict, dec.Reason)
}

// skip is a listed customer the pass leaves alone; audit says whether that
// deserves an audit row (protections and changed plans do).
type skip struct {
	item  Item
	audit bool
}

// rank orders the work: customers a crashed pass left in flight first.
func rank(state string) int {
	if inFlight(state) {
		return 0
	}
	return 1
}

func inFlight(state string) bool { return store.IsInFlight(state) }

// activity returns when each customer was added, from the partner activity
// log. The log only ever makes a customer older than its first sighting, so
// a failure here is logged and the pass goes on with sightings alone (and
// what earlier passes read). Only the first pass reads the log's 90 days;
// later ones read since the last read (see addedLog).
func (p *accountPass) activity(now time.Time) map[string]time.Time {
	if !p.acct.ActivityLog {
		return nil
	}
	log := p.e.addedLog(p.acct.Name)
	recs, err := p.pc.ListActivity(p.work, log.from(now), now)
	if err != nil {
		p.log.Warn("activity log unavailable; ages come from first sightings only", "error", err)
		return log.added
	}
	log.merge(recs, now)
	return log.added
}

func (p *accountPass) storeKeeps(ctx context.Context) ([]policy.StoreKeep, error) {
	ks, err := p.e.o.Store.Keeps(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]policy.StoreKeep, len(ks))
	for i, k := range ks {
		out[i] = policy.StoreKeep{CustomerID: k.CustomerID, Reason: k.Reason, Until: k.Until}
	}
	return out, nil
}

func (p *accountPass) newItem(st store.CustomerState, dec policy.Decision, age time.Duration, action, reason string) Item {
	return Item{Account: p.acct.Name, CustomerID: st.CustomerID, Domain: st.Domain, CompanyName: st.CompanyName,
		Policy: dec.Policy, Action: action, Reason: reason, Age: age}
}

// add appends an item and counts it; it returns the item's index.
func (p *accountPass) add(it Item, count func(*store.Counts)) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.items = append(p.items, it)
	count(&p.counts)
	return len(p.items) - 1
}

// finish sets the outcome of item i and counts it.
func (p *accountPass) finish(i int, outcome, errText string, count func(*store.Counts)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.items[i].Outcome = outcome
	p.items[i].Error = errText
	count(&p.counts)
}

func (p *accountPass) setOrders(i int, orders []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.items[i].Orders = orders
}

// event returns an event about a customer, stamped by record.
func (p *accountPass) event(st store.CustomerState, action, outcome string) store.Event {
	return store.Event{CustomerID: st.CustomerID, Domain: st.Domain, Policy: st.Policy, Action: action,
		Outcome: outcome, MSCorrelationID: st.CorrelationID}
}

func (p *accountPass) stamp(evs []store.Event) {
	now := p.e.o.Now()
	for i := range evs {
		evs[i].RunID = p.runID
		evs[i].Account = p.acct.Name
		if evs[i].At.IsZero() {
			evs[i].At = now
		}
	}
}

// record appends audit rows. Audit writes outlive a graceful stop, so they
// use a context that is not cancelled with ctx.
func (p *accountPass) record(ctx context.Context, evs ...store.Event) error {
	p.stamp(evs)
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	err := retryWrite(wctx, func() error { return p.e.o.Store.AppendEventsIf(wctx, store.Guard{Lease: p.lease}, evs...) })
	if err != nil {
		p.lostLease(err)
		p.log.Error("write audit rows", "error", err)
		return fmt.Errorf("write audit rows: %w", err)
	}
	p.emit(evs)
	return nil
}

// transition writes a customer's new state together with its audit rows,
// if the pass still holds the account's lease. A dry run never changes a
// customer's state: it writes the rows alone.
func (p *accountPass) transition(ctx context.Context, st store.CustomerState, evs ...store.Event) error {
	return p.write(ctx, store.Guard{Lease: p.lease}, st, evs...)
}

// intent writes the intent of a PATCH or DELETE like transition, and only if
// no reaper_keep row protects the customer at this moment (the last-moment
// re-check): else an error wrapping store.ErrProtected, and nothing written.
func (p *accountPass) intent(ctx context.Context, st store.CustomerState, evs ...store.Event) error {
	return p.write(ctx, store.Guard{Lease: p.lease, Unprotected: true}, st, evs...)
}

func (p *accountPass) write(ctx context.Context, g store.Guard, st store.CustomerState, evs ...store.Event) error {
	if p.dry {
		return p.record(ctx, evs...)
	}
	p.stamp(evs)
	st.Account = p.acct.Name
	if st.StateAt.IsZero() {
		st.StateAt = p.e.o.Now()
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	err := retryWrite(wctx, func() error { return p.e.o.Store.TransitionIf(wctx, g, st, evs...) })
	if err != nil {
		p.lostLease(err)
		p.log.Error("write customer state", "customer_id", st.CustomerID, "state", st.State, "error", err)
		return fmt.Errorf("record customer %s as %s: %w", st.CustomerID, st.State, err)
	}
	p.emit(evs)
	return nil
}

func (p *accountPass) emit(evs []store.Event) {
	if p.e.o.OnEvent == nil {
		return
	}
	for _, ev := range evs {
		p.e.o.OnEvent(ev)
	}
}

// reapAll works the candidates. limits.concurrency bounds the work in
// flight — a customer holds a slot while it makes a call or writes a step,
// and gives it back while it only waits for its orders to cancel (await) —
// so every candidate may be waiting at once while at most that many calls
// and steps run. Candidates are started in plan order, each as a slot comes
// free; after a graceful stop began no candidate is started.
func (p *accountPass) reapAll(ctx context.Context, cands []*candidate) {
	limit := p.e.o.Config.Limits.Concurrency
	if limit < 1 {
		limit = 1
	}
	p.slots = semaphore.NewWeighted(int64(limit))
	if !p.dry && len(cands) > 0 {
		p.cancels = p.model(ctx)
		defer p.saveModel(ctx, p.cancels)
	}
	var wg sync.WaitGroup
	for i, c := range cands {
		if !p.acquire(ctx) {
			for _, c := range cands[i:] {
				p.finish(c.item, OutcomeInterrupted, "graceful stop before this customer was started", func(*store.Counts) {})
			}
			break
		}
		wg.Go(func() { p.reap(ctx, c) })
	}
	wg.Wait()
}

// acquire takes a work slot; it returns false, holding none, once a
// graceful stop began.
func (p *accountPass) acquire(ctx context.Context) bool {
	if err := p.slots.Acquire(ctx, 1); err != nil {
		return false
	}
	if ctx.Err() != nil {
		p.slots.Release(1)
		return false
	}
	return true
}

// confirmGone settles customers that a crashed or stopped pass left in
// flight and that the (complete) listing no longer shows: most often the
// answer to our own DELETE was lost. A deletion is confirmed, never assumed:
// only a read of the customer's own resources answered 404, or 403 with code
// 20002 (no relationship any more), records it deleted.
func (p *accountPass) confirmGone(ctx context.Context, listed map[string]bool) {
	states, err := p.e.o.Store.InFlight(ctx, p.acct.Name)
	if err != nil {
		p.log.Warn("read customers in flight", "error", err)
		return
	}
	for _, st := range states {
		if listed[st.CustomerID] {
			continue
		}
		_, err := p.pc.ListOrders(pc.WithCorrelationID(p.work, st.CorrelationID), st.CustomerID)
		if !pc.IsAlreadyGone(err) {
			p.log.Warn("customer in flight is not listed but still answers", "customer_id", st.CustomerID, "state", st.State, "error", err)
			continue
		}
		ev := p.event(st, store.ActionDelete, store.OutcomeOK)
		ev.MSRequestID = st.PendingRequestID
		ev.HTTPStatus = pc.StatusCode(err)
		ev.Detail = fmt.Sprintf("confirmed gone: no longer listed and its orders answer %d %s (was %s)", pc.StatusCode(err), pc.ErrorCode(err), st.State)
		it := p.newItem(st, policy.Decision{Policy: st.Policy}, 0, ActionDelete, ev.Detail)
		if p.dry {
			ev.Outcome = store.OutcomeDryRun
			p.record(ctx, ev)
			continue
		}
		st.State, st.Reason, st.DeletedAt, st.StateAt = store.StateDeleted, "", p.e.o.Now(), p.e.o.Now()
		st.PendingAction, st.PendingOrderID, st.PendingRequestID = "", "", ""
		if err := p.transition(ctx, st, ev); err == nil {
			it.Outcome = OutcomeAlreadyGone
			p.add(it, func(c *store.Counts) { c.AlreadyGone++ })
		}
	}
}
