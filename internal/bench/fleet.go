package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/tipreaper/tipreaper/internal/engine"
	"github.com/tipreaper/tipreaper/internal/pcsim"
	"github.com/tipreaper/tipreaper/internal/store"
)

// The fleet is many sandboxes, each its own simulator, behind one loopback
// listener under its own path prefix (/a1, /a2, …), which serves as the
// account's base URL and login authority. For the measured run the
// simulators live in a child process (this same executable, started with
// fleetEnv set), so that the bench process's CPU and heap are the reaper's
// alone; quick runs and BenchmarkFleetPlan keep them in process.
const fleetEnv = "REAPER_BENCH_FLEET_SIM"

// statsPath answers the simulators' summed counters as JSON.
const statsPath = "/_bench/stats"

// fleetSims serves the fleet's simulators.
type fleetSims struct {
	sims []*pcsim.Server
	mux  *http.ServeMux
}

func newFleetSims(s Scenario, now time.Time) (*fleetSims, error) {
	if s.Accounts <= 0 {
		return nil, errNoAccounts
	}
	f := &fleetSims{mux: http.NewServeMux()}
	for a := range s.Accounts {
		sim := pcsim.New(s.simConfig(fleetIdentity(a)))
		if err := seedSim(sim, fleetSandbox(s, a, now)); err != nil {
			return nil, fmt.Errorf("account %d: %w", a+1, err)
		}
		p := fleetPrefix(a)
		f.mux.Handle(p+"/", http.StripPrefix(p, sim))
		f.sims = append(f.sims, sim)
	}
	f.mux.HandleFunc(statsPath, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(f.stats())
	})
	return f, nil
}

func fleetPrefix(a int) string { return "/a" + strconv.Itoa(a+1) }

func fleetSandbox(s Scenario, a int, now time.Time) []customer {
	custs := s.sandbox(a, now)
	assignIDs(custs, s.Seed+int64(a)<<20)
	return custs
}

// fleetStats are the simulators' counters summed over the fleet.
type fleetStats struct {
	Calls, Throttled, PeakInFlight, PeakPerMinute int
	Remaining                                     []int // customers left per account
}

func (f *fleetSims) stats() fleetStats {
	var fs fleetStats
	for _, sim := range f.sims {
		st := sim.Stats()
		fs.Calls += callsOf(st)
		fs.Throttled += st.Throttled
		fs.PeakInFlight = max(fs.PeakInFlight, st.PeakInFlight)
		fs.PeakPerMinute = max(fs.PeakPerMinute, st.PeakPerMinute)
		fs.Remaining = append(fs.Remaining, len(sim.Customers()))
	}
	return fs
}

// fleet is the bench process's view of the fleet: where each account is
// served and what it holds.
type fleet struct {
	ids   []identity
	bases []string
	custs [][]customer
	stats func() (fleetStats, error)
	stop  func()
}

func (f *fleet) customers() int {
	n := 0
	for _, cs := range f.custs {
		n += len(cs)
	}
	return n
}

func newFleetView(s Scenario, now time.Time, base string) *fleet {
	f := &fleet{}
	for a := range s.Accounts {
		f.ids = append(f.ids, fleetIdentity(a))
		f.bases = append(f.bases, base+fleetPrefix(a))
		f.custs = append(f.custs, fleetSandbox(s, a, now))
	}
	return f
}

// newFleet serves the fleet's simulators in this process.
func newFleet(s Scenario, now time.Time) (*fleet, error) {
	sims, err := newFleetSims(s, now)
	if err != nil {
		return nil, err
	}
	base, stop, err := serveSim(sims.mux)
	if err != nil {
		return nil, err
	}
	f := newFleetView(s, now, base)
	f.stats = func() (fleetStats, error) { return sims.stats(), nil }
	f.stop = stop
	return f, nil
}

// startFleet serves the fleet's simulators in a child process: this
// executable again, with fleetEnv naming the scenario and its clock.
func startFleet(ctx context.Context, s Scenario, now time.Time) (*fleet, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("fleet simulators: %w", err)
	}
	cmd := exec.CommandContext(ctx, exe, "bench")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s,%d,%d", fleetEnv, s.Name, s.Accounts, now.UnixNano()))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("fleet simulators: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("fleet simulators: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("fleet simulators: start %s: %w", exe, err)
	}
	stop := func() {
		stdin.Close() // the child exits when its stdin closes
		_ = cmd.Wait()
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	base, ok := strings.CutPrefix(strings.TrimSpace(line), "serving ")
	if err != nil || !ok {
		stop()
		return nil, fmt.Errorf("fleet simulators: the child process did not say where it serves (%q, %v)", line, err)
	}
	f := newFleetView(s, now, base)
	f.stop = stop
	f.stats = func() (fleetStats, error) {
		resp, err := http.Get(base + statsPath)
		if err != nil {
			return fleetStats{}, fmt.Errorf("fleet stats: %w", err)
		}
		defer resp.Body.Close()
		var fs fleetStats
		if err := json.NewDecoder(resp.Body).Decode(&fs); err != nil {
			return fleetStats{}, fmt.Errorf("fleet stats: %w", err)
		}
		return fs, nil
	}
	return f, nil
}

// ServeFleetIfChild serves the fleet's simulators and returns true when
// this process was started by startFleet; otherwise it returns false at
// once. `reaper bench` calls it first.
func ServeFleetIfChild(stdin io.Reader, stdout io.Writer) (bool, error) {
	v, ok := os.LookupEnv(fleetEnv)
	if !ok {
		return false, nil
	}
	parts := strings.Split(v, ",")
	if len(parts) != 3 {
		return true, fmt.Errorf("%s=%q: want NAME,ACCOUNTS,UNIXNANO", fleetEnv, v)
	}
	list, err := Lookup(parts[0], false)
	if err != nil {
		return true, err
	}
	s := list[0]
	accounts, err1 := strconv.Atoi(parts[1])
	nanos, err2 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil {
		return true, fmt.Errorf("%s=%q: want NAME,ACCOUNTS,UNIXNANO", fleetEnv, v)
	}
	s.Accounts = accounts
	sims, err := newFleetSims(s, time.Unix(0, nanos))
	if err != nil {
		return true, err
	}
	base, stop, err := serveSim(sims.mux)
	if err != nil {
		return true, err
	}
	defer stop()
	fmt.Fprintf(stdout, "serving %s\n", base)
	_, _ = io.Copy(io.Discard, stdin) // until the parent closes it, or dies
	return true, nil
}

// runFleet runs one warm-up pass (it marks the expired customers), then
// s.Passes measured ones, each planning every customer of every account.
func runFleet(ctx context.Context, s Scenario, progress io.Writer, separate bool) (Result, error) {
	now := time.Now()
	fmt.Fprintf(progress, "%s: seeding %d simulated sandboxes…\n", s.Name, s.Accounts)
	var (
		f   *fleet
		err error
	)
	if separate {
		f, err = startFleet(ctx, s, now)
	} else {
		f, err = newFleet(s, now)
	}
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", s.Name, err)
	}
	defer f.stop()
	st, closeStore, err := openStore(ctx, s.Store)
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", s.Name, err)
	}
	defer closeStore()

	cfg := s.config(f.ids, f.bases, "")
	cs := &clients{limit: cfg.Limits.RequestsPerMinute}
	eng := engine.New(engine.Options{Config: cfg, Store: st, Connect: cs.connect, Logger: slog.New(slog.DiscardHandler)})

	pass := func() (*engine.Report, error) {
		rep, err := eng.Pass(ctx)
		if err != nil {
			return nil, fmt.Errorf("%s: pass: %w", s.Name, err)
		}
		if rep.Status != store.RunSucceeded || rep.Counts.Listed != f.customers() {
			return nil, fmt.Errorf("%s: pass %s, listed %d of %d", s.Name, rep.Status, rep.Counts.Listed, f.customers())
		}
		return rep, nil
	}
	fmt.Fprintf(progress, "%s: warm-up pass (marks the expired customers)…\n", s.Name)
	if _, err := pass(); err != nil {
		return Result{}, err
	}
	st0, err := f.stats()
	if err != nil {
		return Result{}, err
	}

	r := Result{Scenario: s, Algorithm: AlgoEngine, Listed: f.customers(), Passes: s.Passes, Separate: separate}
	before := liveHeap()
	heap := sampleHeap(2 * time.Millisecond)
	var cpu time.Duration
	start := time.Now()
	var rep *engine.Report
	for i := range s.Passes {
		cpu0 := cpuTime()
		rep, err = pass()
		cpu += cpuTime() - cpu0
		if err != nil {
			heap.Stop()
			return Result{}, err
		}
		if i == 0 {
			r.HeapFirst = liveHeap() // outside the CPU count: the forced GC is the bench's, not the pass's
		}
		if (i+1)%10 == 0 {
			fmt.Fprintf(progress, "%s: %d of %d passes\n", s.Name, i+1, s.Passes)
		}
	}
	wall := time.Since(start)
	peak := heap.Stop()
	r.CPU = cpu
	r.HeapLast = liveHeap()
	r.Wall = wall / time.Duration(s.Passes)
	if peak > before {
		r.PeakHeap = peak - before
	}
	r.Planned = r.Listed * s.Passes
	r.Deleted = rep.Counts.Deleted
	st1, err := f.stats()
	if err != nil {
		return Result{}, err
	}
	r.Calls = (st1.Calls - st0.Calls) / s.Passes
	r.Throttled, r.PeakInFlight, r.PeakPerMinute = st1.Throttled, st1.PeakInFlight, st1.PeakPerMinute
	if m, ok := st.(*memStore); ok {
		r.AuditRows = m.audited()
	}
	for a, left := range st1.Remaining {
		if left != len(f.custs[a]) {
			r.Problems = append(r.Problems, fmt.Sprintf("account %d: %d customers left of %d: a planning pass deleted some", a+1, left, len(f.custs[a])))
		}
	}
	return r, nil
}

func callsOf(st pcsim.Stats) int {
	n := 0
	for route, c := range st.Requests {
		if !strings.HasSuffix(route, " token") {
			n += c
		}
	}
	return n
}
