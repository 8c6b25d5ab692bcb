package engine

import (
	"math/rand/v2"
	"sync"
	"time"
)

// cancelModel learns, per account, how long after a customer's last cancel
// its orders all read cancelled, so that the first poll comes when they most
// likely do: about one poll per customer instead of a round every
// poll_interval from the start.
//
// The expectation E tracks a high quantile of that delay. A first poll made
// t after the last cancel that finds every order cancelled lowers E to at
// most 0.97·t; one that finds an order pending raises E to at least 1.3·t.
// When each customer polls at the E of its time this is the usual
// stochastic quantile step, settling where about one first poll in ten is
// early (p·ln 1.3 = (1−p)·ln(1/0.97) gives p ≈ 0.10). Bounding by t instead
// of multiplying E makes a burst of customers that polled at the same t
// count once rather than compound: twenty early polls at 1 s lift E to
// 1.3 s, not to 1.3²⁰ s. A poll delayed by the rate limiter can only read
// "cancelled" too often, so at worst E drifts low and the next early polls
// lift it. The model lives on the Engine, so a daemon's passes keep it.
//
// Until the first poll interval (the initial E) has been bracketed — some
// first poll was early and some was not — the steps are a geometric search
// instead (at least 2·t when early, at most 0.6·t when not), so a
// poll_interval far from the account's real delay costs a few polls, not
// dozens.
type cancelModel struct {
	mu          sync.Mutex
	expect      time.Duration
	max         time.Duration
	early, late bool // some first poll found an order pending / found all cancelled
}

const (
	expectDown = 0.97
	expectUp   = 1.30
	searchDown = 0.6
	searchUp   = 2.0
	expectMin  = 20 * time.Millisecond
)

// model returns the account's cancellation model, made on first use with
// the configured poll interval as the first expectation.
func (e *Engine) model(account string, first, most time.Duration) *cancelModel {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.models == nil {
		e.models = map[string]*cancelModel{}
	}
	m, ok := e.models[account]
	if !ok {
		m = &cancelModel{expect: max(first, expectMin), max: max(most, expectMin)}
		e.models[account] = m
	}
	return m
}

// firstWait is when to poll first after the last cancel: the expectation
// plus up to 10 % jitter, so customers that cancelled together do not all
// poll in the same instant.
func (m *cancelModel) firstWait() time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.expect + time.Duration(rand.Int64N(int64(m.expect/10)+1))
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
// cancel, found.
func (m *cancelModel) observe(t time.Duration, allCancelled bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if allCancelled {
		m.late = true
		down := expectDown
		if !m.early {
			down = searchDown
		}
		m.expect = min(m.expect, time.Duration(float64(t)*down))
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
