package bench

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/tipreaper/tipreaper/internal/engine"
)

// BenchmarkFleetPlan is one planning pass over a fleet of simulated
// sandboxes (50 accounts × 75 customers, zero latency, in-memory store),
// the fleet scenario of `reaper bench` at a size a benchmark repeats. One
// op is one pass. The simulators run in a child process, so the CPU
// (getrusage of this process) and the allocations are the reaper's alone:
// cpu-µs/customer and B/customer divide them by the customers planned.
func BenchmarkFleetPlan(b *testing.B) {
	s := scenario("fleet", false)
	s.Accounts = 50
	f, err := startFleet(b.Context(), s, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	defer f.stop()
	cfg := s.config(f.ids, f.bases, "")
	cs := &clients{limit: cfg.Limits.RequestsPerMinute}
	eng := engine.New(engine.Options{Config: cfg, Store: newMemStore(), Connect: cs.connect, Logger: slog.New(slog.DiscardHandler)})
	ctx := context.Background()
	if _, err := eng.Pass(ctx); err != nil { // warm-up: marks the expired customers, fetches tokens
		b.Fatal(err)
	}
	n := f.customers()
	b.ReportAllocs()
	b.ResetTimer()
	cpu0, alloc0 := cpuTime(), allocated()
	for b.Loop() {
		rep, err := eng.Pass(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if rep.Counts.Listed != n {
			b.Fatalf("listed %d of %d", rep.Counts.Listed, n)
		}
	}
	cpu := cpuTime() - cpu0
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N*n), "cpu-µs/customer")
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*n), "µs/customer")
	b.ReportMetric(float64(allocated()-alloc0)/float64(b.N*n), "B/customer")
}
