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
	"sync/atomic"
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
	halted  atomic.Bool // a guard stopped the account after the listing (halt)

	mu     sync.Mutex
	report AccountReport
	items  []Item
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
		// Another daemon is the leader for this account: a stand-by's pass
		// is not a failure, but an apply or a dry run did not do its work.
		p.log.Info("another tipreaper works this account; skipping it this pass")
		p.report.Held = true
		p.report.Reason = "another tipreaper holds this account's lease"
		return
	}
	p.lease = &lease.lease
	defer func() {
		lease.release(ctx)
		if cause := context.Cause(ctx); errors.Is(cause, errLeaseLost) {
			p.log.Error("lost the account's lease mid-pass: stopped working it; the new holder resumes its customers", "error", cause)
			p.mu.Lock()
			p.report.Stopped = true
			p.report.Guard = GuardLease
			p.report.Reason = cause.Error() + "; another tipreaper may have taken it over and resumes its customers"
			p.mu.Unlock()
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

// maxClockSkew is how far the local clock may be from Partner Center's before
// a pass trusts neither: ages, grace periods and plan ages all come from it.
const maxClockSkew = 5 * time.Minute

// stop ends the account's pass before any mutating call and records why.
func (p *accountPass) stop(ctx context.Context, guard, reason string) {
	p.report.Stopped = true
	p.report.Guard = guard
	p.report.Reason = reason
	p.log.Error("guard stopped the account", "guard", guard, "reason", reason)
	_ = p.record(ctx, store.Event{Action: store.ActionGuard, Outcome: store.OutcomeError, Error: reason,
		Detail: "no customer of this account is touched this pass"})
}

// prepare lists, sights and classifies the account's customers, runs every
// guard over that classification, then the effects that come before the
// reaping (reconciliation, flags, unmarks, skips, marks, plan rows). It
// returns the candidates to reap, or ok=false when a guard stopped the
// account.
func (p *accountPass) prepare(ctx context.Context) (cands []*candidate, ok bool) {
	now := p.e.o.Now()
	customers, err := p.pc.ListCustomers(p.work)
	if err != nil {
		// pc's errors name the operation ("list customers: …") already.
		p.stop(ctx, GuardListing, err.Error())
		return nil, false
	}
	l, err := checkListing(customers)
	if err != nil {
		p.stop(ctx, GuardListingDefect, err.Error())
		return nil, false
	}
	for _, id := range l.collapsed {
		p.log.Warn("customer listed more than once with the same profile; counted once", "customer_id", id)
	}
	p.report.Listed = len(l.customers)
	// Before anything is written from the local clock (first sightings).
	if reason := p.clockGuard(); reason != "" {
		p.stop(ctx, GuardClock, reason)
		return nil, false
	}

	added := p.activity(now)
	sightings := make([]store.Sighting, len(l.customers))
	for i, c := range l.customers {
		sightings[i] = store.Sighting{CustomerID: c.ID, Domain: c.CompanyProfile.Domain, CompanyName: c.CompanyProfile.CompanyName}
	}
	states, err := p.e.o.Store.Sight(ctx, p.acct.Name, sightings, now)
	if err != nil {
		p.stop(ctx, GuardStore, fmt.Sprintf("record sightings: %v", err))
		return nil, false
	}
	p.resighted(ctx, states)
	keeps, err := storeKeeps(ctx, p.e.o.Store)
	if err != nil {
		p.stop(ctx, GuardStore, fmt.Sprintf("read reaper_keep: %v", err))
		return nil, false
	}
	byID := make(map[string]store.CustomerState, len(states))
	for _, s := range states {
		byID[strings.ToLower(s.CustomerID)] = s
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

	// Classification: pure, the same as `reaper why`.
	d := decider{cfg: p.e.o.Config, account: p.acct.Name, onlyPolicy: p.e.o.Policy, keeps: keeps, now: now}
	cls := make([]classified, 0, len(l.customers))
	listed := make(map[string]bool, len(l.customers))
	for _, c := range l.customers {
		st, found := byID[strings.ToLower(c.ID)]
		if !found {
			p.stop(ctx, GuardStore, fmt.Sprintf("the store returned no row for listed customer %s", c.ID))
			return nil, false
		}
		listed[st.CustomerID] = true
		f := facts{st: st, added: added[st.CustomerID]}
		cl := d.classify(f, planned)
		if p.e.ageFromOldRelationship(ctx, p.acct.Name, f, cl) {
			// Only a restart's first sighting counts (see ageFromOldRelationship).
			f.added = time.Time{}
			cl = d.classify(f, planned)
		}
		cls = append(cls, cl)
	}

	// Guards: nothing below this block may run for an account that trips one.
	if reason := fractionGuard(p.e.o.Config, p.acct.Name, cls); reason != "" {
		p.stop(ctx, GuardFraction, reason)
		return nil, false
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

	// Effects. First settle what earlier passes left unanswered.
	p.reconcile(ctx, listed)
	return p.effects(ctx, cls, planned, listed, now), true
}

// ageFromOldRelationship says whether the customer's age came from an
// activity log record older than a restart of its age: a customer that was
// absent from a complete listing and listed again (Sight restarted its
// first_seen, with a reappeared event) may be a relationship re-created with
// the same id, and the log's add record of the old one must not age the new
// one. Only customers the age would make act on are looked up; when the
// lookup fails, the restart is assumed (the customer only gets younger).
func (e *Engine) ageFromOldRelationship(ctx context.Context, account string, f facts, c classified) bool {
	if f.added.IsZero() || !f.added.Before(f.st.FirstSeen) || c.kind != kindMark && c.kind != kindPending && c.kind != kindExpired {
		return false
	}
	if f.st.Resighted {
		return true
	}
	evs, err := e.o.Store.CustomerEvents(ctx, f.st.CustomerID)
	if err != nil {
		e.log.Warn("read the customer's audit rows; its age counts from its first sighting", "account", account, "customer_id", f.st.CustomerID, "error", err)
		return true
	}
	return slices.ContainsFunc(evs, func(ev store.Event) bool {
		return ev.Action == store.ActionReappeared && ev.Account == account
	})
}

// resighted records the customers whose age Sight restarted.
func (p *accountPass) resighted(ctx context.Context, states []store.CustomerState) {
	for _, st := range states {
		if !st.Resighted {
			continue
		}
		// A reappeared row with outcome ok: listed again after an absence (one
		// with outcome error is a customer recorded deleted that came back).
		ev := p.event(st, store.ActionReappeared, store.OutcomeOK)
		ev.Detail = "absent from the previous complete listing and listed again: its age restarts at " + st.FirstSeen.UTC().Format(time.RFC3339)
		p.log.Info("customer listed again after an absence; its age restarts", "customer_id", st.CustomerID, "domain", st.Domain,
			"outcome", "resighted", "reason", ev.Detail)
		_ = p.record(ctx, ev)
	}
}

// clockGuard returns why the local clock cannot be trusted, or "": the Date
// headers of the answers so far (the listing's) against the local clock.
func (p *accountPass) clockGuard() string {
	r, ok := p.pc.ClockSkew()
	if !ok || max(r.Skew(), -r.Skew()) <= maxClockSkew {
		return ""
	}
	return fmt.Sprintf("the local clock reads %s while Partner Center's Date header reads %s (skew %s, more than %s): ages and grace periods cannot be trusted",
		r.Local.UTC().Format(time.RFC3339), r.Server.UTC().Format(time.RFC3339), r.Skew().Round(time.Second), maxClockSkew)
}

// effects writes what the classification decided for every customer that is
// not reaped (unmarks, flags, skips, marks) and returns, in working order,
// the candidates to reap, each with its plan row written.
func (p *accountPass) effects(ctx context.Context, cls []classified, planned map[string]store.PlanItem, listed map[string]bool, now time.Time) []*candidate {
	var work []classified
	for i := range cls {
		c := &cls[i]
		if c.clearMark {
			p.unmark(ctx, c, now)
		}
		switch c.kind {
		case kindIgnore:
		case kindReappeared:
			p.flagReappeared(ctx, *c, now)
		case kindNeedsPerson:
			it := p.newItem(c.st, c.dec, c.subj.Age, ActionSkip, c.reason)
			it.Outcome, it.Standing = OutcomeBlocked, true
			if c.st.State == store.StateReappeared {
				it.Outcome = OutcomeReappeared
			}
			p.add(it)
		case kindProtected, kindPlanChanged:
			// Protections and changed plans are audited every pass.
			it := p.newItem(c.st, c.dec, c.subj.Age, ActionSkip, c.reason)
			it.Outcome = OutcomeSkipped
			p.add(it)
			p.skipRow(ctx, it)
		case kindYoung:
			// Youth is not worth an audit row.
			it := p.newItem(c.st, c.dec, c.subj.Age, ActionSkip, c.reason)
			it.Outcome = OutcomeSkipped
			p.add(it)
		default:
			work = append(work, *c)
		}
	}
	if planned != nil {
		ids := make([]string, 0, len(planned))
		for id := range planned {
			if !listed[id] {
				ids = append(ids, id)
			}
		}
		slices.Sort(ids)
		for _, id := range ids {
			it := planned[id]
			sk := Item{Account: p.acct.Name, CustomerID: id, Domain: it.Domain, CompanyName: it.CompanyName, Policy: it.Policy,
				Action: ActionSkip, Reason: "plan no longer holds: the customer is no longer listed", Outcome: OutcomeSkipped}
			p.add(sk)
			p.skipRow(ctx, sk)
		}
	}

	slices.SortFunc(work, func(a, b classified) int {
		if c := cmp.Compare(rank(a.st.State), rank(b.st.State)); c != 0 {
			return c
		}
		if c := cmp.Compare(b.subj.Age, a.subj.Age); c != 0 {
			return c
		}
		return cmp.Compare(a.st.CustomerID, b.st.CustomerID)
	})
	var cands []*candidate
	deletes := 0
	maxDeletes := p.e.o.Config.Limits.MaxDeletesPerPass
	for _, c := range work {
		switch c.kind {
		case kindMark:
			p.mark(ctx, c, now)
		case kindPending:
			it := p.newItem(c.st, c.dec, c.subj.Age, ActionWait, c.reason)
			it.DeleteAt = c.dec.DeleteAt
			it.Outcome = OutcomePending
			p.add(it)
		case kindExpired:
			if maxDeletes > 0 && deletes >= maxDeletes {
				it := p.newItem(c.st, c.dec, c.subj.Age, ActionSkip,
					fmt.Sprintf("max_deletes_per_pass (%d) reached; waits for the next pass", maxDeletes))
				it.Outcome = OutcomeSkipped
				p.add(it)
				p.skipRow(ctx, it)
				continue
			}
			deletes++
			it := p.newItem(c.st, c.dec, c.subj.Age, ActionDelete, c.reason)
			it.selected = true
			idx := p.add(it)
			ev := p.event(c.st, store.ActionPlan, store.OutcomeOK)
			ev.Policy = c.dec.Policy
			ev.Detail = "delete: " + c.reason
			if p.dry {
				ev.Outcome = store.OutcomeDryRun
			}
			_ = p.record(ctx, ev)
			cands = append(cands, &candidate{state: c.st, dec: c.dec, age: c.subj.Age, item: idx})
		}
	}
	return cands
}

// unmark clears a customer's mark (and an in-flight state that a decision no
// longer backs): it needs a new mark and a full grace before it is deleted.
// A failed or blocked customer keeps its state; only the mark goes.
func (p *accountPass) unmark(ctx context.Context, c *classified, now time.Time) {
	st := c.st
	ev := p.event(st, store.ActionUnmark, store.OutcomeOK)
	switch {
	case c.kind == kindProtected:
		ev.Detail = "now protected; was " + st.State
	case c.st.State == store.StateFailed || c.st.State == store.StateBlocked:
		ev.Detail = "its mark is cleared after it " + st.State + ": it needs a new mark and a full grace"
	default:
		ev.Detail = "no longer selected or now protected; was " + st.State
	}
	if p.dry {
		ev.Outcome = store.OutcomeDryRun
		_ = p.record(ctx, ev)
		return
	}
	if st.State == store.StateMarked || inFlight(st.State) {
		st.State, st.Reason, st.StateAt = store.StateSeen, "no longer selected", now
	}
	st.MarkedAt, st.DeleteAfter = time.Time{}, time.Time{}
	if err := p.transition(ctx, st, ev); err == nil {
		c.st = st
	}
}

// flagReappeared records that a customer recorded deleted is listed again.
// It is never deleted again automatically.
func (p *accountPass) flagReappeared(ctx context.Context, c classified, now time.Time) {
	st := c.st
	it := p.newItem(st, policy.Decision{Policy: st.Policy}, 0, ActionSkip, c.reason)
	it.Outcome = OutcomeReappeared
	p.add(it)
	ev := p.event(st, store.ActionReappeared, store.OutcomeError)
	ev.Error = it.Reason
	if p.dry {
		_ = p.record(ctx, ev)
		return
	}
	st.State, st.Reason, st.StateAt = store.StateReappeared, it.Reason, now
	_ = p.transition(ctx, st, ev)
}

// mark records that a customer is selected and starts its grace.
func (p *accountPass) mark(ctx context.Context, c classified, now time.Time) {
	it := p.newItem(c.st, c.dec, c.subj.Age, ActionMark, c.reason)
	it.DeleteAt = c.dec.DeleteAt
	ev := p.event(c.st, store.ActionMark, store.OutcomeOK)
	ev.Policy = c.dec.Policy
	ev.Detail = "marked; deleted by a pass after " + c.dec.DeleteAt.UTC().Format(time.RFC3339) + " if still selected"
	if p.dry {
		it.Outcome = OutcomeWouldMark
		ev.Outcome = store.OutcomeDryRun
		p.add(it)
		_ = p.record(ctx, ev)
		return
	}
	st := c.st
	st.State, st.Reason, st.Policy, st.StateAt = store.StateMarked, c.dec.Reason, c.dec.Policy, now
	st.MarkedAt, st.DeleteAfter = now, c.dec.DeleteAt
	if err := p.transition(ctx, st, ev); err != nil {
		it.Outcome, it.Error = OutcomeFailed, err.Error()
	} else {
		it.Outcome = OutcomeMarked
	}
	p.add(it)
}

func (p *accountPass) skipRow(ctx context.Context, it Item) {
	_ = p.record(ctx, store.Event{Action: store.ActionSkip, Outcome: store.OutcomeSkipped, CustomerID: it.CustomerID,
		Domain: it.Domain, Policy: it.Policy, Detail: it.Reason})
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

// storeKeeps reads the reaper_keep rows as the policy takes them.
func storeKeeps(ctx context.Context, st store.Store) ([]policy.StoreKeep, error) {
	ks, err := st.Keeps(ctx)
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

// add appends an item, logs its outcome if it has one, and returns its index.
func (p *accountPass) add(it Item) int {
	p.mu.Lock()
	p.items = append(p.items, it)
	i := len(p.items) - 1
	p.mu.Unlock()
	p.logOutcome(it)
	return i
}

// finish sets the outcome of item i and logs it.
func (p *accountPass) finish(i int, outcome, errText string) {
	p.mu.Lock()
	p.items[i].Outcome = outcome
	p.items[i].Error = errText
	it := p.items[i]
	p.mu.Unlock()
	p.logOutcome(it)
}

func (p *accountPass) setItem(i int, set func(*Item)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	set(&p.items[i])
}

// loggedOutcomes are the outcomes a person may act on: each gets one log line.
var loggedOutcomes = map[string]slog.Level{
	OutcomeDeleted: slog.LevelInfo, OutcomeAlreadyGone: slog.LevelInfo, OutcomeMarked: slog.LevelInfo,
	OutcomeBlocked: slog.LevelWarn, OutcomeFailed: slog.LevelWarn, OutcomeReappeared: slog.LevelWarn,
	OutcomeSkipped: slog.LevelInfo,
}

// logOutcome writes the one structured line of a customer's outcome. Skips
// are logged only for protected customers (why a selected customer was not
// deleted); youth and caps are in the report.
func (p *accountPass) logOutcome(it Item) {
	level, ok := loggedOutcomes[it.Outcome]
	if !ok || it.Outcome == OutcomeSkipped && !strings.Contains(it.Reason, "protected") {
		return
	}
	reason := it.Reason
	if it.Error != "" {
		reason = it.Error
	}
	outcome := it.Outcome
	if outcome == OutcomeSkipped {
		outcome = "protected"
	}
	p.log.Log(context.Background(), level, "customer "+outcome, "customer_id", it.CustomerID, "domain", it.Domain,
		"policy", it.Policy, "outcome", outcome, "ms_request_id", it.RequestID, "reason", reason, "standing", it.Standing)
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

// writeAttempts bounds the tries of one audit write; writeBackoff is the
// wait before the second try, doubled for each later one.
const (
	writeAttempts = 3
	writeBackoff  = 200 * time.Millisecond
	writeTimeout  = 30 * time.Second
)

// write runs one audit write, retrying it (bounded) when it fails. Audit
// writes outlive a graceful stop, so they use a context that is not
// cancelled with ctx, with a timeout of their own. A write that still fails
// is counted: the pass ends partial and says so.
func (p *accountPass) write(ctx context.Context, what string, fn func(context.Context) error) error {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
	defer cancel()
	wait := writeBackoff
	var err error
	for attempt := 1; ; attempt++ {
		if err = fn(wctx); err == nil {
			return nil
		}
		if attempt == writeAttempts || errors.Is(err, store.ErrLeaseLost) || errors.Is(err, store.ErrProtected) {
			// A lost lease or a protection is an answer, not a fault: no retry.
			break
		}
		p.log.Warn("audit write failed; retrying", "write", what, "attempt", attempt, "wait_s", wait.Seconds(), "error", err)
		t := time.NewTimer(wait)
		select {
		case <-wctx.Done():
			t.Stop()
		case <-t.C:
		}
		if wctx.Err() != nil {
			break
		}
		wait *= 2
	}
	if errors.Is(err, store.ErrLeaseLost) || errors.Is(err, store.ErrProtected) {
		p.lostLease(err)
		return fmt.Errorf("%s: %w", what, err)
	}
	p.mu.Lock()
	p.report.AuditErrors++
	p.mu.Unlock()
	p.log.Error("audit write failed for good; the pass ends partial", "write", what, "error", err)
	return fmt.Errorf("%s: %w", what, err)
}

// record appends audit rows.
func (p *accountPass) record(ctx context.Context, evs ...store.Event) error {
	p.stamp(evs)
	err := p.write(ctx, "write audit rows", func(wctx context.Context) error {
		return retryWrite(wctx, func() error { return p.e.o.Store.AppendEventsIf(wctx, store.Guard{Lease: p.lease}, evs...) })
	})
	if err != nil {
		return err
	}
	p.emit(evs)
	return nil
}

// transition writes a customer's new state together with its audit rows,
// if the pass still holds the account's lease. A dry run never changes a
// customer's state: it writes the rows alone.
func (p *accountPass) transition(ctx context.Context, st store.CustomerState, evs ...store.Event) error {
	return p.writeState(ctx, store.Guard{Lease: p.lease}, st, evs...)
}

// intent writes the intent of a PATCH or DELETE like transition, and only if
// no reaper_keep row protects the customer at this moment (the last-moment
// re-check): else an error wrapping store.ErrProtected, and nothing written.
func (p *accountPass) intent(ctx context.Context, st store.CustomerState, evs ...store.Event) error {
	return p.writeState(ctx, store.Guard{Lease: p.lease, Unprotected: true}, st, evs...)
}

func (p *accountPass) writeState(ctx context.Context, g store.Guard, st store.CustomerState, evs ...store.Event) error {
	if p.dry {
		return p.record(ctx, evs...)
	}
	p.stamp(evs)
	st.Account = p.acct.Name
	if st.StateAt.IsZero() {
		st.StateAt = p.e.o.Now()
	}
	err := p.write(ctx, fmt.Sprintf("record customer %s as %s", st.CustomerID, st.State), func(wctx context.Context) error {
		return retryWrite(wctx, func() error { return p.e.o.Store.TransitionIf(wctx, g, st, evs...) })
	})
	if err != nil {
		return err
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

// halt stops the account from starting more customers this pass: a defect
// found after the listing (an order id of the wrong form). Customers already
// in flight finish their step as in a graceful stop.
func (p *accountPass) halt(ctx context.Context, guard, reason string) {
	p.mu.Lock()
	first := !p.report.Stopped
	p.report.Stopped = true
	if first {
		p.report.Guard, p.report.Reason = guard, reason
	}
	p.mu.Unlock()
	p.halted.Store(true)
	p.log.Error("guard stopped the account", "guard", guard, "reason", reason)
	_ = p.record(ctx, store.Event{Action: store.ActionGuard, Outcome: store.OutcomeError, Error: reason,
		Detail: "no further customer of this account is started this pass"})
}

// reapAll works the candidates with at most limits.concurrency in flight.
// After a graceful stop began, or a guard halted the account, no candidate
// is started.
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
		if p.halted.Load() || !p.acquire(ctx) {
			for _, c := range cands[i:] {
				if p.halted.Load() {
					p.finish(c.item, OutcomeSkipped, "not started: a guard stopped the account")
				} else {
					p.finish(c.item, OutcomeInterrupted, "graceful stop before this customer was started")
				}
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

// reconcile settles customers that an earlier pass left in a state that may
// hide a mutating call's effect (store.ReconcileStates: in flight, or failed)
// and that the (complete) listing no longer shows: most often the answer to
// our own DELETE, or the write of its result, was lost, or a DELETE that
// acted lost its answer and its retry failed for good (failed). A
// deletion is confirmed, never assumed: only a read of the customer's own
// resources answered 404, or 403 with code 20002 (no relationship any more),
// records it deleted, with the request id of the last DELETE it wrote as
// intent (read from the audit when the row no longer holds it); any other
// answer leaves the customer as it is, with a log line. Customers still
// listed are resumed by the reaping itself, under the same request ids.
func (p *accountPass) reconcile(ctx context.Context, listed map[string]bool) {
	states, err := p.e.o.Store.CustomersIn(ctx, p.acct.Name, store.ReconcileStates...)
	if err != nil {
		p.log.Warn("read customers in flight or failed; the next pass reconciles them", "error", err)
		return
	}
	for _, st := range states {
		if listed[st.CustomerID] {
			continue
		}
		_, err := p.pc.ListOrders(pc.WithCorrelationID(p.work, st.CorrelationID), st.CustomerID)
		if !pc.IsAlreadyGone(err) {
			p.log.Warn("customer not listed but not confirmed gone either: left as it is", "customer_id", st.CustomerID, "state", st.State, "error", err)
			continue
		}
		rid := st.PendingRequestID
		if rid == "" {
			rid = p.lastDeleteRequestID(ctx, st)
		}
		ev := p.event(st, store.ActionDelete, store.OutcomeOK)
		ev.MSRequestID = rid
		ev.HTTPStatus = pc.StatusCode(err)
		ev.Detail = fmt.Sprintf("confirmed gone: no longer listed and its orders answer %d %s (was %s)", pc.StatusCode(err), pc.ErrorCode(err), st.State)
		it := p.newItem(st, policy.Decision{Policy: st.Policy}, 0, ActionDelete, ev.Detail)
		it.RequestID = rid
		if p.dry {
			ev.Outcome = store.OutcomeDryRun
			_ = p.record(ctx, ev)
			continue
		}
		st.State, st.Reason, st.DeletedAt, st.StateAt = store.StateDeleted, "", p.e.o.Now(), p.e.o.Now()
		st.PendingAction, st.PendingOrderID, st.PendingRequestID = "", "", ""
		st.MarkedAt, st.DeleteAfter = time.Time{}, time.Time{}
		if err := p.transition(ctx, st, ev); err != nil {
			it.Error = "confirmed gone, but the result could not be recorded: " + err.Error()
		}
		// Partner Center confirmed it: gone, whether or not the row was written.
		it.Outcome = OutcomeAlreadyGone
		p.add(it)
	}
}

// lastDeleteRequestID is the request id of the customer's last DELETE in the
// audit since its first sighting (an earlier relationship's does not count),
// or "" when there is none or the audit cannot be read: it only names the
// call in the confirmation row.
func (p *accountPass) lastDeleteRequestID(ctx context.Context, st store.CustomerState) string {
	evs, err := p.e.o.Store.CustomerEvents(ctx, st.CustomerID)
	if err != nil {
		p.log.Warn("read the customer's audit rows; its confirmation names no DELETE", "customer_id", st.CustomerID, "error", err)
		return ""
	}
	rid := ""
	for _, ev := range evs {
		if ev.Account == st.Account && ev.Action == store.ActionDelete && ev.MSRequestID != "" && !ev.At.Before(st.FirstSeen) {
			rid = ev.MSRequestID
		}
	}
	return rid
}
