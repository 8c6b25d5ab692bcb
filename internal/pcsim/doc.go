// Package pcsim is a simulated Microsoft Partner Center integration sandbox:
// the token endpoints and the customer, order, entitlement and activity-log
// API that tipreaper uses, as one http.Handler. Every test, the demo and the
// benchmarks run against it.
//
// It is written from the wire contract (shared/partner-center-api.md), not
// from the client: it imports nothing of tipreaper and has its own wire
// types, so a client that works here works because it follows the contract.
// Where the contract says "unconfirmed", the simulator fixes one behaviour
// and the client must not depend on it.
//
// A request flows like this:
//
//	POST /{tenant}/oauth2/token         ─┐
//	POST /{tenant}/oauth2/v2.0/token    ─┴─ credentials → JWT-shaped token (kept with its tenant and expiry)
//
//	API request ── echo MS-RequestId / MS-CorrelationId, set MS-CV, log it
//	            ── bearer token issued here and unexpired?            no → 401
//	            ── /customers*: sliding 60 s window of the tenant full? → 429 + Retry-After (not counted)
//	            ── latency (wall clock, ends early when the caller goes away)
//	            ── injected failure "before"?                          → 500/503, nothing changed
//	            ── act on the state (customers, orders; time from Config.Now)
//	            ── injected failure "after"?                           → 500/503, the change stays
//	            ── the answer
//
// Time comes from Config.Now (a *Clock in tests), so order cancellation,
// token expiry, the rate-limit window and the activity log move only when
// the test moves the clock. An accepted cancel reads "pending" until the
// order's delay has passed, computed on read: the simulator starts no
// goroutines. Only latency is real time.
//
// Paging takes a snapshot at the first page; the continuation tokens walk
// that snapshot, so deletes during a listing neither skip nor repeat a
// customer (one deleted after the first page still appears, as it was, on a
// later page; acting on it then answers 404). A continuation token stays
// valid after use, so a retried page answers the same page. Next links
// alternate between /v1/customers?… and /customers?…, the two forms the
// contract names; the API is served under both.
//
// Tests read what happened from Requests (every request, token requests
// included, Authorization redacted), Stats and MutationsFor (PATCH and DELETE
// attempts per customer, counted on arrival whatever the answer), Customers
// and Order. FailNext and FailNextAfter inject 5xx answers deterministically.
//
// Error codes: `code` is a number on 403, 404 and 409 answers and a string on
// the others, because the contract says both are seen.
//
// # Seed file
//
// `reaper sim --seed FILE` loads a YAML list of customers with LoadSeed:
//
//	# seed.yaml
//	- id: 8f0c3a59-0f4e-4f51-9a51-5d1f0e6d2a10   # optional; generated from Config.Seed when absent
//	  domain: ci-1a2b3c4d.onmicrosoft.com        # required, unique
//	  company_name: CI run 7                     # optional
//	  age: 10d                                   # or created_at: 2025-03-01T12:00:00Z (or 2025-03-01); neither: added now
//	  orders:
//	    - type: reservedinstance                 # required: software | reservedinstance | subscription
//	      id: 4b3f…                              # optional, unique within the customer
//	      status: completed                      # optional: completed (default) | pending | cancelled | unknown
//	      age: 70d                               # or created_at; neither: the customer's creation time
//	      never_cancels: true                    # optional: PATCH is accepted, the order stays pending forever
//
// Ages take the units w, d, h, m and s (1d12h) and are measured from the
// server's clock when the customer is added. Unknown fields, a second YAML
// document, duplicate ids or domains and more than 75 customers are errors,
// each reported as "seed: line N: …".
package pcsim
