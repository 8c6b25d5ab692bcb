package engine

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/tipreaper/tipreaper/internal/store"
)

// cancelModel learns, per account, how long after a customer's last cancel
// its orders all read cancelled, so that the first poll comes when they most
// likely do: about one poll per customer instead of a round every
// poll_interval from the start.
//
// The expectation E tracks a high quantile of that delay. A first poll that
// finds every order cancelled lowers E to at most 0.97·E₀, E₀ being the
// expectation its wait was drawn from; one that finds an order pending,
// made t after the last cancel, raises E to at least 1.3·t. When each
// customer polls at the E of its time this is the usual stochastic quantile
// step, settling where about one first poll in ten is early (p·ln 1.3 =
// (1−p)·ln(1/0.97) gives p ≈ 0.10). Bounding by E₀ and t instead of
// multiplying E makes a burst of customers that polled from the same E₀
// count once rather than compound: twenty early polls at 1 s lift E to
// 1.3 s, not to 1.3²⁰ s. (Bounding a late poll by its t instead of E₀, as
// before, let the wait's jitter cancel most downward steps: the model
// settled near the maximum delay, about one early poll in sixty.) A poll
// delayed by the rate limiter can only read "cancelled" too often, so at
// worst E drifts low and the next early polls lift it. The model lives on
// the Engine, so a daemon's passes keep it.
//
// Until the first poll interval (the initial E) has been bracketed — some
// first poll was early and some was not — the steps are a geometric search
// instead (at least 2·t when early, at most 0.6·t when not), so a
// poll_interval far from the account's real delay costs a few polls, not
// dozens.
//
// The model is kept in the store (store.CancelTiming, reaper_cancel_timing)
// after every pass that taught it something, and read by the first pass of
// the next process, so a `reaper once` from cron starts warm. With no
// history it starts at poll_interval (default 500 ms: an early first poll
// that the search then backs off from).
type cancelModel struct {
	mu          sync.Mutex
	expect      time.Duration
	max         time.Duration
	early, late bool // some first poll found an order pending / found all cancelled
	changed     int  // observations since the model was read or last saved
}

const (
	expectDown = 0.97
	expectUp   = 1.30
	searchDown = 0.6
	searchUp   = 2.0
	expectMin  = 20 * time.Millisecond
)

// newCancelModel is a model with no history: first polls at first, never
// later than most.
func newCancelModel(first, most time.Duration) *cancelModel {
	most = max(most, expectMin)
	return &cancelModel{expect: min(max(first, expectMin), most), max: most}
}

// model returns the account's cancellation model. The first call of an
// Engine reads what an earlier process saved; without it (or when the read
// fails: the model is only an optimisation) the model starts cold at the
// configured poll interval.
func (p *accountPass) model(ctx context.Context) *cancelModel {
	e, account := p.e, p.acct.Name
	e.mu.Lock()
	m, ok := e.models[account]
	e.mu.Unlock()
	if ok {
		return m
	}
	lim := e.o.Config.Limits
	m = newCancelModel(time.Duration(lim.PollInterval), time.Duration(lim.CancelTimeout))
	ct, found, err := e.o.Store.CancelTiming(ctx, account)
	switch {
	case err != nil:
		p.log.Warn("read the learned cancellation time; polling starts cold", "error", err)
	case found:
		m.restore(ct)
		p.log.Debug("learned cancellation time read", "expect", m.expect, "saved_at", ct.UpdatedAt)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.models == nil {
		e.models = map[string]*cancelModel{}
	}
	if prev, ok := e.models[account]; ok {
		return prev
	}
	e.models[account] = m
	return m
}

// saveModel stores the account's model when this pass changed it, so that
// the next process starts where this one stopped. A failure is logged: the
// model is an optimisation, not a record.
func (p *accountPass) saveModel(ctx context.Context, m *cancelModel) {
	ct, ok := m.snapshot(p.acct.Name, p.e.o.Now())
	if !ok {
		return
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := p.e.o.Store.SaveCancelTiming(wctx, ct); err != nil {
		p.log.Warn("save the learned cancellation time", "error", err)
		return
	}
	m.saved(ct)
}

// restore takes over a saved timing, bounded by this configuration's max.
func (m *cancelModel) restore(ct store.CancelTiming) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.expect = min(max(ct.Expect, expectMin), m.max)
	m.early, m.late = ct.Early, ct.Late
	m.changed = 0
}

// snapshot returns the model as a store row; ok is false when nothing
// changed since it was read or saved.
func (m *cancelModel) snapshot(account string, now time.Time) (store.CancelTiming, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.changed == 0 {
		return store.CancelTiming{}, false
	}
	return store.CancelTiming{Account: account, Expect: m.expect, Early: m.early, Late: m.late, UpdatedAt: now}, true
}

// saved records that ct was stored; observations made meanwhile still count.
func (m *cancelModel) saved(ct store.CancelTiming) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.expect == ct.Expect && m.early == ct.Early && m.late == ct.Late {
		m.changed = 0
	}
}

// firstWait is when to poll first after the last cancel: the expectation
// plus up to 10 % jitter, so customers that cancelled together do not all
// poll in the same instant. base is the expectation it was drawn from, for
// observe.
func (m *cancelModel) firstWait() (wait, base time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.expect + time.Duration(rand.Int64N(int64(m.expect/10)+1)), m.expect
}

// nextWait is the wait before the next poll once a poll found an order
// pending, elapsed after the last cancel: until the (raised) expectation
// but at least a quarter of elapsed after the first poll, then growing by
// about half each round with jitter; never more than capAt.
func (m *cancelModel) nextWait(prev, elapsed time.Duration, round int, capAt time.Duration) time.Duration {
	if round > 1 {
		return min(time.Duration(float64(prev)*(1.4+0.2*rand.Float64())), capAt)
	}
	m.mu.Lock()
	until := m.expect - elapsed
	m.mu.Unlock()
	return min(max(until, elapsed/4, expectMin), capAt)
}

// observe records what a customer's first poll, made at t after its last
// cancel with a wait drawn from base (firstWait), found.
func (m *cancelModel) observe(t, base time.Duration, allCancelled bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.changed++
	if allCancelled {
		m.late = true
		down := expectDown
		if !m.early {
			down = searchDown
		}
		m.expect = min(m.expect, time.Duration(float64(min(t, base))*down))
	} else {
		m.early = true
		up := expectUp
		if !m.late {
			up = searchUp
		}
		m.expect = max(m.expect, time.Duration(float64(t)*up))
	}
	m.expect = min(max(m.expect, expectMin), m.max)
}
