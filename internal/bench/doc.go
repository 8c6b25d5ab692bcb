// Package bench measures a tipreaper pass at Partner Center's limits and
// compares it with the documented sample algorithm and with a lower bound.
//
// For each scenario it starts the simulator (internal/pcsim) on a loopback
// listener, seeds it, and runs ONE live engine pass through the real HTTP
// client with an SQLite store in a temporary directory; then, for the
// scenarios that ask for it, the sample algorithm of Microsoft's docs on a
// second, identically seeded simulator:
//
//	Scenario ──► sandbox (seeded customers, ids fixed) ──► pcsim #1 ──► engine.Pass ──► Result (tipreaper)
//	                                               └────► pcsim #2 ──► sample      ──► Result (sample)
//	Results ──► WriteTable: one Markdown table, the lower bounds, each target met or missed
//
// What is measured: wall time of the pass; API calls, 429s, peak requests
// per minute and peak in flight as the simulator counted them; polls
// (audit rows); process CPU (getrusage, user + system, simulator included);
// the peak heap above what was held before the pass (a sampling goroutine on
// runtime/metrics). After the pass the simulator is asked which customers
// remain: every expired customer must be gone and every other one present.
//
// The lower bound is the larger of the critical path of the slowest
// customer and the floor the sliding rate window puts under the calls the
// contract forces (see Bound). The fleet scenario (many accounts, zero
// latency) plans instead of deleting, repeated passes over an in-memory
// store, to measure CPU and heap per customer and that memory stays flat.
//
// `reaper bench` (internal/cli) runs it; BenchmarkFleetPlan is the same
// planning pass as a testing.B benchmark.
package bench
