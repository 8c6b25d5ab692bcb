package pcsim

import (
	"net/http"
	"strconv"
	"time"
)

// Chaos makes the simulator hostile in the ways a real Partner Center (or the
// network in front of it) can be: 5xx, answers lost after the work was done,
// 429 storms with long Retry-After, tokens that stop working early, latency
// spikes, and customer listings that repeat or reorder customers. Every
// fault is drawn from Config.Seed. The zero value injects nothing.
type Chaos struct {
	ServerErrors    float64          // fraction of API requests answered 500/503 before acting
	DroppedAnswers  float64          // fraction of PATCH/DELETE whose answer is lost after acting: half a 500, half a closed connection
	StormChance     float64          // chance per API request that a 429 storm starts
	StormLength     time.Duration    // how long a storm refuses every API request
	StormRetryAfter [2]time.Duration // min, max Retry-After of a storm's 429s (whole seconds, at least 1)
	TokenLife       time.Duration    // a token stops working this long after issue although it announces TokenTTL (401, the client refreshes)
	SpikeChance     float64          // fraction of API requests delayed by Spike on top of Latency
	Spike           time.Duration
	DuplicateChance float64 // chance a customer listing repeats one of its customers, byte for byte, later in the listing
	ReorderChance   float64 // chance a customer listing comes in another order
}

// DefaultChaos is what `reaper sim --chaos` serves: every fault often enough
// to meet in one pass over a demo sandbox, a few storms asking for more than
// the client's default longest retry wait (2m), so it gives up those calls.
func DefaultChaos() Chaos {
	return Chaos{
		ServerErrors:    0.08,
		DroppedAnswers:  0.15,
		StormChance:     0.01,
		StormLength:     5 * time.Second,
		StormRetryAfter: [2]time.Duration{2 * time.Second, 180 * time.Second},
		TokenLife:       5 * time.Second,
		SpikeChance:     0.05,
		Spike:           3 * time.Second,
		DuplicateChance: 0.3,
		ReorderChance:   0.5,
	}
}

// chaosFault is what chaos decided for one API request. Callers hold s.mu.
type chaosFault struct {
	storm   reply // 429 of a storm, when status != 0
	before  bool  // 5xx before acting
	after   bool  // answer lost after acting
	drop    bool  // lost by closing the connection (else a 500)
	latency time.Duration
}

// drawChaos decides the faults of one authenticated API request. Callers hold s.mu.
func (s *Server) drawChaos(r *http.Request, at time.Time) chaosFault {
	ch := s.cfg.Chaos
	var f chaosFault
	if ch == nil {
		return f
	}
	if at.Before(s.stormUntil) || (ch.StormChance > 0 && s.rng.Float64() < ch.StormChance) {
		if !at.Before(s.stormUntil) {
			s.stormUntil = at.Add(ch.StormLength)
		}
		lo, hi := ch.StormRetryAfter[0], ch.StormRetryAfter[1]
		d := lo
		if hi > lo {
			d += time.Duration(s.rng.Int64N(int64(hi - lo)))
		}
		secs := max(int((d+time.Second-1)/time.Second), 1)
		rp := jsonReply(http.StatusTooManyRequests, wireThrottle{
			StatusCode: http.StatusTooManyRequests,
			Message:    "Rate limit is exceeded. Try again in " + strconv.Itoa(secs) + " seconds.",
		})
		rp.header.Set("Retry-After", strconv.Itoa(secs))
		s.stats.throttled++
		f.storm = rp
		return f
	}
	if ch.SpikeChance > 0 && s.rng.Float64() < ch.SpikeChance {
		f.latency = ch.Spike
	}
	mutating := r.Method == http.MethodPatch || r.Method == http.MethodDelete
	switch {
	case ch.ServerErrors > 0 && s.rng.Float64() < ch.ServerErrors:
		f.before = true
	case mutating && ch.DroppedAnswers > 0 && s.rng.Float64() < ch.DroppedAnswers:
		f.after, f.drop = true, s.rng.IntN(2) == 1
	}
	if f.before || f.after {
		s.stats.failures++
	}
	return f
}

// chaosListing repeats and reorders a customer listing's snapshot. Callers hold s.mu.
func (s *Server) chaosListing(items []any) []any {
	ch := s.cfg.Chaos
	if ch == nil || len(items) == 0 {
		return items
	}
	if ch.ReorderChance > 0 && s.rng.Float64() < ch.ReorderChance {
		s.rng.Shuffle(len(items), func(i, j int) { items[i], items[j] = items[j], items[i] })
	}
	if ch.DuplicateChance > 0 && s.rng.Float64() < ch.DuplicateChance {
		i := s.rng.IntN(len(items))
		j := i + 1 + s.rng.IntN(len(items)-i) // a later position, possibly on a later page
		items = append(items[:j], append([]any{items[i]}, items[j:]...)...)
	}
	return items
}
