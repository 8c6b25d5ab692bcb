package bench

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// WriteTable prints the results as one Markdown table, then the lower
// bounds with their terms, then each target met or missed.
func WriteTable(w io.Writer, rs []Result) {
	fmt.Fprintln(w, "| scenario | run | deleted/listed | live orders | wall | calls | calls/customer | calls/order | polls | 429s | peak/min | peak in flight | CPU | CPU/customer | peak heap | heap/customer | lower bound | × bound | × bound w/o poll | × sample |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rs {
		sampleWall := sampleOf(rs, r.Scenario.Name)
		cust := r.Selected
		if r.Scenario.Fleet {
			cust = r.Listed
		}
		row := []string{
			r.Scenario.Name, r.Algorithm,
			fmt.Sprintf("%d/%d", r.Deleted, r.Listed),
			fmt.Sprint(r.Orders),
			dur(r.Wall),
			fmt.Sprint(r.Calls),
			ratio(float64(r.Calls), float64(cust)),
			ratio(float64(r.Calls), float64(r.Orders)),
			fmt.Sprint(r.Polls),
			throttled(r),
			fmt.Sprint(r.PeakPerMinute),
			fmt.Sprint(r.PeakInFlight),
			dur(r.CPU),
			micros(r.cpuPerCustomer()),
			bytesOf(r.PeakHeap),
			bytesOf(r.heapPerCustomer()),
			dash(r.Bound.Lower() > 0, func() string { return dur(r.Bound.Lower()) }),
			dash(r.Bound.Lower() > 0, func() string { return times(r.Wall, r.Bound.Lower()) }),
			dash(r.Bound.LowerNoPoll() > 0, func() string { return times(r.Wall, r.Bound.LowerNoPoll()) }),
			dash(sampleWall > 0 && r.Algorithm == AlgoEngine, func() string { return fmt.Sprintf("%.1f× faster", float64(sampleWall)/float64(r.Wall)) }),
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(row, " | "))
	}
	fmt.Fprintln(w)
	for _, r := range rs {
		if r.Algorithm != AlgoEngine {
			continue
		}
		s := r.Scenario
		fmt.Fprintf(w, "%s: %s; engine limits: concurrency %d, requests_per_minute %d, poll_interval %s, poll_max %s; store %s\n",
			s.Name, s.Description, s.Concurrency, s.ClientRate, s.PollInterval, s.PollMax, storeName(s))
		if b := r.Bound; b.Lower() > 0 {
			fmt.Fprintf(w, "%s lower bound: critical path (%d pages + 1 + %d PATCHes + 1 poll + 1 DELETE) × %s + %s = %s; "+
				"rate floor W=%d/min: N=%d calls → %s, without the poll N=%d → %s\n",
				r.Scenario.Name, b.Pages, b.MaxOrders, dur(b.Latency), dur(b.MaxDelay), dur(b.Critical),
				b.Cap, b.Calls, dur(b.Floor), b.CallsNoPoll, dur(b.FloorNoPoll))
		}
		if r.Scenario.Fleet {
			fmt.Fprintf(w, "%s: %d passes of %d customers; live heap after pass 1 %s, after pass %d %s (%+d B, %+.1f B/customer); %d audit rows\n",
				r.Scenario.Name, r.Passes, r.Listed, bytesOf(r.HeapFirst), r.Passes, bytesOf(r.HeapLast),
				int64(r.HeapLast)-int64(r.HeapFirst), float64(int64(r.HeapLast)-int64(r.HeapFirst))/float64(r.Listed), r.AuditRows)
		}
		if r.LimitFrom > 0 && r.ClientThrottled > 0 {
			fmt.Fprintf(w, "%s: the client saw %d 429s; its window's limit went from %d to %d\n", r.Scenario.Name, r.ClientThrottled, r.LimitFrom, r.LimitAfter)
		}
	}
	fmt.Fprintln(w)
	quick := false
	for _, r := range rs {
		quick = quick || r.Scenario.Quick
	}
	if quick {
		fmt.Fprintln(w, "targets: not evaluated on a quick run")
	} else {
		fmt.Fprintln(w, "targets:")
	}
	for _, t := range Targets(rs) {
		if quick {
			break
		}
		mark := "met   "
		if !t.Met {
			mark = "MISSED"
		}
		fmt.Fprintf(w, "  %s %s: %s\n", mark, t.Name, t.Measured)
	}
	for _, r := range rs {
		for _, p := range r.Problems {
			fmt.Fprintf(w, "  PROBLEM %s %s: %s\n", r.Scenario.Name, r.Algorithm, p)
		}
	}
}

// Target is one of the targets and how the run measured against it.
type Target struct {
	Name     string
	Met      bool
	Measured string
}

// Targets evaluates the targets on the results present.
func Targets(rs []Result) []Target {
	var ts []Target
	for _, r := range rs {
		if r.Algorithm != AlgoEngine {
			continue
		}
		s := r.Scenario
		done := len(r.Problems) == 0
		switch {
		case s.Name == "full":
			lb := r.Bound.Lower()
			ts = append(ts,
				Target{"full: wall ≤ 1.25 × lower bound", done && r.Wall <= lb*5/4, fmt.Sprintf("%s = %s × %s", dur(r.Wall), times(r.Wall, lb), dur(lb))},
				Target{"full: ≤ 2 API calls per live order", r.Calls <= 2*r.Orders, fmt.Sprintf("%s (%d calls, %d orders)", ratio(float64(r.Calls), float64(r.Orders)), r.Calls, r.Orders)},
				Target{"full: zero 429s", r.Throttled == 0 && r.ClientThrottled == 0, fmt.Sprintf("%d", r.Throttled)})
		case s.Name == "small":
			if sw := sampleOf(rs, s.Name); sw > 0 {
				x := float64(sw) / float64(r.Wall)
				ts = append(ts, Target{"small: ≥ 20 × faster than the sample", done && x >= 20, fmt.Sprintf("%.1f× (%s vs %s)", x, dur(r.Wall), dur(sw))})
			}
		case s.Name == "defaults":
			lb := r.Bound.Lower()
			ts = append(ts, Target{"defaults: wall ≤ 2 × lower bound", done && r.Wall <= 2*lb, fmt.Sprintf("%s = %s × %s", dur(r.Wall), times(r.Wall, lb), dur(lb))})
			if sw := sampleOf(rs, s.Name); sw > 0 {
				x := float64(sw) / float64(r.Wall)
				ts = append(ts, Target{"defaults: ≥ 30 × faster than the sample", done && x >= 30, fmt.Sprintf("%.1f× (%s vs %s)", x, dur(r.Wall), dur(sw))})
			}
		case s.Name == "full-defaults":
			lb := r.Bound.Lower()
			ts = append(ts,
				Target{"full at the defaults: wall ≤ 1.15 × lower bound", done && r.Wall <= lb*115/100, fmt.Sprintf("%s = %s × %s", dur(r.Wall), times(r.Wall, lb), dur(lb))},
				Target{"full at the defaults: ≤ 2 API calls per live order", r.Calls <= 2*r.Orders, fmt.Sprintf("%s (%d calls, %d orders)", ratio(float64(r.Calls), float64(r.Orders)), r.Calls, r.Orders)},
				Target{"full at the defaults: zero 429s", r.Throttled == 0 && r.ClientThrottled == 0, fmt.Sprintf("%d", r.Throttled)})
		case s.Name == "throttled":
			ts = append(ts,
				Target{"throttled: no request beyond the cap", r.Throttled == 0 && r.PeakPerMinute <= s.ClientRate, fmt.Sprintf("peak %d/min of %d, %d 429s", r.PeakPerMinute, s.ClientRate, r.Throttled)},
				Target{"throttled: the pass completes", done, problems(r)})
			if fl := r.Bound.Floor; fl > 0 {
				ts = append(ts, Target{"throttled: wall ≤ 1.2 × the rate floor", done && r.Wall <= fl*6/5, fmt.Sprintf("%s = %s × %s", dur(r.Wall), times(r.Wall, fl), dur(fl))})
			}
		case s.Name == "throttled-below-cap":
			ts = append(ts, Target{"throttled below the cap: adapts and completes", done,
				fmt.Sprintf("%s; %d 429s; client limit %d → %d", problems(r), r.Throttled, r.LimitFrom, r.LimitAfter)})
		case s.Fleet:
			growth := int64(r.HeapLast) - int64(r.HeapFirst)
			perCust := float64(growth) / float64(r.Listed)
			ts = append(ts,
				Target{"fleet: ≤ 50 µs CPU per customer planned", r.cpuPerCustomer() <= 50*time.Microsecond, micros(r.cpuPerCustomer())},
				Target{"fleet: ≤ 4 KiB heap per customer planned", r.heapPerCustomer() <= 4096, bytesOf(r.heapPerCustomer())},
				Target{fmt.Sprintf("fleet: memory flat over %d passes", r.Passes), perCust < 8,
					fmt.Sprintf("live heap %s → %s (%+.1f B/customer)", bytesOf(r.HeapFirst), bytesOf(r.HeapLast), perCust)})
		}
	}
	return ts
}

func storeName(s Scenario) string {
	if s.Store == "memory" {
		return "in memory (audit rows counted, not kept)"
	}
	return "sqlite in a temp dir"
}

func problems(r Result) string {
	if len(r.Problems) == 0 {
		return fmt.Sprintf("deleted %d of %d expired, kept the rest", r.Deleted, r.Selected)
	}
	return strings.Join(r.Problems, "; ")
}

func (r Result) cpuPerCustomer() time.Duration {
	if r.Scenario.Fleet {
		return perCustomer(r.CPU, r.Planned)
	}
	return perCustomer(r.CPU, r.Listed)
}

func (r Result) heapPerCustomer() uint64 {
	if r.Listed == 0 {
		return 0
	}
	return r.PeakHeap / uint64(r.Listed)
}

func sampleOf(rs []Result, scenario string) time.Duration {
	for _, r := range rs {
		if r.Algorithm == AlgoSample && r.Scenario.Name == scenario {
			return r.Wall
		}
	}
	return 0
}

func throttled(r Result) string {
	return fmt.Sprint(r.Throttled)
}

func dash(ok bool, f func() string) string {
	if !ok {
		return "—"
	}
	return f()
}

func ratio(a, b float64) string {
	if b == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f", a/b)
}

func times(a, b time.Duration) string {
	if b == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f", float64(a)/float64(b))
}

func dur(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return d.Round(100 * time.Millisecond).String()
	case d >= time.Second:
		return d.Round(10 * time.Millisecond).String()
	default:
		return d.Round(100 * time.Microsecond).String()
	}
}

func micros(d time.Duration) string {
	return fmt.Sprintf("%.1f µs", float64(d)/float64(time.Microsecond))
}

func bytesOf(n uint64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
