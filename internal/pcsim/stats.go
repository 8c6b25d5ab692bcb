package pcsim

import "maps"

// Stats is a snapshot of what the simulator has seen.
type Stats struct {
	ByMethod         map[string]int       // requests per HTTP method, token requests included
	Requests         map[string]int       // requests per "METHOD kind", kind one of token, customers, customer, orders, order, entitlements, auditrecords, unknown
	Mutations        map[string]Mutations // per customer id: PATCH and DELETE requests, counted on arrival whatever the answer
	MutatingCalls    int                  // every PATCH and DELETE on a customer path
	Throttled        int                  // 429s sent
	FailuresInjected int                  // 5xx sent by FailNext, FailNextAfter or FailureRate
	PeakPerMinute    int                  // most requests admitted in any 60 s window of one tenant on the rate-limited routes
	PeakInFlight     int                  // most requests being served at once
}

// Mutations counts the mutating requests aimed at one customer.
type Mutations struct {
	Patches int // PATCH of any of its orders
	Deletes int // DELETE of the customer
}

type counters struct {
	byMethod     map[string]int
	byRoute      map[string]int
	mutations    map[string]Mutations
	mutating     int
	throttled    int
	failures     int
	peakWindow   int
	peakInFlight int
}

func newCounters() counters {
	return counters{byMethod: map[string]int{}, byRoute: map[string]int{}, mutations: map[string]Mutations{}}
}

func (c *counters) count(method string, rt route) {
	c.byMethod[method]++
	c.byRoute[method+" "+rt.kind]++
}

func (c *counters) mutation(method, customerID string) {
	m := c.mutations[customerID]
	if method == "DELETE" {
		m.Deletes++
	} else {
		m.Patches++
	}
	c.mutations[customerID] = m
	c.mutating++
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{
		ByMethod:         maps.Clone(s.stats.byMethod),
		Requests:         maps.Clone(s.stats.byRoute),
		Mutations:        maps.Clone(s.stats.mutations),
		MutatingCalls:    s.stats.mutating,
		Throttled:        s.stats.throttled,
		FailuresInjected: s.stats.failures,
		PeakPerMinute:    s.stats.peakWindow,
		PeakInFlight:     s.stats.peakInFlight,
	}
}

// MutationsFor returns how many PATCH and DELETE requests were aimed at the
// customer, counted on arrival whatever the answer (a 401, 429 or injected
// failure still counts: a safety test must see every attempt).
func (s *Server) MutationsFor(customerID string) Mutations {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats.mutations[customerID]
}
