package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tipreaper/tipreaper/internal/pc"
	"github.com/tipreaper/tipreaper/internal/store"
)

// maxOrderAge is the sandbox's cancellation window: older orders cannot be
// cancelled, so their customer can never be deleted through the API.
const maxOrderAge = 60 * 24 * time.Hour

// Partner Center codes that mean an order can never be cancelled by us.
var uncancellable = map[string]string{
	"800061": "the order cannot be cancelled",
	"800063": "a subscription-based order: its subscription must be cancelled instead",
	"900117": "the order's cancellation window has passed (sandbox orders older than 60 days)",
}

// errStopped says a graceful stop ended a customer's work between steps.
var errStopped = errors.New("graceful stop")

// reaper carries one customer through cancel → poll → delete.
type reaper struct {
	p  *accountPass
	c  *candidate
	st store.CustomerState
	// open maps "cancel_order/<id>" and "delete" to the request id of an intent
	// that a crashed pass wrote but never answered: the resumed step reuses it.
	open map[string]string
	ctx  context.Context // graceful-stop signal
	work context.Context // API calls: outlives ctx by the drain timeout
	// holding says whether the customer holds one of the account's work
	// slots: from its start to its end, except while it waits in await.
	holding bool
}

// reap carries c through its steps. The caller took a work slot for it;
// reap gives it back when it returns.
func (p *accountPass) reap(ctx context.Context, c *candidate) {
	r := &reaper{p: p, c: c, st: c.state, ctx: ctx, open: map[string]string{}, holding: true}
	defer r.release()
	r.st.Policy = c.dec.Policy
	resuming := inFlight(r.st.State) && r.st.CorrelationID != ""
	if !resuming {
		r.st.CorrelationID = pc.NewGUID()
	}
	r.work = pc.WithCorrelationID(p.work, r.st.CorrelationID)

	if err := r.resume(resuming); err != nil {
		r.fail("resume", err)
		return
	}
	if err := r.run(); err != nil {
		switch {
		case errors.Is(err, errStopped):
			r.stopped()
		default:
			// fail and block record themselves; anything else is a failure.
			var done outcomeError
			if !errors.As(err, &done) {
				r.fail("reap", err)
			}
		}
	}
}

// outcomeError marks an error whose outcome (failed or blocked) is already recorded.
type outcomeError struct{ error }

func (r *reaper) run() error {
	orders, err := r.p.pc.ListOrders(r.work, r.st.CustomerID)
	if pc.IsAlreadyGone(err) {
		// Gone between the listing and now (another tool, a person, or our
		// own DELETE of an earlier pass whose answer was lost).
		return r.alreadyGone(err)
	}
	if err != nil {
		return r.fail("list orders", err)
	}
	if err := checkOrderIDs(r.st.CustomerID, orders); err != nil {
		r.p.halt(r.ctx, GuardListingDefect, err.Error())
		r.p.finish(r.c.item, OutcomeSkipped, "not touched: "+err.Error())
		return outcomeError{err}
	}
	now := r.p.e.o.Now()
	var active, old, toCancel []string
	for _, o := range orders {
		if o.Status == pc.StatusCancelled {
			continue
		}
		active = append(active, o.ID)
		if !o.CreationDate.IsZero() && now.Sub(o.CreationDate) > maxOrderAge {
			old = append(old, o.ID)
		}
		if o.Status != pc.StatusPending {
			toCancel = append(toCancel, o.ID)
		}
	}
	r.p.setItem(r.c.item, func(it *Item) { it.Orders = active })
	// Never cancel anything of a customer that can never be deleted.
	if len(old) > 0 {
		return r.block(fmt.Sprintf("orders %s are older than 60 days: the sandbox cannot cancel them, so the customer cannot be deleted through the API",
			strings.Join(old, ", ")), nil)
	}
	if r.p.dry {
		for _, id := range toCancel {
			ev := r.event(store.ActionCancelOrder, store.OutcomeDryRun)
			ev.OrderID = id
			_ = r.p.record(r.ctx, ev)
		}
		ev := r.event(store.ActionDelete, store.OutcomeDryRun)
		ev.Detail = fmt.Sprintf("after %d order(s) read cancelled", len(active))
		_ = r.p.record(r.ctx, ev)
		r.p.finish(r.c.item, OutcomeWouldDelete, "")
		return nil
	}
	if r.stopping() {
		return errStopped
	}
	if !inFlight(r.st.State) {
		r.st.State = store.StateSelected
		if err := r.transition(); err != nil {
			return r.fail("record selected", err)
		}
	}
	if len(toCancel) > 0 {
		r.st.State = store.StateCancelling
		for _, id := range toCancel {
			if r.stopping() {
				return errStopped
			}
			if err := r.cancel(id); err != nil {
				return err
			}
		}
	}
	if len(active) > 0 {
		if err := r.await(active); err != nil {
			return err
		}
	}
	if r.stopping() {
		return errStopped
	}
	return r.delete()
}

// resume writes a resume row for a customer a crashed or stopped pass left in
// flight and collects the intents it never answered.
func (r *reaper) resume(resuming bool) error {
	if !resuming {
		return nil
	}
	evs, err := r.p.e.o.Store.CustomerEvents(r.ctx, r.st.CustomerID)
	if err != nil {
		return fmt.Errorf("read the customer's audit rows: %w", err)
	}
	for _, ev := range evs {
		if ev.Account != r.p.acct.Name {
			continue
		}
		key := ev.Action
		if ev.Action == store.ActionCancelOrder {
			key += "/" + ev.OrderID
		} else if ev.Action != store.ActionDelete {
			continue
		}
		switch ev.Outcome {
		case store.OutcomeIntent:
			r.open[key] = ev.MSRequestID
		default:
			delete(r.open, key)
		}
	}
	// A call whose effect is unknown (cut off by a stop, or unanswered) left
	// its request id on the customer row: repeat it under that id.
	if rid := r.st.PendingRequestID; rid != "" {
		key := store.ActionDelete
		if r.st.PendingOrderID != "" {
			key = store.ActionCancelOrder + "/" + r.st.PendingOrderID
		}
		if _, ok := r.open[key]; !ok {
			r.open[key] = rid
		}
	}
	var open []string
	for k, rid := range r.open {
		open = append(open, k+" ("+rid+")")
	}
	slices.Sort(open)
	ev := r.event(store.ActionResume, store.OutcomeOK)
	if r.p.dry {
		// A dry run resumes nothing: it only says what a live pass would.
		ev.Outcome = store.OutcomeDryRun
	}
	ev.Detail = "resuming from state " + r.st.State
	if len(open) > 0 {
		ev.Detail += "; unanswered intents, repeated with their MS-RequestId: " + strings.Join(open, ", ")
	}
	return r.p.record(r.ctx, ev)
}

// cancel PATCHes one order, writing the intent first.
func (r *reaper) cancel(orderID string) error {
	key := store.ActionCancelOrder + "/" + orderID
	rid := r.open[key]
	if rid == "" {
		rid = pc.NewGUID()
	}
	r.st.PendingAction, r.st.PendingOrderID, r.st.PendingRequestID = store.ActionCancelOrder, orderID, rid
	intent := r.event(store.ActionCancelOrder, store.OutcomeIntent)
	intent.OrderID, intent.MSRequestID = orderID, rid
	if err := r.intent(intent); err != nil {
		return r.fail("record cancel intent", err)
	}
	o, err := r.p.pc.CancelOrder(pc.WithRequestID(r.work, rid), r.st.CustomerID, orderID)
	res := r.event(store.ActionCancelOrder, store.OutcomeOK)
	res.OrderID, res.MSRequestID = orderID, rid
	r.st.PendingAction, r.st.PendingOrderID, r.st.PendingRequestID = "", "", ""
	switch {
	case err == nil:
		res.HTTPStatus = 200
		res.Detail = "order reads " + o.Status
	case pc.ErrorCode(err) == "800060":
		res.HTTPStatus = pc.StatusCode(err)
		res.Detail = "cancellation already in progress"
	case pc.IsNotFound(err):
		res.HTTPStatus = pc.StatusCode(err)
		res.Detail = "order not found: nothing to cancel"
	default:
		res.Outcome = store.OutcomeError
		res.HTTPStatus = pc.StatusCode(err)
		res.Error = err.Error()
		if why, ok := uncancellable[pc.ErrorCode(err)]; ok {
			return r.block(fmt.Sprintf("order %s: %s", orderID, why), &res)
		}
		if r.stopping() && unanswered(err) {
			r.st.PendingOrderID, r.st.PendingRequestID = orderID, rid
			return r.cutByStop(res)
		}
		return r.fail("cancel order "+orderID, err, res)
	}
	if err := r.transition(res); err != nil {
		// The intent row stands: the next pass repeats the PATCH under the
		// same request id (Partner Center answers a repeated cancel alike).
		return r.unrecorded("record cancel result", err)
	}
	return nil
}

// await polls the order collection until every order reads cancelled,
// limits.cancel_timeout passes, or a graceful stop begins. One call per
// round covers all of the customer's orders. The first poll comes when the
// account's orders have been reading cancelled (cancelModel), later ones
// back off with jitter up to limits.poll_max.
func (r *reaper) await(ids []string) error {
	r.st.State = store.StateAwaitingCancel
	if err := r.transition(); err != nil {
		return r.fail("record awaiting_cancel", err)
	}
	lim := r.p.e.o.Config.Limits
	model := r.p.cancels
	wait, base := model.firstWait()
	since := time.Now() // the last cancel's answer: what the model's times count from
	maxWait := time.Duration(lim.PollMax)
	deadline := r.p.e.o.Now().Add(time.Duration(lim.CancelTimeout))
	seen := map[string]bool{}
	for round := 0; ; round++ {
		if left := deadline.Sub(r.p.e.o.Now()); wait > left {
			wait = max(left, 0)
		}
		// Waiting costs no slot: others call while this customer sleeps.
		r.release()
		t := time.NewTimer(wait)
		select {
		case <-r.ctx.Done():
			t.Stop()
			return errStopped
		case <-t.C:
		}
		if !r.p.acquire(r.ctx) {
			return errStopped
		}
		r.holding = true
		orders, err := r.p.pc.ListOrders(r.work, r.st.CustomerID)
		if err != nil {
			ev := r.event(store.ActionPoll, store.OutcomeError)
			ev.HTTPStatus, ev.Error = pc.StatusCode(err), err.Error()
			_ = r.p.record(r.ctx, ev)
			if !pc.IsRetryable(err) && !pc.IsThrottled(err) || r.p.e.o.Now().After(deadline) {
				return r.fail("poll orders", err)
			}
		} else {
			var waiting []string
			var cancelled []store.Event
			for _, o := range orders {
				if o.Status != pc.StatusCancelled {
					waiting = append(waiting, o.ID)
					continue
				}
				if !seen[o.ID] && slices.Contains(ids, o.ID) {
					seen[o.ID] = true
					ev := r.event(store.ActionOrderCancelled, store.OutcomeOK)
					ev.OrderID = o.ID
					cancelled = append(cancelled, ev)
				}
			}
			poll := r.event(store.ActionPoll, store.OutcomeOK)
			poll.Detail = fmt.Sprintf("%d of %d order(s) cancelled", len(orders)-len(waiting), len(orders))
			if err := r.p.record(r.ctx, append(cancelled, poll)...); err != nil {
				return r.unrecorded("record poll", err)
			}
			r.p.log.Debug("orders polled", "customer_id", r.st.CustomerID, "round", round,
				"after_s", time.Since(since).Seconds(), "pending", len(waiting))
			if round == 0 {
				model.observe(time.Since(since), base, len(waiting) == 0)
			}
			if len(waiting) == 0 {
				return nil
			}
			if r.p.e.o.Now().After(deadline) {
				return r.fail("await cancellation", fmt.Errorf("orders %s not cancelled within limits.cancel_timeout %s",
					strings.Join(waiting, ", "), time.Duration(lim.CancelTimeout)))
			}
		}
		wait = model.nextWait(wait, time.Since(since), round+1, maxWait)
	}
}

// delete DELETEs the customer, writing the intent first. A customer found
// already gone counts as deleted: that is also what a retry sees when the
// answer to our own DELETE was lost.
func (r *reaper) delete() error {
	rid := r.open[store.ActionDelete]
	if rid == "" {
		rid = pc.NewGUID()
	}
	r.st.State = store.StateDeleting
	r.st.PendingAction, r.st.PendingOrderID, r.st.PendingRequestID = store.ActionDelete, "", rid
	intent := r.event(store.ActionDelete, store.OutcomeIntent)
	intent.MSRequestID = rid
	if err := r.intent(intent); err != nil {
		return r.fail("record delete intent", err)
	}
	err := r.p.pc.DeleteCustomer(pc.WithRequestID(r.work, rid), r.st.CustomerID)
	res := r.event(store.ActionDelete, store.OutcomeOK)
	res.MSRequestID = rid
	switch {
	case err == nil:
		res.HTTPStatus = 204
	case pc.IsAlreadyGone(err):
		res.HTTPStatus = pc.StatusCode(err)
		res.Detail = fmt.Sprintf("already gone (HTTP %d %s)", pc.StatusCode(err), pc.ErrorCode(err))
	default:
		res.Outcome = store.OutcomeError
		res.HTTPStatus, res.Error = pc.StatusCode(err), err.Error()
		if r.stopping() && unanswered(err) {
			r.st.PendingAction = ""
			return r.cutByStop(res)
		}
		if unanswered(err) || pc.IsUnauthorized(err) && pc.StatusCode(err) == 401 || pc.IsThrottled(err) {
			// Partner Center may have deleted it and every answer was lost
			// (also when the client's last retry ended in a 401 or 429: an
			// earlier attempt of the same call may have acted). The
			// customer stays deleting, so that the next pass confirms it gone by
			// a read once it is no longer listed (a failed customer that is not
			// listed is never looked at again). The call has its result row, so
			// nothing is pending; the request id stays for the confirmation row.
			r.st.PendingAction = ""
			return r.failInFlight("delete customer", err, res)
		}
		r.st.PendingAction, r.st.PendingRequestID = "", ""
		if pc.StatusCode(err) == 403 {
			return r.block("DELETE refused with 403: the app lacks the rights for this customer", &res)
		}
		return r.fail("delete customer", err, res)
	}
	outcome := OutcomeDeleted
	if err != nil {
		outcome = OutcomeAlreadyGone
	}
	r.p.setItem(r.c.item, func(it *Item) { it.RequestID = rid })
	now := r.p.e.o.Now()
	r.st.State, r.st.Reason, r.st.DeletedAt = store.StateDeleted, "", now
	r.st.PendingAction, r.st.PendingRequestID = "", ""
	r.st.MarkedAt, r.st.DeleteAfter = time.Time{}, time.Time{}
	if werr := r.transition(res); werr != nil {
		// Partner Center deleted it: that is what the report says. The row
		// keeps its deleting state and DELETE intent, and the next pass
		// confirms the deletion by a read, with this request id.
		r.p.finish(r.c.item, outcome, "deleted, but its result could not be recorded (the next pass reconciles it): "+werr.Error())
		return nil
	}
	r.p.finish(r.c.item, outcome, "")
	return nil
}

func (r *reaper) stopping() bool { return r.ctx.Err() != nil }

// release gives the customer's work slot back, if it holds one.
func (r *reaper) release() {
	if r.holding {
		r.holding = false
		r.p.slots.Release(1)
	}
}

func (r *reaper) event(action, outcome string) store.Event {
	return store.Event{CustomerID: r.st.CustomerID, Domain: r.st.Domain, Policy: r.st.Policy, Action: action,
		Outcome: outcome, MSCorrelationID: r.st.CorrelationID}
}

func (r *reaper) transition(evs ...store.Event) error {
	r.st.StateAt = r.p.e.o.Now()
	return r.p.transition(r.ctx, r.st, evs...)
}

// intent writes the intent row of a PATCH or DELETE, re-checking in the same
// transaction that the pass still leads and that no keep protects the customer.
func (r *reaper) intent(ev store.Event) error {
	r.st.StateAt = r.p.e.o.Now()
	return r.p.intent(r.ctx, r.st, ev)
}

// fail records the customer as failed, with the failed call's result row
// if there is one: the next pass tries it again, after a new mark and a full
// grace if its policy has one. A write refused because a keep now protects
// the customer or the pass lost the account's lease is not a failure of the
// customer (see protectedNow, leaseLost).
func (r *reaper) fail(step string, cause error, result ...store.Event) error {
	switch {
	case errors.Is(cause, store.ErrProtected):
		return r.protectedNow(cause)
	case errors.Is(cause, store.ErrLeaseLost):
		return r.leaseLost(step, cause)
	}
	reason := fmt.Sprintf("%s: %v", step, cause)
	ev := r.event(store.ActionFail, store.OutcomeError)
	ev.HTTPStatus, ev.Error = pc.StatusCode(cause), reason
	if !r.p.dry {
		r.st.State, r.st.Reason = store.StateFailed, reason
		r.st.PendingAction, r.st.PendingOrderID, r.st.PendingRequestID = "", "", ""
		r.st.MarkedAt, r.st.DeleteAfter = time.Time{}, time.Time{}
	}
	if err := r.transition(append(result, ev)...); err != nil {
		reason += "; " + err.Error() + " (the next pass resumes it from its recorded state)"
	}
	r.p.finish(r.c.item, OutcomeFailed, reason)
	return outcomeError{errors.New(reason)}
}

// unrecorded ends the customer's work for this pass after the result of a
// call that was answered could not be written: the customer keeps its
// in-flight state and intent row, from which the next pass resumes it (or,
// if it is gone by then, confirms it by a read).
func (r *reaper) unrecorded(step string, cause error) error {
	reason := fmt.Sprintf("%s: %v; the next pass resumes it from its recorded state", step, cause)
	r.p.finish(r.c.item, OutcomeFailed, reason)
	return outcomeError{errors.New(reason)}
}

// alreadyGone records a customer that a read of its own resources found gone
// before its DELETE: already_gone, not failed.
func (r *reaper) alreadyGone(cause error) error {
	ev := r.event(store.ActionDelete, store.OutcomeOK)
	ev.HTTPStatus = pc.StatusCode(cause)
	ev.Detail = fmt.Sprintf("already gone when its orders were listed (HTTP %d %s)", pc.StatusCode(cause), pc.ErrorCode(cause))
	if rid := r.st.PendingRequestID; r.st.PendingAction == store.ActionDelete && rid != "" {
		ev.MSRequestID = rid
		r.p.setItem(r.c.item, func(it *Item) { it.RequestID = rid })
	}
	if r.p.dry {
		ev.Outcome = store.OutcomeDryRun
		_ = r.p.record(r.ctx, ev)
		r.p.finish(r.c.item, OutcomeAlreadyGone, "")
		return nil
	}
	r.st.State, r.st.Reason, r.st.DeletedAt = store.StateDeleted, "", r.p.e.o.Now()
	r.st.PendingAction, r.st.PendingOrderID, r.st.PendingRequestID = "", "", ""
	r.st.MarkedAt, r.st.DeleteAfter = time.Time{}, time.Time{}
	errText := ""
	if err := r.transition(ev); err != nil {
		errText = "gone, but its result could not be recorded: " + err.Error()
	}
	r.p.finish(r.c.item, OutcomeAlreadyGone, errText)
	return nil
}

// failInFlight records a failed step whose effect is unknown, together with
// its result row: the customer keeps its in-flight state, so that the next
// pass resumes it or confirms its effect.
func (r *reaper) failInFlight(step string, cause error, result store.Event) error {
	reason := fmt.Sprintf("%s: %v", step, cause)
	ev := r.event(store.ActionFail, store.OutcomeError)
	ev.HTTPStatus, ev.Error = pc.StatusCode(cause), reason
	r.st.Reason = reason
	if err := r.transition(result, ev); err != nil {
		reason += "; " + err.Error()
	}
	r.p.finish(r.c.item, OutcomeFailed, reason)
	return outcomeError{errors.New(reason)}
}

// unanswered says whether a call may have taken effect without its answer
// reaching us: a 5xx, a network failure or timeout, or the end of the drain.
func unanswered(err error) bool {
	return pc.IsRetryable(err) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// block records the customer as blocked: it needs a person and is not
// retried by later passes.
func (r *reaper) block(reason string, result *store.Event) error {
	var evs []store.Event
	if result != nil {
		evs = append(evs, *result)
	}
	ev := r.event(store.ActionBlock, store.OutcomeError)
	ev.Error = reason
	if r.p.dry {
		ev.Outcome = store.OutcomeDryRun
	}
	evs = append(evs, ev)
	if !r.p.dry {
		r.st.State, r.st.Reason = store.StateBlocked, reason
		r.st.PendingAction, r.st.PendingOrderID, r.st.PendingRequestID = "", "", ""
		r.st.MarkedAt, r.st.DeleteAfter = time.Time{}, time.Time{}
	}
	errText := reason
	if err := r.transition(evs...); err != nil {
		errText += "; " + err.Error()
	}
	r.p.finish(r.c.item, OutcomeBlocked, errText)
	return outcomeError{errors.New(reason)}
}

// cutByStop records a call that the end of the drain cut off: its result
// row, and the customer kept in its state with the call's request id, so the
// next pass repeats it under the same MS-RequestId or confirms its effect.
// It is an interruption, not a failure.
func (r *reaper) cutByStop(result store.Event) error {
	stop := r.event(store.ActionStop, store.OutcomeOK)
	stop.Detail = "graceful stop cut this call off; the next pass resumes from state " + r.st.State
	r.st.PendingAction = ""
	errText := ""
	if err := r.transition(result, stop); err != nil {
		errText = err.Error()
	}
	r.p.finish(r.c.item, OutcomeInterrupted, errText)
	return outcomeError{errStopped}
}

// stopped records that a graceful stop left the customer where it is; the
// next pass resumes it from its state.
func (r *reaper) stopped() {
	ev := r.event(store.ActionStop, store.OutcomeOK)
	ev.Detail = "graceful stop; the next pass resumes from state " + r.st.State
	errText := ""
	if err := r.p.record(r.ctx, ev); err != nil {
		errText = err.Error()
	}
	r.p.finish(r.c.item, OutcomeInterrupted, errText)
}

// protectedNow stops a customer that a keep protected during the pass, where
// it is: no further PATCH or DELETE, its mark cleared (a new mark and a full
// grace are needed after the keep lapses), an unmark row saying so. Orders it
// already cancelled stay cancelled.
func (r *reaper) protectedNow(cause error) error {
	_, keep, _ := strings.Cut(cause.Error(), store.ErrProtected.Error()+": ")
	reason := "protected during the pass (" + keep + "); its orders may already be cancelled"
	ev := r.event(store.ActionUnmark, store.OutcomeOK)
	ev.Detail = reason + "; was " + r.st.State
	r.st.State, r.st.Reason = store.StateSeen, reason
	r.st.MarkedAt, r.st.DeleteAfter = time.Time{}, time.Time{}
	r.st.PendingAction, r.st.PendingOrderID, r.st.PendingRequestID = "", "", ""
	errText := reason
	if err := r.transition(ev); err != nil {
		errText += "; " + err.Error()
	}
	r.p.log.Warn("customer protected during the pass: stopped before its next call", "customer_id", r.st.CustomerID, "keep", keep)
	r.p.finish(r.c.item, OutcomeSkipped, errText)
	return outcomeError{errors.New(reason)}
}

// leaseLost stops a customer whose write the fence refused: another
// tipreaper leads the account now and resumes it from its recorded state.
// Nothing can be written any more.
func (r *reaper) leaseLost(step string, cause error) error {
	reason := fmt.Sprintf("%s: %v", step, cause)
	r.p.finish(r.c.item, OutcomeInterrupted, reason)
	return outcomeError{errors.New(reason)}
}
