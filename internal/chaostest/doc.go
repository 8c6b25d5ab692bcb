// Package chaostest runs live passes of the real engine, on real stores,
// against the simulator in chaos mode (pcsim.Chaos: 5xx, answers lost after
// the work was done, 429 storms with Retry-After beyond the client's bound,
// tokens that stop working early, latency spikes, repeated and reordered
// listings) until the sandbox is clean, then checks the end state against
// the simulator's own record:
//
//	seed ─► pcsim (chaos) ◄─HTTP─ pc.Client ◄─ engine.Pass × N ─► store (SQLite, Postgres)
//	             │                                                   │
//	             └──── deleted customers, mutations per customer ────┴─► equal?
//
// Exactly the selected customers are deleted, none of the protected, young
// or unrelated ones receives a single PATCH or DELETE, and the audit's
// deletions and cancellations are the simulator's.
//
// The test's storms stay within the client's max_retry_wait. Known gap, left
// to the engine: when a storm beyond the bound meets the retry of a DELETE
// whose first answer was lost, the call ends throttled, the customer is
// recorded failed although it is gone, and no later pass confirms it (it is
// no longer listed). Raising StormRetryAfter above max_retry_wait reproduces it.
package chaostest
