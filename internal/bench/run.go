package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"regexp"
	"slices"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/tipreaper/tipreaper/internal/engine"
	"github.com/tipreaper/tipreaper/internal/pc"
	"github.com/tipreaper/tipreaper/internal/pcsim"
	"github.com/tipreaper/tipreaper/internal/policy"
	"github.com/tipreaper/tipreaper/internal/ratelimit"
	"github.com/tipreaper/tipreaper/internal/store"
)

// Algorithms a Result can be of.
const (
	AlgoEngine = "tipreaper"
	AlgoSample = "sample"
)

// Result is one measured run of a scenario.
type Result struct {
	Scenario  Scenario
	Algorithm string // AlgoEngine or AlgoSample

	Listed   int // customers listed (per pass, all accounts)
	Selected int // customers the policy expires
	Orders   int // their live orders
	Deleted  int

	Wall          time.Duration // the pass (fleet: mean per measured pass)
	Calls         int           // API requests the simulator(s) received, token requests excluded (fleet: per pass)
	Polls         int           // order polls while waiting for cancellation
	Throttled     int           // 429s answered by the simulator's rate limit
	PeakPerMinute int           // most requests admitted in one 60 s window of one tenant
	PeakInFlight  int           // most requests served at once
	CPU           time.Duration // process user+system CPU (simulator included; fleet: all measured passes)
	PeakHeap      uint64        // peak heap above the heap held before the pass (simulator state)

	Bound Bound

	// Fleet: passes measured (after one warm-up pass) and the live heap
	// after a GC following the first and the last measured pass.
	Passes                int
	HeapFirst, HeapLast   uint64
	Planned               int // customers planned over the measured passes
	AuditRows             int
	ClientThrottled       int // 429s the client saw (pc.Stats)
	LimitAfter, LimitFrom int // the client window's effective limit at the end, and as configured

	Separate bool // fleet: the simulators ran in a child process

	Problems []string // the pass deleted a customer it must not, or left one it must delete
}

// PerCustomer returns d divided over n customers.
func perCustomer(d time.Duration, n int) time.Duration {
	if n == 0 {
		return 0
	}
	return d / time.Duration(n)
}

// Run runs one scenario: the engine's pass and, when the scenario asks for
// it, the sample algorithm on an identically seeded second simulator. Lines
// of progress go to progress.
func Run(ctx context.Context, s Scenario, progress io.Writer) ([]Result, error) {
	if s.Fleet {
		r, err := runFleet(ctx, s, progress, !s.Quick)
		if err != nil {
			return nil, err
		}
		return []Result{r}, nil
	}
	now := time.Now()
	custs := s.sandbox(0, now)
	assignIDs(custs, s.Seed)

	fmt.Fprintf(progress, "%s: tipreaper pass over %d customers…\n", s.Name, len(custs))
	eng, err := runEngine(ctx, s, custs, now)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.Name, err)
	}
	fmt.Fprintf(progress, "%s: tipreaper done in %s\n", s.Name, eng.Wall.Round(time.Millisecond))
	out := []Result{eng}
	if s.Baseline {
		fmt.Fprintf(progress, "%s: sample algorithm (serial, %s sleep) on a second simulator…\n", s.Name, s.SampleSleep)
		smp, err := runSample(ctx, s, custs, now)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.Name, err)
		}
		fmt.Fprintf(progress, "%s: sample done in %s\n", s.Name, smp.Wall.Round(time.Millisecond))
		out = append(out, smp)
	}
	return out, nil
}

// assignIDs gives every customer a fixed id, so the second simulator holds
// the very same sandbox.
func assignIDs(custs []customer, seed int64) {
	for i := range custs {
		custs[i].seed.ID = uuid.NewSHA1(benchNamespace, fmt.Appendf(nil, "%d/%d/%s", seed, i, custs[i].seed.Domain)).String()
	}
}

var benchNamespace = uuid.MustParse("b3c1d7e2-5a4f-4e6b-8c9d-0a1b2c3d4e5f")

// identity is a simulated partner: its tenant, app and secret.
type identity struct{ tenant, clientID, secret string }

func newIdentity(i int) identity {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	id := fleetIdentity(i)
	id.secret = hex.EncodeToString(b)
	return id
}

// fleetIdentity is the identity of fleet account i, the same in the bench
// process and in the simulators' process. Its secret is derived, not random:
// both processes must know it, and it guards nothing but a loopback simulator.
func fleetIdentity(i int) identity {
	return identity{
		tenant:   uuid.NewSHA1(benchNamespace, fmt.Appendf(nil, "tenant/%d", i)).String(),
		clientID: uuid.NewSHA1(benchNamespace, fmt.Appendf(nil, "client/%d", i)).String(),
		secret:   uuid.NewSHA1(benchNamespace, fmt.Appendf(nil, "secret/%d", i)).String(),
	}
}

func (s Scenario) simConfig(id identity) pcsim.Config {
	return pcsim.Config{
		PartnerTenantID: id.tenant,
		ClientID:        id.clientID,
		ClientSecret:    id.secret,
		CancelDelay:     s.CancelDelay,
		Latency:         s.Latency,
		RatePerMinute:   s.ServerRate,
		Seed:            s.Seed,
	}
}

func seedSim(sim *pcsim.Server, custs []customer) error {
	for _, c := range custs {
		if _, err := sim.AddCustomer(c.seed); err != nil {
			return fmt.Errorf("seed the simulator: %w", err)
		}
	}
	return nil
}

// serveSim serves h on a loopback listener until stop is called.
func serveSim(h http.Handler) (base string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	return "http://" + ln.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			_ = srv.Close()
		}
		<-done
	}, nil
}

// config is the bench's policy config: per account, ci-… domains older than
// 72 h expire (after a grace in the fleet), "CI golden…" companies are kept.
func (s Scenario) config(ids []identity, bases []string, stateDir string) *policy.Config {
	cfg := &policy.Config{
		File:     "bench",
		StateDir: stateDir,
		Limits: policy.Limits{
			Concurrency:       s.Concurrency,
			RequestsPerMinute: s.ClientRate,
			PollInterval:      policy.Duration(s.PollInterval),
			PollMax:           policy.Duration(s.PollMax),
			CancelTimeout:     policy.Duration(30 * time.Minute),
			MaxDeletesPerPass: 100, // the whole sandbox: the benchmark deletes every expired customer
			PlanMaxAge:        policy.Duration(24 * time.Hour),
			DrainTimeout:      policy.Duration(30 * time.Second),
		},
	}
	if s.Defaults {
		lim := policy.Defaults()
		lim.MaxDeletesPerPass = max(lim.MaxDeletesPerPass, s.Customers-s.Keepers)
		cfg.Limits = lim
	}
	domain := regexp.MustCompile(`(?i)^ci-`)
	golden := regexp.MustCompile(`^` + goldenCompany)
	for i, id := range ids {
		name := fmt.Sprintf("sandbox-%d", i+1)
		cfg.Accounts = append(cfg.Accounts, policy.Account{
			Name: name, Cloud: "public", PartnerTenantID: id.tenant, ClientID: id.clientID,
			ClientSecret: policy.Secret(id.secret), BaseURL: bases[i], Authority: bases[i], ActivityLog: true,
		})
		p := policy.Policy{Name: "ci-leftovers-" + name, Account: name, Select: policy.Selector{Domain: domain},
			OlderThan: policy.Duration(policyOlderThan), Keep: policy.Keep{CompanyNames: []*regexp.Regexp{golden}}}
		if s.Fleet {
			p.Grace = policy.Duration(fleetGrace)
		}
		cfg.Policies = append(cfg.Policies, p)
	}
	return cfg
}

// clients remembers the Partner Center clients the engine made, to read
// their counters after the pass.
type clients struct {
	limit int
	made  atomic.Pointer[[]*client]
}

type client struct {
	pc  *pc.Client
	win *ratelimit.Window
}

// connect is what `reaper once` does per account: a pc client with its own
// request window.
func (cs *clients) connect(a policy.Account) (engine.PartnerCenter, error) {
	win := ratelimit.NewWindow(cs.limit, rateWindow)
	c, err := pc.New(pc.Config{
		Cloud: a.Cloud, BaseURL: a.BaseURL, Authority: a.Authority, TenantID: a.PartnerTenantID,
		ClientID: a.ClientID, ClientSecret: a.ClientSecret.Reveal(), Limiter: win,
	})
	if err != nil {
		return nil, fmt.Errorf("partner center client for account %s: %w", a.Name, err)
	}
	for {
		old := cs.made.Load()
		var next []*client
		if old != nil {
			next = slices.Clone(*old)
		}
		next = append(next, &client{pc: c, win: win})
		if cs.made.CompareAndSwap(old, &next) {
			return c, nil
		}
	}
}

func (cs *clients) all() []*client {
	if p := cs.made.Load(); p != nil {
		return *p
	}
	return nil
}

// openStore opens the scenario's store in a fresh directory.
func openStore(ctx context.Context, kind string) (store.Store, func(), error) {
	if kind == "memory" {
		return newMemStore(), func() {}, nil
	}
	dir, err := os.MkdirTemp("", "reaper-bench-")
	if err != nil {
		return nil, nil, fmt.Errorf("state dir: %w", err)
	}
	st, err := store.Open(ctx, "", dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, fmt.Errorf("open sqlite store: %w", err)
	}
	if err := st.Migrate(ctx); err != nil {
		st.Close()
		os.RemoveAll(dir)
		return nil, nil, fmt.Errorf("migrate sqlite store: %w", err)
	}
	return st, func() { st.Close(); os.RemoveAll(dir) }, nil
}

func runEngine(ctx context.Context, s Scenario, custs []customer, now time.Time) (Result, error) {
	id := newIdentity(0)
	sim := pcsim.New(s.simConfig(id))
	if err := seedSim(sim, custs); err != nil {
		return Result{}, err
	}
	base, stop, err := serveSim(sim)
	if err != nil {
		return Result{}, err
	}
	defer stop()
	st, closeStore, err := openStore(ctx, s.Store)
	if err != nil {
		return Result{}, err
	}
	defer closeStore()

	cfg := s.config([]identity{id}, []string{base}, "")
	cs := &clients{limit: cfg.Limits.RequestsPerMinute}
	var polls atomic.Int64
	eng := engine.New(engine.Options{Config: cfg, Store: st, Connect: cs.connect,
		Logger: slog.New(slog.DiscardHandler),
		OnEvent: func(ev store.Event) {
			if ev.Action == store.ActionPoll {
				polls.Add(1)
			}
		}})

	before := liveHeap()
	heap := sampleHeap(5 * time.Millisecond)
	cpu0 := cpuTime()
	start := time.Now()
	rep, err := eng.Pass(ctx)
	wall := time.Since(start)
	cpu := cpuTime() - cpu0
	peak := heap.Stop()
	if err != nil {
		return Result{}, fmt.Errorf("pass: %w", err)
	}

	r := Result{Scenario: s, Algorithm: AlgoEngine, Listed: len(custs), Wall: wall, CPU: cpu, Polls: int(polls.Load()),
		Deleted: rep.Counts.Deleted + rep.Counts.AlreadyGone}
	if peak > before {
		r.PeakHeap = peak - before
	}
	r.fromSim(sim.Stats())
	var selected []customer
	for _, c := range custs {
		if c.delete {
			selected = append(selected, c)
			r.Selected++
			r.Orders += len(c.seed.Orders)
		}
	}
	r.Bound = newBound(len(custs), selected, s.Latency, s.CancelDelay[1], s.ServerRate, s.ClientRate)
	for _, c := range cs.all() {
		r.ClientThrottled += int(c.pc.Stats().Throttled)
		r.LimitAfter, r.LimitFrom = c.win.Stats().Limit, cfg.Limits.RequestsPerMinute
	}
	r.Problems = check(custs, sim.Customers())
	if rep.Status != store.RunSucceeded {
		r.Problems = append(r.Problems, fmt.Sprintf("pass status %s (%d failed, %d blocked)", rep.Status, rep.Counts.Failed, rep.Counts.Blocked))
	}
	return r, nil
}

// fromSim fills the counters the simulator keeps.
func (r *Result) fromSim(st pcsim.Stats) {
	r.Calls += callsOf(st)
	r.Throttled += st.Throttled
	r.PeakPerMinute = max(r.PeakPerMinute, st.PeakPerMinute)
	r.PeakInFlight = max(r.PeakInFlight, st.PeakInFlight)
}

// check compares the simulator's customers with what the policy says: every
// expired customer gone, every other one still there.
func check(custs []customer, remaining []string) []string {
	present := make(map[string]bool, len(remaining))
	for _, id := range remaining {
		present[id] = true
	}
	var bad []string
	for _, c := range custs {
		switch {
		case c.delete && present[c.seed.ID]:
			bad = append(bad, fmt.Sprintf("expired customer %s (%s) was not deleted", c.seed.ID, c.seed.Domain))
		case !c.delete && !present[c.seed.ID]:
			bad = append(bad, fmt.Sprintf("customer %s (%s) was deleted but the policy keeps it", c.seed.ID, c.seed.Domain))
		}
	}
	return bad
}

func runSample(ctx context.Context, s Scenario, custs []customer, now time.Time) (Result, error) {
	id := newIdentity(0)
	sim := pcsim.New(s.simConfig(id))
	if err := seedSim(sim, custs); err != nil {
		return Result{}, err
	}
	base, stop, err := serveSim(sim)
	if err != nil {
		return Result{}, err
	}
	defer stop()
	c, err := pc.New(pc.Config{BaseURL: base, Authority: base, TenantID: id.tenant, ClientID: id.clientID, ClientSecret: id.secret})
	if err != nil {
		return Result{}, fmt.Errorf("sample client: %w", err)
	}
	expired := map[string]bool{}
	for _, cu := range custs {
		if cu.delete {
			expired[cu.seed.ID] = true
		}
	}

	before := liveHeap()
	heap := sampleHeap(5 * time.Millisecond)
	cpu0 := cpuTime()
	start := time.Now()
	listed, err := c.ListCustomers(ctx)
	var run sampleRun
	if err == nil {
		var ids []string
		for _, cu := range listed {
			if expired[cu.ID] {
				ids = append(ids, cu.ID)
			}
		}
		run, err = sample(ctx, c, ids, s.SampleSleep)
	}
	wall := time.Since(start)
	cpu := cpuTime() - cpu0
	peak := heap.Stop()
	if err != nil {
		return Result{}, err
	}
	r := Result{Scenario: s, Algorithm: AlgoSample, Listed: len(custs), Wall: wall, CPU: cpu, Polls: run.polls, Deleted: run.deleted}
	if peak > before {
		r.PeakHeap = peak - before
	}
	r.fromSim(sim.Stats())
	for _, cu := range custs {
		if cu.delete {
			r.Selected++
			r.Orders += len(cu.seed.Orders)
		}
	}
	r.Problems = check(custs, sim.Customers())
	return r, nil
}

// errNoAccounts guards the fleet against an empty scenario.
var errNoAccounts = errors.New("fleet: no accounts")
