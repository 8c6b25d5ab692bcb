package pc_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tipreaper/tipreaper/internal/pc"
	"github.com/tipreaper/tipreaper/internal/pcsim"
)

// observed collects RequestInfo from concurrent callers.
type observed struct {
	mu    sync.Mutex
	infos []pc.RequestInfo
}

func (o *observed) add(ri pc.RequestInfo) {
	o.mu.Lock()
	o.infos = append(o.infos, ri)
	o.mu.Unlock()
}

// got returns what was observed without durations, which no test compares.
func (o *observed) got() []pc.RequestInfo {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]pc.RequestInfo, len(o.infos))
	for i, ri := range o.infos {
		ri.Duration = 0
		out[i] = ri
	}
	return out
}

func TestTheObserverSeesEveryAttemptWithItsEndpointAndStatus(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := newSim(pcsim.Config{RatePerMinute: 4})
		id := addCustomer(t, sim, pcsim.SeedCustomer{Domain: "a.onmicrosoft.com", CompanyName: "A",
			Orders: []pcsim.SeedOrder{{Type: "software"}}})
		url, hc, stop := startPipe(sim)
		defer stop()
		var obs observed
		c := newClient(t, url, hc, func(cfg *pc.Config) { cfg.Observe = obs.add })
		ctx := context.Background()

		sim.FailNext(http.MethodGet, "/v1/customers", http.StatusServiceUnavailable, 1)
		_, err := c.ListCustomers(ctx) // token, 503, 200
		require.NoError(t, err)
		orders, err := c.ListOrders(ctx, id) // 200
		require.NoError(t, err)
		require.Len(t, orders, 1)
		_, err = c.GetOrder(ctx, id, orders[0].ID) // 200: the window of 4 is full now
		require.NoError(t, err)
		_, err = c.CancelOrder(ctx, id, orders[0].ID) // 429, then 200 after Retry-After
		require.NoError(t, err)
		_, err = c.ListActivity(ctx, time.Now().AddDate(0, 0, -1), time.Now())
		require.NoError(t, err)
		sim.FailNext(http.MethodGet, "/v1/customers/"+id+"/entitlements", http.StatusNotFound, 1)
		_, err = c.ListEntitlements(ctx, id)
		require.True(t, pc.IsNotFound(err))
		require.NoError(t, c.DeleteCustomer(ctx, id)) // 204

		require.Equal(t, []pc.RequestInfo{
			{Endpoint: "token", Method: "POST", StatusCode: 200, Attempt: 1},
			{Endpoint: "customers", Method: "GET", StatusCode: 503, Attempt: 1},
			{Endpoint: "customers", Method: "GET", StatusCode: 200, Attempt: 2},
			{Endpoint: "orders", Method: "GET", StatusCode: 200, Attempt: 1},
			{Endpoint: "order", Method: "GET", StatusCode: 200, Attempt: 1},
			{Endpoint: "order", Method: "PATCH", StatusCode: 429, Attempt: 1, Throttled: true},
			{Endpoint: "order", Method: "PATCH", StatusCode: 200, Attempt: 2},
			{Endpoint: "auditrecords", Method: "GET", StatusCode: 200, Attempt: 1},
			{Endpoint: "entitlements", Method: "GET", StatusCode: 404, Attempt: 1},
			{Endpoint: "customer", Method: "DELETE", StatusCode: 204, Attempt: 1},
		}, obs.got())
	})
}

func TestTheObserverSeesATransportFailureAsStatusZero(t *testing.T) {
	sim := newSim(pcsim.Config{})
	url, hc := startSim(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/oauth2/") {
			sim.ServeHTTP(w, r)
			return
		}
		panic(http.ErrAbortHandler) // the connection closes without an answer
	}))
	var obs observed
	c := newClient(t, url, hc, func(cfg *pc.Config) {
		cfg.Observe = obs.add
		cfg.MaxRetries = -1
	})
	_, err := c.ListCustomers(context.Background())
	require.True(t, pc.IsRetryable(err), "got %v", err)
	require.Equal(t, []pc.RequestInfo{
		{Endpoint: "token", Method: "POST", StatusCode: 200, Attempt: 1},
		{Endpoint: "customers", Method: "GET", StatusCode: 0, Attempt: 1},
	}, obs.got())
}
