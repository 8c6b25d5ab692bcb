package engine_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/tipreaper/tipreaper/internal/engine"
	"github.com/tipreaper/tipreaper/internal/memhttp"
	"github.com/tipreaper/tipreaper/internal/pc"
	"github.com/tipreaper/tipreaper/internal/pcsim"
	"github.com/tipreaper/tipreaper/internal/policy"
	"github.com/tipreaper/tipreaper/internal/store"
	"github.com/tipreaper/tipreaper/internal/store/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	partnerTenant = "11111111-1111-1111-1111-111111111111"
	clientID      = "22222222-2222-2222-2222-222222222222"
	// clientSecret is distinctive, and survives URL and JSON encoding
	// unchanged, so a leak shows up as this exact string.
	clientSecret = "tipReaperSecret7Qx9Zk2Lm"
	day          = 24 * time.Hour
)

// backends are the stores the important tests run against. Postgres skips
// when the server is absent, and fails when CI is set.
var backends = []struct {
	name string
	open func(testing.TB) store.Store
}{
	{"sqlite", storetest.SQLite},
	{"postgres", storetest.Postgres},
}

// clock is wall time plus an offset the test moves forward. The engine and
// the simulator share one, so a jump lets grace periods, plan ages and order
// cancellations pass at once while short waits still happen in real time.
type clock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// opts shape a harness. The zero value is one account "tip-N" whose policy
// "ci" selects domains ^ci- older than 72h, on SQLite.
type opts struct {
	sim       pcsim.Config // PartnerTenantID and CancelDelay are defaulted
	customers []pcsim.SeedCustomer
	limits    string // YAML lines added under limits:, indented two spaces
	policies  string // YAML of the policies: list; default ciPolicy
	keep      string // YAML of the global keep: mapping, indented two spaces
	store     func(testing.TB) store.Store
	pageSize  int
	limiter   pc.Limiter
	// wrap puts a handler in front of the simulator (to inject failures the
	// simulator cannot aim by itself).
	wrap func(*pcsim.Server) http.Handler
	// pipe serves the simulator over HTTP on in-memory pipes instead of a
	// TCP listener, so a test can run inside a synctest bubble.
	pipe bool
	// passTimeout bounds a pass; default 30 s.
	passTimeout time.Duration
}

const ciPolicy = `
  - name: ci
    account: ${ACCOUNT}
    select:
      domain: '^ci-'
    older_than: 72h
`

// harness is one simulated sandbox, one store and the config that points
// an engine at them.
type harness struct {
	t       testing.TB
	o       opts
	account string // unique: Postgres advisory locks span the schemas of parallel tests
	sim     *pcsim.Server
	url     string
	hc      *http.Client
	clock   *clock
	store   store.Store
	cfg     *policy.Config
	ids     map[string]string // customer name (domain without ci-/onmicrosoft) → id
	logs    *syncBuffer
	log     *slog.Logger

	mu     sync.Mutex
	events []store.Event // every audit row the engines wrote, via OnEvent
}

var harnesses atomic.Int64

func newHarness(t testing.TB, o opts) *harness {
	t.Helper()
	h := &harness{t: t, o: o, account: fmt.Sprintf("tip-%d", harnesses.Add(1)), clock: &clock{}, ids: map[string]string{}, logs: &syncBuffer{}}
	h.log = slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	sc := o.sim
	if sc.PartnerTenantID == "" {
		sc.PartnerTenantID = partnerTenant
	}
	if sc.ClientID == "" {
		sc.ClientID, sc.ClientSecret = clientID, clientSecret
	}
	if sc.CancelDelay == [2]time.Duration{} {
		sc.CancelDelay = [2]time.Duration{5 * time.Millisecond, 30 * time.Millisecond}
	}
	if sc.Seed == 0 {
		sc.Seed = 7
	}
	sc.Now = h.clock.Now
	h.sim = pcsim.New(sc)
	for _, c := range o.customers {
		h.add(c)
	}

	var handler http.Handler = h.sim
	if o.wrap != nil {
		handler = o.wrap(h.sim)
	}
	if o.pipe {
		var stop func()
		h.url, h.hc, stop = startPipe(handler)
		t.Cleanup(stop)
	} else {
		srv := httptest.NewServer(handler)
		tr := &http.Transport{}
		h.url, h.hc = srv.URL, &http.Client{Transport: tr, Timeout: 30 * time.Second}
		t.Cleanup(func() {
			tr.CloseIdleConnections()
			srv.Close()
		})
	}

	open := o.store
	if open == nil {
		open = storetest.SQLite
	}
	h.store = open(t)
	h.cfg = h.config()
	return h
}

// config parses the harness's YAML the way `reaper` does, with the
// simulator's URL and the client secret coming from the environment.
func (h *harness) config() *policy.Config {
	h.t.Helper()
	policies := h.o.policies
	if policies == "" {
		policies = ciPolicy
	}
	keep := h.o.keep
	if keep == "" {
		keep = "  customer_ids: []\n"
	}
	yaml := `accounts:
  - name: ${ACCOUNT}
    partner_tenant_id: ` + partnerTenant + `
    client_id: ` + clientID + `
    client_secret: ${PC_CLIENT_SECRET}
    base_url: ${SIM_URL}
    authority: ${SIM_URL}
limits:
` + limits(h.o.limits) + `keep:
` + keep + `policies:` + policies
	env := map[string]string{"SIM_URL": h.url, "PC_CLIENT_SECRET": clientSecret, "ACCOUNT": h.account}
	cfg, err := policy.Parse("test.yaml", []byte(yaml), func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	})
	require.NoError(h.t, err, "config:\n%s", yaml)
	quickPolls(cfg, h.o.limits)
	return cfg
}

// defaultLimits keep a pass quick (see quickPolls for the poll delays).
var defaultLimits = []string{"cancel_timeout: 10s", "drain_timeout: 5s", "concurrency: 4"}

// quickPolls keeps a pass quick: polls every few milliseconds, unless the
// test's limits set them. A config file may not poll more often than every
// 100ms, so they are set on the parsed Config.
func quickPolls(cfg *policy.Config, override string) {
	if !strings.Contains(override, "poll_interval:") {
		cfg.Limits.PollInterval = policy.Duration(10 * time.Millisecond)
	}
	if !strings.Contains(override, "poll_max:") {
		cfg.Limits.PollMax = policy.Duration(50 * time.Millisecond)
	}
}

// limits is the limits: mapping: the test's lines, then the defaults it
// does not set.
func limits(override string) string {
	out := override
	for _, d := range defaultLimits {
		key, _, _ := strings.Cut(d, ":")
		if !strings.Contains(override, " "+key+":") {
			out += "  " + d + "\n"
		}
	}
	return out
}

// add puts a customer in the sandbox and remembers its id by name.
func (h *harness) add(c pcsim.SeedCustomer) string {
	h.t.Helper()
	id, err := h.sim.AddCustomer(c)
	require.NoError(h.t, err)
	h.ids[nameOf(c.Domain)] = id
	return id
}

func nameOf(domain string) string {
	return strings.TrimSuffix(strings.TrimPrefix(domain, "ci-"), ".onmicrosoft.com")
}

// id is the id of the customer added under name.
func (h *harness) id(name string) string {
	h.t.Helper()
	id, ok := h.ids[name]
	require.True(h.t, ok, "no customer named %q", name)
	return id
}

// client is a Partner Center client of the harness's account, as the
// engine's Connect makes it.
func (h *harness) client() *pc.Client {
	h.t.Helper()
	c, err := h.connect(h.cfg.Accounts[0])
	require.NoError(h.t, err)
	return c
}

func (h *harness) connect(a policy.Account) (*pc.Client, error) {
	return pc.New(pc.Config{BaseURL: a.BaseURL, Authority: a.Authority, TenantID: a.PartnerTenantID,
		ClientID: a.ClientID, ClientSecret: a.ClientSecret.Reveal(), HTTPClient: h.hc,
		PageSize: h.o.pageSize, Limiter: h.o.limiter, Logger: h.log})
}

// engine returns an engine on the harness; mod adjusts its options.
func (h *harness) engine(mod ...func(*engine.Options)) *engine.Engine {
	o := engine.Options{
		Config:  h.cfg,
		Store:   h.store,
		Logger:  h.log,
		Now:     h.clock.Now,
		Connect: func(a policy.Account) (engine.PartnerCenter, error) { return h.connect(a) },
		OnEvent: func(ev store.Event) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.events = append(h.events, ev)
		},
	}
	for _, m := range mod {
		m(&o)
	}
	return engine.New(o)
}

func dryRun(o *engine.Options) { o.DryRun = true }

// pass runs one pass of a fresh engine and fails the test on an error.
func (h *harness) pass(mod ...func(*engine.Options)) *engine.Report {
	h.t.Helper()
	timeout := h.o.passTimeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	r, err := h.engine(mod...).Pass(ctx)
	require.NoError(h.t, err)
	return r
}

// present is the set of customer names still in the sandbox.
func (h *harness) present() []string {
	ids := map[string]string{}
	for name, id := range h.ids {
		ids[id] = name
	}
	var out []string
	for _, id := range h.sim.Customers() {
		out = append(out, ids[id])
	}
	slices.Sort(out)
	return out
}

// gone is the set of customer names deleted from the sandbox.
func (h *harness) gone() []string {
	present := map[string]bool{}
	for _, id := range h.sim.Customers() {
		present[id] = true
	}
	var out []string
	for name, id := range h.ids {
		if !present[id] {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

func (h *harness) mutations(name string) pcsim.Mutations { return h.sim.MutationsFor(h.id(name)) }

// state is the customer's row in the store.
func (h *harness) state(name string) store.CustomerState {
	h.t.Helper()
	st, ok, err := h.store.Customer(context.Background(), h.account, h.id(name))
	require.NoError(h.t, err)
	require.True(h.t, ok, "the store has no row for customer %s", name)
	return st
}

// customerEvents are the customer's audit rows, read back from the store.
func (h *harness) customerEvents(name string) []store.Event {
	h.t.Helper()
	evs, err := h.store.CustomerEvents(context.Background(), h.id(name))
	require.NoError(h.t, err)
	return evs
}

// emitted are the audit rows the engines reported writing, of action
// (all when "").
func (h *harness) emitted(action string) []store.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []store.Event
	for _, ev := range h.events {
		if action == "" || ev.Action == action {
			out = append(out, ev)
		}
	}
	return out
}

// lastRun is the newest run row.
func (h *harness) lastRun() store.Run {
	h.t.Helper()
	runs, err := h.store.Runs(context.Background(), 1)
	require.NoError(h.t, err)
	require.Len(h.t, runs, 1)
	return runs[0]
}

// requests are the simulator's logged requests of method to path.
func (h *harness) requests(method, path string) []pcsim.Request {
	var out []pcsim.Request
	for _, r := range h.sim.Requests() {
		if r.Method == method && r.Path == path {
			out = append(out, r)
		}
	}
	return out
}

// item is the report's item of the customer.
func item(t testing.TB, r *engine.Report, id string) engine.Item {
	t.Helper()
	for _, it := range r.Items {
		if it.CustomerID == id {
			return it
		}
	}
	require.Failf(t, "no item", "the report has no item for customer %s", id)
	return engine.Item{}
}

func has(evs []store.Event, action, outcome string) bool {
	return slices.ContainsFunc(evs, func(ev store.Event) bool { return ev.Action == action && ev.Outcome == outcome })
}

func find(evs []store.Event, action, outcome string) (store.Event, bool) {
	i := slices.IndexFunc(evs, func(ev store.Event) bool { return ev.Action == action && ev.Outcome == outcome })
	if i < 0 {
		return store.Event{}, false
	}
	return evs[i], true
}

// ci is a customer the default policy selects, added age ago.
func ci(name string, age time.Duration, orders ...pcsim.SeedOrder) pcsim.SeedCustomer {
	return pcsim.SeedCustomer{Domain: "ci-" + name + ".onmicrosoft.com", CompanyName: "CI " + name, Age: age, Orders: orders}
}

func software() pcsim.SeedOrder { return pcsim.SeedOrder{Type: pcsim.TypeSoftware} }
func reserved() pcsim.SeedOrder { return pcsim.SeedOrder{Type: pcsim.TypeReservedInstance} }

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startPipe serves h over in-memory HTTP (see memhttp); inside a synctest
// bubble, call it inside the bubble and stop before the bubble ends.
func startPipe(h http.Handler) (url string, hc *http.Client, stop func()) {
	hc, stop = memhttp.Start(h)
	return memhttp.URL, hc, stop
}
