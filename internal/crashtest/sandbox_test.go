package crashtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/tipreaper/tipreaper/internal/pcsim"
)

// Identities the simulator and the config share.
const (
	partnerTenant = "7e1a5c3d-0b2f-4c6e-9a8d-5f4b3e2d1c0a"
	clientID      = "3c9b7a51-2d4e-4f60-8a1b-c2d3e4f5a6b7"
	clientSecret  = "crash-test-secret-4711"
	secretEnv     = "REAPER_CRASH_SECRET"
)

// kind is what the policy should make of a seeded customer.
type kind int

const (
	expired      kind = iota // selected and old enough: must end deleted
	ancient                  // selected, holds an order older than 60 days: must end blocked, untouched
	subscription             // selected, holds a subscription order: PATCH refused 800063, ends blocked, never deleted
	protected                // selected by the pattern but kept: never touched
	young                    // selected by the pattern, too young: never touched
	outside                  // not selected: never touched
)

func (k kind) String() string {
	return [...]string{"expired", "ancient", "subscription", "protected", "young", "outside"}[k]
}

// selected reports whether a pass is meant to work on the customer at all.
func (k kind) selected() bool { return k == expired || k == ancient || k == subscription }

// seeded is a customer of the trial's sandbox and what is expected of it.
type seeded struct {
	pcsim.SeedCustomer
	kind kind
}

func (s seeded) orderIDs() []string {
	ids := make([]string, len(s.Orders))
	for i, o := range s.Orders {
		ids[i] = o.ID
	}
	return ids
}

// sandbox is a trial's Partner Center: the simulator behind a recorder on a
// loopback httptest server.
type sandbox struct {
	sim       *pcsim.Server
	rec       *recorder
	url       string
	customers map[string]seeded
	keepIDs   []string // customer ids protected by the config's global keep
	failures  float64  // the simulator's FailureRate
}

// newSandbox seeds 15–25 customers from rng: at least eight expired ones, one
// holding an order too old to cancel, sometimes one holding a subscription
// order, and protected, too young and unselected ones.
func newSandbox(t *testing.T, rng *rand.Rand) *sandbox {
	t.Helper()
	sb := &sandbox{customers: map[string]seeded{}}
	if rng.IntN(3) == 0 {
		// A few injected 5xx exercise retries, fail rows and later passes
		// picking failed customers up again.
		sb.failures = 0.02
	}
	// The contract leaves open whether a deleted customer answers 404 or 403
	// with code 20002; the reaper must take both as gone.
	gone := http.StatusNotFound
	if rng.IntN(2) == 0 {
		gone = http.StatusForbidden
	}
	sim := pcsim.New(pcsim.Config{
		PartnerTenantID: partnerTenant,
		ClientID:        clientID,
		ClientSecret:    clientSecret,
		// Some cancellations outlast a restart, so a resumed pass meets
		// orders still pending, which it must poll, not PATCH again.
		CancelDelay: [2]time.Duration{10 * time.Millisecond, 500 * time.Millisecond},
		Latency:     [2]time.Duration{time.Millisecond, 6 * time.Millisecond},
		FailureRate: sb.failures,
		Seed:        rng.Int64(),
		GoneStatus:  gone,
	})
	now := time.Now()
	day := 24 * time.Hour
	guid := func() string {
		var b [16]byte
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		b[6] = b[6]&0x0f | 0x40
		b[8] = b[8]&0x3f | 0x80
		return uuid.UUID(b).String()
	}
	ciDomain := func() string { return fmt.Sprintf("ci-%08x.onmicrosoft.com", rng.Uint32()) }
	orders := func(created time.Time, n int) []pcsim.SeedOrder {
		var out []pcsim.SeedOrder
		for range n {
			o := pcsim.SeedOrder{ID: guid(), Type: pcsim.TypeSoftware, Status: pcsim.StatusCompleted, CreatedAt: created}
			if rng.IntN(2) == 0 {
				o.Type = pcsim.TypeReservedInstance
			}
			if rng.IntN(6) == 0 {
				o.Status = pcsim.StatusCancelled
			}
			out = append(out, o)
		}
		return out
	}

	var seeds []seeded
	add := func(k kind, c pcsim.SeedCustomer) {
		c.ID = guid()
		seeds = append(seeds, seeded{SeedCustomer: c, kind: k})
	}
	total := 15 + rng.IntN(11)
	nProtected, nYoung, nOutside := 2+rng.IntN(2), 2+rng.IntN(2), 2+rng.IntN(3)
	withSub := rng.IntN(2) == 0

	// Within the activity log's 90 days, or its age would be unknown and it would never be selected.
	created := now.Add(-time.Duration(65+rng.IntN(20)) * day)
	ancientOrders := append(orders(now.Add(-10*day), rng.IntN(2)),
		pcsim.SeedOrder{ID: guid(), Type: pcsim.TypeReservedInstance, Status: pcsim.StatusCompleted, CreatedAt: created})
	add(ancient, pcsim.SeedCustomer{Domain: ciDomain(), CompanyName: "CI run ancient", CreatedAt: created, Orders: ancientOrders})
	if withSub {
		created := now.Add(-20 * day)
		add(subscription, pcsim.SeedCustomer{Domain: ciDomain(), CompanyName: "CI run with a subscription", CreatedAt: created,
			Orders: append(orders(created, rng.IntN(2)), pcsim.SeedOrder{ID: guid(), Type: pcsim.TypeSubscription, CreatedAt: created})})
	}
	for i := range nProtected {
		created := now.Add(-time.Duration(10+rng.IntN(40)) * day)
		c := pcsim.SeedCustomer{Domain: ciDomain(), CompanyName: fmt.Sprintf("CI run %d", i), CreatedAt: created, Orders: orders(created, 1+rng.IntN(2))}
		if i%2 == 0 {
			c.CompanyName = "CI golden image " + fmt.Sprint(i) // the policy's keep.company_names
		}
		add(protected, c)
		if i%2 == 1 {
			sb.keepIDs = append(sb.keepIDs, seeds[len(seeds)-1].ID) // the global keep.customer_ids
		}
	}
	for i := range nYoung {
		created := now.Add(-time.Duration(1+rng.IntN(40)) * time.Hour)
		add(young, pcsim.SeedCustomer{Domain: ciDomain(), CompanyName: fmt.Sprintf("CI run young %d", i), CreatedAt: created, Orders: orders(created, rng.IntN(3))})
	}
	for i := range nOutside {
		created := now.Add(-time.Duration(10+rng.IntN(40)) * day)
		add(outside, pcsim.SeedCustomer{Domain: fmt.Sprintf("contoso-%08x.onmicrosoft.com", rng.Uint32()), CompanyName: fmt.Sprintf("Contoso %d", i),
			CreatedAt: created, Orders: orders(created, 1+rng.IntN(2))})
	}
	for len(seeds) < total {
		created := now.Add(-time.Duration(4+rng.IntN(50)) * day)
		add(expired, pcsim.SeedCustomer{Domain: ciDomain(), CompanyName: fmt.Sprintf("CI run %d", len(seeds)), CreatedAt: created,
			Orders: orders(created, rng.IntN(4))})
	}
	rng.Shuffle(len(seeds), func(i, j int) { seeds[i], seeds[j] = seeds[j], seeds[i] })
	for _, s := range seeds {
		_, err := sim.AddCustomer(s.SeedCustomer)
		require.NoError(t, err)
		sb.customers[s.ID] = s
	}

	sb.sim = sim
	sb.rec = &recorder{sim: sim, customers: sb.customers, rng: rand.New(rand.NewPCG(rng.Uint64(), 0))} //nolint:gosec // test randomness
	srv := httptest.NewServer(sb.rec)
	t.Cleanup(srv.Close)
	sb.url = srv.URL
	return sb
}

// mutation is a PATCH or DELETE as it arrived, with the state it met.
type mutation struct {
	method     string
	customerID string
	orderID    string // PATCH
	requestID  string // MS-RequestId
	// orderStatus is the status the PATCHed order read on arrival.
	orderStatus string
	// notCancelled are the customer's orders that did not read cancelled when a DELETE arrived.
	notCancelled []string
}

// recorder notes, for every PATCH and DELETE, what the orders read at the
// instant it arrived, before the simulator sees it. The simulator's own log
// says what was answered; only this says what was already true.
//
// It also holds PATCH and DELETE up to netDelay on their way in, before the
// simulator sees them, and their answers up to netDelay on the way back
// after it acted, as a network does. A kill on the way in leaves an intent
// whose call never arrived (the next pass must repeat it with the same
// MS-RequestId); a kill on the way back leaves a step done in Partner Center
// that the reaper never recorded. These are the windows a crash test most
// needs to hit, and without the delays they would be a few microseconds wide.
type recorder struct {
	sim       *pcsim.Server
	customers map[string]seeded // read only

	mu        sync.Mutex
	rng       *rand.Rand
	mutations []mutation
}

const netDelay = 8 * time.Millisecond

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPatch || r.Method == http.MethodDelete {
		seg := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path, "/v1"), "/"), "/")
		m := mutation{method: r.Method, requestID: r.Header.Get("MS-RequestId")}
		if len(seg) >= 2 && seg[0] == "customers" {
			m.customerID = seg[1]
		}
		if r.Method == http.MethodPatch && len(seg) == 4 {
			m.orderID = seg[3]
			m.orderStatus, _ = rc.sim.Order(m.customerID, m.orderID)
		}
		if r.Method == http.MethodDelete {
			for _, id := range rc.customers[m.customerID].orderIDs() {
				if st, ok := rc.sim.Order(m.customerID, id); ok && st != pcsim.StatusCancelled {
					m.notCancelled = append(m.notCancelled, id+" ("+st+")")
				}
			}
		}
		rc.mu.Lock()
		rc.mutations = append(rc.mutations, m)
		in, back := time.Duration(rc.rng.Int64N(int64(netDelay))), time.Duration(rc.rng.Int64N(int64(netDelay)))
		rc.mu.Unlock()

		if !wait(r.Context(), in) {
			return // the reaper is gone: the request never reaches Partner Center
		}
		answer := httptest.NewRecorder()
		rc.sim.ServeHTTP(answer, r)
		if !wait(r.Context(), back) {
			return // the reaper is gone; nobody reads the answer
		}
		for k, v := range answer.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(answer.Code)
		_, _ = w.Write(answer.Body.Bytes())
		return
	}
	rc.sim.ServeHTTP(w, r)
}

// wait sleeps d and says true, or says false as soon as ctx ends.
func wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (rc *recorder) log() []mutation {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]mutation(nil), rc.mutations...)
}
