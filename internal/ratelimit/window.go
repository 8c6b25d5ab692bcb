package ratelimit

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Stats is a snapshot of a Window's counters.
type Stats struct {
	Sent         int64 // slots granted by Acquire (requests allowed out)
	Throttled    int64 // calls to Throttled (429s reported)
	PeakInWindow int   // most slots occupied at once (in flight + released within the window)
	PeakInFlight int   // most slots acquired and not yet released at once
	Limit        int   // the effective limit now (≤ 0: unlimited)
}

// Window is a sliding-window limiter: at most limit requests in any window,
// counting each from Acquire until window after its release. It is safe for
// concurrent use. The zero value is not usable; call NewWindow.
type Window struct {
	window     time.Duration
	configured int // the limit asked for; ≤ 0 means unlimited

	mu          sync.Mutex
	limit       int         // effective limit: configured, or lower after a 429
	raisedAt    time.Time   // start of the current quiet window (for recovery after a 429)
	pausedUntil time.Time   // no grant before this instant (Retry-After)
	inFlight    int         // acquired, not yet released
	expiries    []time.Time // released slots, in expiry order (release time + window)
	waiters     []*waiter   // FIFO
	timer       *time.Timer // wakes the queue at the next event; nil when none is pending
	timerAt     time.Time
	timerGen    uint64 // tells a stale timer callback from the current one
	stats       Stats
}

type waiter struct {
	ready   chan struct{} // closed when the slot is granted
	granted bool
}

// NewWindow returns a limiter allowing limit requests per window.
// limit ≤ 0 means unlimited: Acquire returns at once.
func NewWindow(limit int, window time.Duration) *Window {
	if window <= 0 {
		// A zero window would make every released slot free at once, which
		// is what "unlimited rate, capped concurrency" means; keep it valid.
		window = 0
	}
	return &Window{window: window, configured: limit, limit: limit}
}

// Acquire blocks until a request may be sent, then returns release, which the
// caller must call once the response has been received (further calls are
// no-ops). It returns ctx.Err() if ctx ends first, and at once an error
// wrapping context.DeadlineExceeded when a 429 paused sending beyond ctx's
// deadline; no slot is then held.
func (w *Window) Acquire(ctx context.Context) (release func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	w.mu.Lock()
	now := time.Now()
	if w.configured <= 0 {
		w.take()
		w.mu.Unlock()
		return w.releaseFunc(), nil
	}
	w.advance(now)
	if len(w.waiters) == 0 && w.canGrant(now) {
		w.take()
		w.mu.Unlock()
		return w.releaseFunc(), nil
	}
	if deadline, ok := ctx.Deadline(); ok && w.pausedUntil.After(deadline) {
		// A 429 paused every send beyond the caller's deadline: waiting
		// for it could only end in the deadline, so say so now.
		paused := w.pausedUntil.Sub(now)
		w.mu.Unlock()
		return nil, fmt.Errorf("rate limit paused for %s after a 429, past the deadline: %w", paused.Round(time.Millisecond), context.DeadlineExceeded)
	}
	wt := &waiter{ready: make(chan struct{})}
	w.waiters = append(w.waiters, wt)
	w.schedule(now)
	w.mu.Unlock()

	select {
	case <-wt.ready:
		return w.releaseFunc(), nil
	case <-ctx.Done():
		w.mu.Lock()
		defer w.mu.Unlock()
		if wt.granted {
			// The grant raced the cancellation. No request will be sent on
			// this slot, so hand it back whole rather than hold it a window.
			w.inFlight--
			w.stats.Sent--
		} else {
			w.remove(wt)
		}
		w.dispatch(time.Now())
		return nil, ctx.Err()
	}
}

// Throttled reports a 429 carrying retryAfter: every send pauses until
// now+retryAfter, and the effective limit drops to 90 % of the slots now in
// the window (at least 1), from where it recovers by one per quiet window.
func (w *Window) Throttled(retryAfter time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	w.stats.Throttled++
	if w.configured <= 0 {
		return // unlimited: the caller's own Retry-After wait is all there is
	}
	w.advance(now)
	if until := now.Add(retryAfter); until.After(w.pausedUntil) {
		w.pausedUntil = until
	}
	lowered := max(w.occupied()*9/10, 1)
	if lowered < w.limit {
		w.limit = lowered
	}
	w.raisedAt = now // a 429 ends the quiet window
	w.dispatch(now)
}

// Stats returns a snapshot of the counters and the current effective limit.
func (w *Window) Stats() Stats {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.configured > 0 {
		w.advance(time.Now())
	}
	s := w.stats
	s.Limit = w.limit
	return s
}

// take occupies one slot. w.mu must be held.
func (w *Window) take() {
	w.inFlight++
	w.stats.Sent++
	w.stats.PeakInFlight = max(w.stats.PeakInFlight, w.inFlight)
	w.stats.PeakInWindow = max(w.stats.PeakInWindow, w.occupied())
}

func (w *Window) releaseFunc() func() {
	var once sync.Once
	return func() { once.Do(w.release) }
}

func (w *Window) release() {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	w.inFlight--
	if w.configured <= 0 {
		return
	}
	// Releases happen in time order and the window is constant, so appending
	// keeps expiries sorted.
	w.expiries = append(w.expiries, now.Add(w.window))
	w.advance(now)
	w.dispatch(now)
}

func (w *Window) occupied() int { return w.inFlight + len(w.expiries) }

// advance drops expired slots and applies the slow recovery of the limit.
// w.mu must be held.
func (w *Window) advance(now time.Time) {
	i := 0
	for i < len(w.expiries) && !w.expiries[i].After(now) {
		i++
	}
	w.expiries = w.expiries[i:]
	if w.limit < w.configured && w.window > 0 {
		if quiet := int(now.Sub(w.raisedAt) / w.window); quiet > 0 {
			w.limit = min(w.limit+quiet, w.configured)
			w.raisedAt = w.raisedAt.Add(time.Duration(quiet) * w.window)
		}
	} else if w.limit < w.configured {
		w.limit = w.configured
	}
}

func (w *Window) canGrant(now time.Time) bool {
	return !now.Before(w.pausedUntil) && w.occupied() < w.limit
}

// dispatch grants slots to waiters in FIFO order while capacity allows, then
// arms the timer for the next moment capacity may appear. w.mu must be held.
func (w *Window) dispatch(now time.Time) {
	w.advance(now)
	for len(w.waiters) > 0 && w.canGrant(now) {
		wt := w.waiters[0]
		w.waiters[0] = nil
		w.waiters = w.waiters[1:]
		wt.granted = true
		w.take()
		close(wt.ready)
	}
	w.schedule(now)
}

// schedule arms the single timer for the next event that can let the head
// waiter through: the end of a pause, the next slot expiry, or the next step
// of limit recovery. Without waiters, or when only a release can help (that
// calls dispatch itself), no timer is needed. w.mu must be held.
func (w *Window) schedule(now time.Time) {
	if len(w.waiters) == 0 {
		w.stopTimer()
		return
	}
	var next time.Time
	switch {
	case now.Before(w.pausedUntil):
		next = w.pausedUntil
	case len(w.expiries) > 0:
		next = w.expiries[0]
	}
	if w.limit < w.configured && w.window > 0 {
		if raise := w.raisedAt.Add(w.window); next.IsZero() || raise.Before(next) {
			next = raise
		}
	}
	if next.IsZero() {
		w.stopTimer()
		return
	}
	if w.timer != nil && w.timerAt.Equal(next) {
		return
	}
	w.stopTimer()
	w.timerGen++
	gen := w.timerGen
	w.timerAt = next
	w.timer = time.AfterFunc(next.Sub(now), func() { w.wake(gen) })
}

func (w *Window) stopTimer() {
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
		w.timerAt = time.Time{}
	}
}

func (w *Window) wake(gen uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if gen == w.timerGen {
		w.timer = nil
		w.timerAt = time.Time{}
	}
	// A stale callback (its timer was replaced after it fired) still
	// dispatches: that is harmless and never loses a wake-up.
	w.dispatch(time.Now())
}

func (w *Window) remove(wt *waiter) {
	for i, x := range w.waiters {
		if x == wt {
			w.waiters = append(w.waiters[:i], w.waiters[i+1:]...)
			return
		}
	}
}
