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
// It tracks a high quantile of that delay by stochastic approximation: a
// first poll that finds every order cancelled moves the expectation down by
// 3 %, one that finds an order pending moves it up by 30 %. The expectation
// settles where about one first poll in ten is early (p·ln 1.3 = (1−p)·ln
// (1/0.97) gives p ≈ 0.10), which keeps polls near one per customer without
// waiting much past the cancellation. A poll delayed by the rate limiter
// tells less than it seems, but only ever in the direction of "cancelled",
// so at worst the expectation drifts low and the next early polls lift it.
// The model lives on the Engine, so a daemon's passes keep what they learnt.
type cancelModel struct {
	mu     sync.Mutex
	expect time.Duration
	max    time.Duration
}

const (
	expectDown = 0.97
	expectUp   = 1.30
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
// pending: a quarter of the expectation, growing by half each round, capped.
func (m *cancelModel) nextWait(prev time.Duration, round int, capAt time.Duration) time.Duration {
	m.mu.Lock()
	step := max(m.expect/4, expectMin)
	m.mu.Unlock()
	if round > 1 {
		step = time.Duration(float64(prev) * (1.4 + 0.2*rand.Float64()))
	}
	return min(step, capAt)
}

// observe records what a customer's first poll found.
func (m *cancelModel) observe(allCancelled bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f := expectUp
	if allCancelled {
		f = expectDown
	}
	m.expect = min(max(time.Duration(float64(m.expect)*f), expectMin), m.max)
}
