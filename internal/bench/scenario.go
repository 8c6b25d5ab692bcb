package bench

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/tipreaper/tipreaper/internal/pcsim"
	"github.com/tipreaper/tipreaper/internal/policy"
)

// Scenario is one benchmark setting: a sandbox to seed, the simulator's
// behaviour and the engine's limits.
type Scenario struct {
	Name        string
	Description string

	Accounts  int // sandboxes, each its own simulator and account (1 except the fleet)
	Customers int // per account; the sandbox holds at most 75
	// Extra customers the policy must leave alone (young, protected, outside
	// the policy), part of Customers.
	Keepers int
	// Orders of each selected customer: a fixed shape, or a random count.
	ReservedInstances, Software int
	RandomOrders                [2]int // min, max orders per customer (used when both counts above are 0)

	CancelDelay [2]time.Duration // simulator: PATCH → cancelled
	Latency     [2]time.Duration // simulator: per request
	ServerRate  int              // simulator: requests per minute per tenant (0 = unlimited)
	ClientRate  int              // engine: limits.requests_per_minute

	Concurrency  int           // engine: limits.concurrency
	PollInterval time.Duration // engine: limits.poll_interval
	PollMax      time.Duration // engine: limits.poll_max

	Baseline    bool          // also run the documented sample algorithm on a second simulator
	SampleSleep time.Duration // the sample's sleep between polling rounds (5 s as documented)

	// Fleet only: a planning pass (nothing expires yet) over many accounts,
	// repeated to show memory stays flat.
	Fleet  bool
	Passes int
	Store  string // "sqlite" (default) or "memory"
	Seed   int64
	Quick  bool // scaled down by --quick

	// Defaults: the engine runs with the configuration's default limits
	// (what a user who sets none gets), except max_deletes_per_pass, raised
	// to the sandbox's expired customers when the default is below them.
	Defaults bool
}

// Names of the scenarios, in the order "all" runs them.
var names = []string{"defaults", "small", "full", "throttled", "throttled-below-cap", "fleet"}

// extra are scenarios accepted by name but not in "all".
var extra = []string{"full-defaults", "fleet-sqlite"}

// Names returns the scenario names `--scenario` accepts, "all" last
// ("fleet-sqlite", the fleet on SQLite, is accepted too but not in "all").
func Names() []string { return append(append([]string{}, names...), "all") }

// Lookup returns the scenario called name ("all": every one), scaled down
// to run in seconds when quick is set.
func Lookup(name string, quick bool) ([]Scenario, error) {
	if name == "all" {
		out := make([]Scenario, 0, len(names))
		for _, n := range names {
			out = append(out, scenario(n, quick))
		}
		return out, nil
	}
	for _, n := range append(append([]string{}, names...), extra...) {
		if n == name {
			return []Scenario{scenario(n, quick)}, nil
		}
	}
	return nil, fmt.Errorf("unknown scenario %q (want %s)", name, strings.Join(Names(), ", "))
}

// The engine's limits in the scenarios measured since before issue 12: those
// of demo.yaml (a first poll after 1 s, backing off to 5 s) at concurrency
// 25, kept so their rows stay comparable. The defaults scenarios ("defaults",
// "full-defaults") run the configuration's defaults instead; since issue 12
// limits.concurrency bounds calls and steps in flight, not waiting
// customers, so the default 8 no longer makes a sandbox run in waves.
const (
	DefaultConcurrency  = 25
	defaultPollInterval = time.Second
	defaultPollMax      = 5 * time.Second
)

func scenario(name string, quick bool) Scenario {
	full := Scenario{
		Accounts: 1, Customers: pcsim.SandboxLimit, ReservedInstances: 2, Software: 3,
		CancelDelay: [2]time.Duration{time.Second, 3 * time.Second},
		Latency:     [2]time.Duration{40 * time.Millisecond, 120 * time.Millisecond},
		ServerRate:  500, ClientRate: 500,
		Concurrency: DefaultConcurrency, PollInterval: defaultPollInterval, PollMax: defaultPollMax,
		SampleSleep: 5 * time.Second, Seed: 1,
	}
	var s Scenario
	switch name {
	case "full":
		s = full
		s.Baseline = true
	case "small":
		s = full
		s.Customers, s.Keepers = 25, 3
		s.ReservedInstances, s.Software, s.RandomOrders = 0, 0, [2]int{0, 3}
		s.CancelDelay = [2]time.Duration{200 * time.Millisecond, 1500 * time.Millisecond}
		s.Baseline = true
	case "defaults":
		// Issue 12's new user: 40 listed, 25 expired with 0–3 orders,
		// cancellations settling in 0.2–1.5 s, 5–20 ms latency, the default
		// limits, and a fresh engine and store (nothing learned yet).
		s = full
		s.Customers, s.Keepers = 40, 15
		s.ReservedInstances, s.Software, s.RandomOrders = 0, 0, [2]int{0, 3}
		s.CancelDelay = [2]time.Duration{200 * time.Millisecond, 1500 * time.Millisecond}
		s.Latency = [2]time.Duration{5 * time.Millisecond, 20 * time.Millisecond}
		s.Baseline, s.Defaults = true, true
	case "full-defaults":
		// The full sandbox at the default limits (max_deletes_per_pass
		// raised to 75); the sample's time is full's.
		s = full
		s.Defaults = true
	case "throttled":
		s = full
		s.ServerRate, s.ClientRate = 150, 150
	case "throttled-below-cap":
		s = full
		s.ServerRate, s.ClientRate = 120, 150
	case "fleet", "fleet-sqlite":
		s = full
		s.Accounts, s.Fleet, s.Passes, s.Store = 1000, true, 100, "memory"
		s.Latency, s.ServerRate, s.ClientRate = [2]time.Duration{}, 0, 0
		if name == "fleet-sqlite" {
			// Not in "all": what the fleet costs with the default store,
			// to show why the fleet scenario measures with memStore.
			s.Passes, s.Store = 3, "sqlite"
		}
	}
	if s.Defaults {
		lim := policy.Defaults()
		s.ClientRate, s.Concurrency = lim.RequestsPerMinute, lim.Concurrency
		s.PollInterval, s.PollMax = time.Duration(lim.PollInterval), time.Duration(lim.PollMax)
	}
	s.Name = name
	if quick {
		s = s.quick()
	}
	s.Description = s.describe()
	return s
}

// describe says in one line what the scenario is.
func (s Scenario) describe() string {
	var b strings.Builder
	if s.Quick {
		b.WriteString("quick run (a smoke test, not a measurement): ")
	}
	if s.Accounts > 1 {
		fmt.Fprintf(&b, "%d accounts × ", s.Accounts)
	}
	fmt.Fprintf(&b, "%d customers", s.Customers)
	if s.Keepers > 0 {
		fmt.Fprintf(&b, " (%d to keep)", s.Keepers)
	}
	switch {
	case s.Fleet:
		fmt.Fprintf(&b, ", planning passes (nothing expires yet), %d measured", s.Passes)
	case s.ReservedInstances+s.Software > 0:
		fmt.Fprintf(&b, " × (%d reserved instances + %d software orders)", s.ReservedInstances, s.Software)
	default:
		fmt.Fprintf(&b, " with %d–%d orders", s.RandomOrders[0], s.RandomOrders[1])
	}
	if !s.Fleet {
		fmt.Fprintf(&b, ", cancel %s–%s", s.CancelDelay[0], s.CancelDelay[1])
	}
	fmt.Fprintf(&b, ", latency %s–%s", s.Latency[0], s.Latency[1])
	if s.Defaults {
		b.WriteString(", default limits, fresh engine and store")
	}
	switch {
	case s.ServerRate == 0:
		b.WriteString(", no rate limit")
	case s.ServerRate < s.ClientRate:
		fmt.Fprintf(&b, ", client cap %d req/min, the server throttles at %d", s.ClientRate, s.ServerRate)
	default:
		fmt.Fprintf(&b, ", %d req/min", s.ServerRate)
	}
	return b.String()
}

// quick scales a scenario down to run in seconds. The 60 s rate window
// cannot be scaled, so the throttled shapes keep their caps but make too
// few calls to reach them: a quick run is a smoke test, not a measurement.
func (s Scenario) quick() Scenario {
	s.Quick = true
	s.CancelDelay = [2]time.Duration{s.CancelDelay[0] / 20, s.CancelDelay[1] / 20}
	s.Latency = [2]time.Duration{s.Latency[0] / 40, s.Latency[1] / 40}
	s.PollInterval, s.PollMax = 50*time.Millisecond, 250*time.Millisecond
	s.SampleSleep = 100 * time.Millisecond
	switch {
	case s.Fleet:
		s.Accounts, s.Passes = 4, 3
	case s.Name == "small" || s.Name == "defaults":
		s.Customers, s.Keepers = 10, 3
	default:
		s.Customers = 8
	}
	return s
}

// customer is one seeded customer and what the policy must do with it.
type customer struct {
	seed   pcsim.SeedCustomer
	delete bool // expired under the bench policy: the pass must delete it
}

// Bench policy: ci-… domains older than 72 h expire; company "CI golden…"
// is kept. Keepers are one of each kind the policy must leave alone.
const (
	policyOlderThan = 72 * time.Hour
	goldenCompany   = "CI golden"
)

// sandbox builds the customers of account a (deterministic in the seed).
func (s Scenario) sandbox(a int, now time.Time) []customer {
	r := rand.New(rand.NewPCG(uint64(s.Seed), uint64(a)))
	out := make([]customer, 0, s.Customers)
	if s.Fleet {
		return s.fleetSandbox(r, now)
	}
	for i := range s.Customers {
		age := time.Duration(5+r.IntN(25)) * 24 * time.Hour
		c := pcsim.SeedCustomer{
			Domain:      fmt.Sprintf("ci-%08x.onmicrosoft.com", r.Uint32()),
			CompanyName: fmt.Sprintf("CI run %d", i+1),
			CreatedAt:   now.Add(-age),
		}
		keeper := i >= s.Customers-s.Keepers
		if keeper {
			switch (s.Customers - 1 - i) % 3 {
			case 0:
				c.CreatedAt = now.Add(-time.Hour) // too young
			case 1:
				c.CompanyName = goldenCompany + " " + fmt.Sprint(i) // protected
			default:
				c.Domain = fmt.Sprintf("prod-%08x.onmicrosoft.com", r.Uint32()) // outside the policy
			}
		}
		c.Orders = s.orders(r)
		out = append(out, customer{seed: c, delete: !keeper})
	}
	return out
}

func (s Scenario) orders(r *rand.Rand) []pcsim.SeedOrder {
	var types []string
	if s.ReservedInstances == 0 && s.Software == 0 {
		n := s.RandomOrders[0]
		if span := s.RandomOrders[1] - s.RandomOrders[0]; span > 0 {
			n += r.IntN(span + 1)
		}
		for range n {
			t := pcsim.TypeSoftware
			if r.IntN(3) == 0 {
				t = pcsim.TypeReservedInstance
			}
			types = append(types, t)
		}
	} else {
		for range s.ReservedInstances {
			types = append(types, pcsim.TypeReservedInstance)
		}
		for range s.Software {
			types = append(types, pcsim.TypeSoftware)
		}
	}
	orders := make([]pcsim.SeedOrder, len(types))
	for i, t := range types {
		orders[i] = pcsim.SeedOrder{Type: t} // created with the customer: cancellable
	}
	return orders
}

// fleetSandbox is a sandbox in mid-life: 45 customers expired but in their
// grace period (marked by the first pass, waiting in later ones), 15 too
// young, 10 outside the policy, 5 protected. No pass deletes any of them,
// so every pass plans the same 75 customers.
func (s Scenario) fleetSandbox(r *rand.Rand, now time.Time) []customer {
	out := make([]customer, 0, s.Customers)
	for i := range s.Customers {
		c := pcsim.SeedCustomer{
			Domain:      fmt.Sprintf("ci-%08x-%d.onmicrosoft.com", r.Uint32(), i),
			CompanyName: fmt.Sprintf("CI run %d", i+1),
			CreatedAt:   now.Add(-time.Duration(4+r.IntN(20)) * 24 * time.Hour),
			Orders:      s.orders(r),
		}
		switch {
		case i < 45:
		case i < 60:
			c.CreatedAt = now.Add(-time.Duration(1+r.IntN(48)) * time.Hour)
		case i < 70:
			c.Domain = fmt.Sprintf("prod-%08x-%d.onmicrosoft.com", r.Uint32(), i)
		default:
			c.CompanyName = fmt.Sprintf("%s %d", goldenCompany, i)
		}
		out = append(out, customer{seed: c})
	}
	return out
}

// fleetGrace is the fleet policy's grace: expired customers are marked and
// wait this long, longer than any benchmark, so no fleet pass deletes.
const fleetGrace = 30 * 24 * time.Hour
