package pc_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tipreaper/tipreaper/internal/pc"
	"github.com/tipreaper/tipreaper/internal/pcsim"
	"github.com/tipreaper/tipreaper/internal/ratelimit"
)

func TestListCustomersFollowsNextLinksInBothForms(t *testing.T) {
	sim := newSim(pcsim.Config{})
	ids := addCustomers(t, sim, 7)
	url, hc := startSim(t, sim)
	c := newClient(t, url, hc, func(cfg *pc.Config) { cfg.PageSize = 2 })

	ctx := pc.WithCorrelationID(pc.WithRequestID(context.Background(), "req-first-page"), "corr-1")
	got, err := c.ListCustomers(ctx)
	require.NoError(t, err)
	var gotIDs []string
	for _, cu := range got {
		gotIDs = append(gotIDs, cu.ID)
		require.Equal(t, cu.ID, cu.CompanyProfile.TenantID)
		require.NotEmpty(t, cu.CompanyProfile.Domain)
	}
	require.Equal(t, ids, gotIDs)

	reqs := apiRequests(sim)
	require.Len(t, reqs, 4, "7 customers in pages of 2")
	var paths []string
	seenIDs := map[string]bool{}
	for i, r := range reqs {
		require.Equal(t, http.StatusOK, r.Status)
		paths = append(paths, r.Path)
		require.Equal(t, "corr-1", r.CorrelationID, "every page carries the caller's correlation id")
		require.False(t, seenIDs[r.RequestID], "each page is a request of its own")
		seenIDs[r.RequestID] = true
		if i == 0 {
			require.Equal(t, "req-first-page", r.RequestID)
			require.Equal(t, "size=2", r.Query)
			require.Empty(t, r.Header.Get("MS-ContinuationToken"))
		} else {
			require.NotEmpty(t, r.Header.Get("MS-ContinuationToken"), "page %d lacks the link's header", i+1)
		}
	}
	// The simulator alternates /v1/customers?… and /customers?… links; both
	// resolve under the API root's /v1.
	require.Equal(t, []string{"/v1/customers", "/v1/customers", "/v1/customers", "/v1/customers"}, paths)
}

// failPage makes the simulator fail the page-th request to /v1/customers
// (1-based) with status, n times in a row.
func failPage(sim *pcsim.Server, page, status, n int) http.Handler {
	var mu sync.Mutex
	seen := 0
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/customers" {
			mu.Lock()
			seen++
			if seen == page {
				sim.FailNext(http.MethodGet, "/v1/customers", status, n)
			}
			mu.Unlock()
		}
		sim.ServeHTTP(w, r)
	})
}

func TestEveryAPICallCarriesTheContractHeaders(t *testing.T) {
	sim := newSim(pcsim.Config{})
	id := addCustomer(t, sim, pcsim.SeedCustomer{Domain: "h.onmicrosoft.com", Orders: []pcsim.SeedOrder{{ID: "o1", Type: pcsim.TypeSoftware}}})
	url, hc := startSim(t, sim)
	c := newClient(t, url, hc, func(cfg *pc.Config) { cfg.Application = "reaper-test" })

	ctx := context.Background()
	_, err := c.ListCustomers(ctx)
	require.NoError(t, err)
	_, err = c.ListOrders(ctx, id)
	require.NoError(t, err)
	_, err = c.GetOrder(ctx, id, "o1")
	require.NoError(t, err)
	_, err = c.ListEntitlements(ctx, id)
	require.NoError(t, err)

	reqs := apiRequests(sim)
	require.Len(t, reqs, 4)
	for _, r := range reqs {
		require.Equal(t, "REDACTED", r.Header.Get("Authorization"), "%s %s sent no Authorization", r.Method, r.Path)
		require.Equal(t, "application/json", r.Accept)
		require.NotEmpty(t, r.RequestID)
		require.NotEmpty(t, r.CorrelationID)
		require.Equal(t, "reaper-test", r.Header.Get("MS-PartnerCenter-Application"))
		require.Equal(t, "en-US", r.Header.Get("X-Locale"))
	}
}

func TestTheTokenIsFetchedOnceAndReused(t *testing.T) {
	sim := newSim(pcsim.Config{})
	addCustomers(t, sim, 2)
	url, hc := startSim(t, sim)
	c := newClient(t, url, hc, nil)

	for range 3 {
		_, err := c.ListCustomers(context.Background())
		require.NoError(t, err)
	}
	require.Equal(t, 1, tokenRequests(sim))
	require.Equal(t, int64(1), c.Stats().TokenFetches)
	require.Equal(t, int64(3), c.Stats().Requests)
}

func TestConcurrentCallersShareOneTokenFetch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := newSim(pcsim.Config{})
		addCustomers(t, sim, 1)
		// The token endpoint answers after a second, so every caller asks
		// for a token while the first fetch is still in flight.
		slowToken := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.Contains(r.URL.Path, "/oauth2/") {
				time.Sleep(time.Second)
			}
			sim.ServeHTTP(w, r)
		})
		url, hc, stop := startPipe(slowToken)
		defer stop()
		c := newClient(t, url, hc, nil)

		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				_, err := c.ListCustomers(context.Background())
				require.NoError(t, err)
			})
		}
		wg.Wait()
		require.Equal(t, 1, tokenRequests(sim))
		require.Equal(t, int64(1), c.Stats().TokenFetches)
	})
}

func TestTheTokenIsRefreshedThirtySecondsBeforeItExpires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := newSim(pcsim.Config{TokenTTL: time.Hour})
		addCustomers(t, sim, 1)
		url, hc, stop := startPipe(sim)
		defer stop()
		c := newClient(t, url, hc, nil)
		ctx := context.Background()

		_, err := c.ListCustomers(ctx)
		require.NoError(t, err)
		time.Sleep(time.Hour - 31*time.Second)
		_, err = c.ListCustomers(ctx)
		require.NoError(t, err)
		require.Equal(t, 1, tokenRequests(sim), "refreshed too early")

		time.Sleep(2 * time.Second) // now inside the 30 s margin
		_, err = c.ListCustomers(ctx)
		require.NoError(t, err)
		require.Equal(t, 2, tokenRequests(sim), "not refreshed inside the margin")
		for _, r := range apiRequests(sim) {
			require.Equal(t, http.StatusOK, r.Status, "a request went out with a dying token")
		}
	})
}

func TestA401RefreshesTheTokenOnceAndRetriesTheSameRequest(t *testing.T) {
	sim := newSim(pcsim.Config{})
	addCustomers(t, sim, 1)
	url, hc := startSim(t, sim)
	c := newClient(t, url, hc, nil)
	ctx := context.Background()

	_, err := c.ListCustomers(ctx)
	require.NoError(t, err)
	sim.ExpireTokens()
	_, err = c.ListCustomers(pc.WithRequestID(ctx, "req-401"))
	require.NoError(t, err)

	require.Equal(t, 2, tokenRequests(sim))
	reqs := apiRequests(sim)[1:]
	require.Len(t, reqs, 2)
	require.Equal(t, http.StatusUnauthorized, reqs[0].Status)
	require.Equal(t, http.StatusOK, reqs[1].Status)
	require.Equal(t, "req-401", reqs[0].RequestID)
	require.Equal(t, "req-401", reqs[1].RequestID)
}

func TestASecond401IsReturnedNotRetried(t *testing.T) {
	sim := newSim(pcsim.Config{})
	url, hc := startSim(t, sim)
	c := newClient(t, url, hc, nil)
	sim.FailNext(http.MethodGet, "/v1/customers", http.StatusUnauthorized, 5)

	_, err := c.ListCustomers(context.Background())
	require.Error(t, err)
	require.True(t, pc.IsUnauthorized(err))
	require.Len(t, apiRequests(sim), 2, "one retry after one refresh, no more")
	require.Equal(t, 2, tokenRequests(sim))
}

func TestRetriesOf5xxKeepTheRequestIDAndThenSucceed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := newSim(pcsim.Config{})
		addCustomers(t, sim, 1)
		url, hc, stop := startPipe(sim)
		defer stop()
		c := newClient(t, url, hc, nil)
		sim.FailNext(http.MethodGet, "/v1/customers", http.StatusServiceUnavailable, 1)
		sim.FailNext(http.MethodGet, "/v1/customers", http.StatusInternalServerError, 1)

		got, err := c.ListCustomers(pc.WithRequestID(context.Background(), "req-5xx"))
		require.NoError(t, err)
		require.Len(t, got, 1)

		reqs := apiRequests(sim)
		require.Len(t, reqs, 3)
		for _, r := range reqs {
			require.Equal(t, "req-5xx", r.RequestID)
		}
		require.Equal(t, []int{503, 500, 200}, []int{reqs[0].Status, reqs[1].Status, reqs[2].Status})
		require.Equal(t, int64(2), c.Stats().Retries)
	})
}

func TestPersistent5xxGivesUpAfterMaxRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := newSim(pcsim.Config{})
		id := addCustomer(t, sim, pcsim.SeedCustomer{Domain: "x.onmicrosoft.com", Orders: []pcsim.SeedOrder{{ID: "o1", Type: pcsim.TypeSoftware}}})
		url, hc, stop := startPipe(sim)
		defer stop()
		c := newClient(t, url, hc, nil)
		sim.FailNext(http.MethodGet, "/v1/customers/"+id+"/orders/o1", http.StatusInternalServerError, 10)

		_, err := c.GetOrder(context.Background(), id, "o1")
		require.Error(t, err)
		require.True(t, pc.IsRetryable(err))
		require.Equal(t, 500, pc.StatusCode(err))
		var pe *pc.Error
		require.ErrorAs(t, err, &pe)
		require.NotEmpty(t, pe.CV, "MS-CV was not read back")
		require.NotEmpty(t, pe.RequestID)
		require.Contains(t, err.Error(), "get order o1 of customer "+id)
		require.Len(t, apiRequests(sim), 4, "1 attempt + 3 retries")
	})
}

func TestClientErrorsAreNotRetried(t *testing.T) {
	for _, status := range []int{400, 403, 404, 409} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			sim := newSim(pcsim.Config{})
			addCustomers(t, sim, 1)
			url, hc := startSim(t, sim)
			c := newClient(t, url, hc, nil)
			sim.FailNext(http.MethodGet, "/v1/customers", status, 5)

			_, err := c.ListCustomers(context.Background())
			require.Equal(t, status, pc.StatusCode(err))
			require.Len(t, apiRequests(sim), 1)
		})
	}
}

func TestA429IsWaitedOutAndReportedToTheLimiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := newSim(pcsim.Config{RatePerMinute: 2})
		addCustomers(t, sim, 1)
		url, hc, stop := startPipe(sim)
		defer stop()
		lim := &recordingLimiter{Limiter: ratelimit.NewWindow(100, time.Minute)}
		c := newClient(t, url, hc, func(cfg *pc.Config) { cfg.Limiter = lim })

		for range 3 {
			_, err := c.ListCustomers(context.Background())
			require.NoError(t, err)
		}
		// The simulator answers 429 again to any retry sent before its
		// Retry-After has passed, so a single 429 proves it was honoured.
		statuses := []int{}
		for _, r := range apiRequests(sim) {
			statuses = append(statuses, r.Status)
		}
		require.Equal(t, []int{200, 200, 429, 200}, statuses)
		require.Len(t, lim.throttles, 1)
		require.Greater(t, lim.throttles[0], 50*time.Second, "the limiter was not told the server's Retry-After")
		require.Equal(t, int64(1), c.Stats().Throttled)
	})
}

func TestA429WithoutRetryAfterHeaderUsesTheBodysHint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := newSim(pcsim.Config{})
		addCustomers(t, sim, 1)
		var (
			mu          sync.Mutex
			throttledAt time.Time
			early       int
		)
		// 429 once with the hint only in the body; any request inside the
		// 7 s it asked for is refused again.
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, "/v1/customers") {
				mu.Lock()
				first := throttledAt.IsZero()
				tooEarly := !first && time.Now().Before(throttledAt.Add(7*time.Second))
				if first {
					throttledAt = time.Now()
				}
				if tooEarly {
					early++
				}
				mu.Unlock()
				if first || tooEarly {
					w.WriteHeader(http.StatusTooManyRequests)
					_, _ = w.Write([]byte(`{"statusCode":429,"message":"Rate limit is exceeded. Try again in 7 seconds."}`))
					return
				}
			}
			sim.ServeHTTP(w, r)
		})
		url, hc, stop := startPipe(h)
		defer stop()
		c := newClient(t, url, hc, nil)

		_, err := c.ListCustomers(context.Background())
		require.NoError(t, err)
		require.Zero(t, early, "the retry came before the body's 'Try again in 7 seconds'")
	})
}

func TestCancellingDuringARetryAfterWaitReturnsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := newSim(pcsim.Config{RatePerMinute: 1})
		addCustomers(t, sim, 1)
		url, hc, stop := startPipe(sim)
		defer stop()
		c := newClient(t, url, hc, nil)
		_, err := c.ListCustomers(context.Background())
		require.NoError(t, err)

		ctx, cancel := context.WithCancel(context.Background())
		var (
			callErr    error
			returnedAt time.Time
			done       = make(chan struct{})
		)
		go func() {
			defer close(done)
			_, callErr = c.ListCustomers(ctx)
			returnedAt = time.Now()
		}()
		synctest.Wait() // the call got its 429 and sleeps on Retry-After
		require.Equal(t, int64(1), c.Stats().Throttled)

		cancelledAt := time.Now()
		cancel()
		<-done
		require.ErrorIs(t, callErr, context.Canceled)
		require.Equal(t, cancelledAt, returnedAt, "the call kept waiting after its context ended")
	})
}

func TestAFailingPageFailsTheWholeListing(t *testing.T) {
	sim := newSim(pcsim.Config{})
	addCustomers(t, sim, 6)
	url, hc := startSim(t, failPage(sim, 3, http.StatusBadRequest, 1))
	c := newClient(t, url, hc, func(cfg *pc.Config) { cfg.PageSize = 2 })

	got, err := c.ListCustomers(context.Background())
	require.Error(t, err)
	require.Nil(t, got, "a partial list was returned")
	require.Contains(t, err.Error(), "list customers (page 3)")
	require.Equal(t, 400, pc.StatusCode(err))
}

func TestAPageFailingAfterRetriesFailsTheWholeListing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := newSim(pcsim.Config{})
		addCustomers(t, sim, 6)
		url, hc, stop := startPipe(failPage(sim, 2, http.StatusServiceUnavailable, 10))
		defer stop()
		c := newClient(t, url, hc, func(cfg *pc.Config) { cfg.PageSize = 2 })

		got, err := c.ListCustomers(context.Background())
		require.Nil(t, got)
		require.True(t, pc.IsRetryable(err))
		require.Contains(t, err.Error(), "list customers (page 2)")
		require.Len(t, apiRequests(sim), 5, "page 1, then page 2 tried 1 + 3 times")
	})
}

func TestDeleteCustomer(t *testing.T) {
	tests := []struct {
		name     string
		gone     int
		wantCode string
		notFound bool
	}{
		{"a second delete is already gone (404)", http.StatusNotFound, "20000", true},
		{"a second delete is already gone (403 code 20002)", http.StatusForbidden, "20002", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim := newSim(pcsim.Config{GoneStatus: tt.gone})
			id := addCustomer(t, sim, pcsim.SeedCustomer{Domain: "d.onmicrosoft.com",
				Orders: []pcsim.SeedOrder{{ID: "o1", Type: pcsim.TypeSoftware, Status: pcsim.StatusCancelled}}})
			url, hc := startSim(t, sim)
			c := newClient(t, url, hc, nil)

			// The simulator answers 411 without Content-Length: a nil error
			// proves the header went out on the wire.
			require.NoError(t, c.DeleteCustomer(context.Background(), id))
			require.NotContains(t, sim.Customers(), id)

			err := c.DeleteCustomer(context.Background(), id)
			require.Error(t, err)
			require.True(t, pc.IsAlreadyGone(err))
			require.Equal(t, tt.notFound, pc.IsNotFound(err))
			require.Equal(t, tt.wantCode, pc.ErrorCode(err))
			require.False(t, pc.IsUnauthorized(err))
		})
	}
}

func TestDeletingACustomerWithActiveOrdersFailsWithoutRetry(t *testing.T) {
	sim := newSim(pcsim.Config{})
	id := addCustomer(t, sim, pcsim.SeedCustomer{Domain: "d.onmicrosoft.com",
		Orders: []pcsim.SeedOrder{{ID: "o1", Type: pcsim.TypeReservedInstance}}})
	url, hc := startSim(t, sim)
	c := newClient(t, url, hc, nil)

	err := c.DeleteCustomer(context.Background(), id)
	require.Equal(t, http.StatusBadRequest, pc.StatusCode(err))
	require.False(t, pc.IsAlreadyGone(err))
	require.Contains(t, err.Error(), "o1")
	require.Contains(t, sim.Customers(), id)
	require.Len(t, apiRequests(sim), 1)
}

func TestADeleteWhoseAnswerWasLostEndsAlreadyGone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := newSim(pcsim.Config{})
		id := addCustomer(t, sim, pcsim.SeedCustomer{Domain: "d.onmicrosoft.com"})
		url, hc, stop := startPipe(sim)
		defer stop()
		c := newClient(t, url, hc, nil)
		sim.FailNextAfter(http.MethodDelete, "/v1/customers/"+id, http.StatusInternalServerError, 1)

		err := c.DeleteCustomer(pc.WithRequestID(context.Background(), "req-del"), id)
		require.True(t, pc.IsAlreadyGone(err), "got %v", err)
		require.NotContains(t, sim.Customers(), id)

		reqs := apiRequests(sim)
		require.Len(t, reqs, 2)
		require.Equal(t, []int{500, 404}, []int{reqs[0].Status, reqs[1].Status})
		require.Equal(t, "req-del", reqs[0].RequestID)
		require.Equal(t, "req-del", reqs[1].RequestID)
	})
}

func TestCancelOrderAnswersPendingThenTheOrderReadsCancelled(t *testing.T) {
	clock := pcsim.NewClock(time.Now())
	sim := newSim(pcsim.Config{Now: clock.Now, CancelDelay: [2]time.Duration{10 * time.Second, 10 * time.Second}})
	id := addCustomer(t, sim, pcsim.SeedCustomer{Domain: "d.onmicrosoft.com",
		Orders: []pcsim.SeedOrder{{ID: "o1", Type: pcsim.TypeSoftware}, {ID: "o2", Type: pcsim.TypeReservedInstance}}})
	url, hc := startSim(t, sim)
	c := newClient(t, url, hc, nil)
	ctx := context.Background()

	ents, err := c.ListEntitlements(ctx, id)
	require.NoError(t, err)
	require.Greater(t, len(ents), 2, "the reserved instance names its order more than once")
	require.Equal(t, []string{"o1", "o2"}, pc.OrderIDs(ents))

	o, err := c.CancelOrder(ctx, id, "o1")
	require.NoError(t, err)
	require.Equal(t, pc.StatusPending, o.Status)
	require.Equal(t, "o1", o.ID)
	require.Equal(t, id, o.ReferenceCustomerID)
	require.False(t, o.CreationDate.IsZero())

	_, err = c.CancelOrder(ctx, id, "o1")
	require.Equal(t, http.StatusConflict, pc.StatusCode(err))
	require.Equal(t, "800060", pc.ErrorCode(err), "a numeric code must come back as a string")

	clock.Advance(11 * time.Second)
	o, err = c.GetOrder(ctx, id, "o1")
	require.NoError(t, err)
	require.Equal(t, pc.StatusCancelled, o.Status)

	orders, err := c.ListOrders(ctx, id)
	require.NoError(t, err)
	require.Len(t, orders, 2)
	status := map[string]string{}
	for _, o := range orders {
		status[o.ID] = o.Status
	}
	require.Equal(t, map[string]string{"o1": pc.StatusCancelled, "o2": pc.StatusCompleted}, status)
}

func TestARetriedCancelResendsItsBody(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := newSim(pcsim.Config{CancelDelay: [2]time.Duration{time.Hour, time.Hour}})
		id := addCustomer(t, sim, pcsim.SeedCustomer{Domain: "d.onmicrosoft.com", Orders: []pcsim.SeedOrder{{ID: "o1", Type: pcsim.TypeSoftware}}})
		url, hc, stop := startPipe(sim)
		defer stop()
		c := newClient(t, url, hc, nil)
		sim.FailNext(http.MethodPatch, "/v1/customers/"+id+"/orders/o1", http.StatusServiceUnavailable, 1)

		// The simulator answers 400 to a PATCH without the body.
		o, err := c.CancelOrder(context.Background(), id, "o1")
		require.NoError(t, err)
		require.Equal(t, pc.StatusPending, o.Status)
		reqs := apiRequests(sim)
		require.Len(t, reqs, 2)
		require.Equal(t, reqs[0].RequestID, reqs[1].RequestID)
	})
}

func TestEntitlementsRefusedToAnAppOnlyTokenAreAnAuthorizationError(t *testing.T) {
	sim := newSim(pcsim.Config{EntitlementsAppOnlyForbidden: true})
	id := addCustomer(t, sim, pcsim.SeedCustomer{Domain: "d.onmicrosoft.com"})
	url, hc := startSim(t, sim)
	c := newClient(t, url, hc, nil)

	_, err := c.ListEntitlements(context.Background(), id)
	require.True(t, pc.IsUnauthorized(err))
	require.False(t, pc.IsAlreadyGone(err))
	require.Equal(t, "900150", pc.ErrorCode(err))
}

func TestListActivityReturnsAddCustomerRecordsInTheRange(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	sim := newSim(pcsim.Config{MaxPageSize: 2})
	var inRange []string
	for i, age := range []time.Duration{24 * time.Hour, 48 * time.Hour, 72 * time.Hour, 40 * 24 * time.Hour} {
		id := addCustomer(t, sim, pcsim.SeedCustomer{Domain: "a" + string(rune('a'+i)) + ".onmicrosoft.com", CompanyName: "A", CreatedAt: now.Add(-age)})
		if age < 30*24*time.Hour {
			inRange = append(inRange, id)
		}
	}
	url, hc := startSim(t, sim)
	c := newClient(t, url, hc, nil)

	recs, err := c.ListActivity(context.Background(), now.Add(-30*24*time.Hour), now)
	require.NoError(t, err)
	var got []string
	for _, r := range recs {
		require.Equal(t, "add_customer", r.OperationType)
		require.False(t, r.OperationDate.IsZero())
		got = append(got, r.CustomerID)
	}
	slices.Sort(got)
	slices.Sort(inRange)
	require.Equal(t, inRange, got)
	require.Greater(t, len(apiRequests(sim)), 1, "three records in pages of two take two pages")
}

func TestTokenTenantIDReadsTheTidClaim(t *testing.T) {
	sim := newSim(pcsim.Config{TokenTenantID: "99999999-0000-0000-0000-000000000000"})
	url, hc := startSim(t, sim)
	c := newClient(t, url, hc, nil)

	tid, err := c.TokenTenantID(context.Background())
	require.NoError(t, err)
	require.Equal(t, "99999999-0000-0000-0000-000000000000", tid)
}

func TestSecretsAndTokensNeverReachErrorsOrLogs(t *testing.T) {
	sim := newSim(pcsim.Config{})
	addCustomers(t, sim, 1)
	url, hc := startSim(t, sim)
	rec := &tokenRecorder{base: hc.Transport}
	var logs syncBuffer
	ctx := context.Background()

	// Wrong secret: the token endpoint refuses, and says why.
	wrong := "Wr0ng~Secret.Value_99"
	bad := newClient(t, url, &http.Client{Transport: rec}, func(cfg *pc.Config) {
		cfg.ClientSecret = wrong
		cfg.Logger = debugLogger(&logs)
	})
	_, err := bad.ListCustomers(ctx)
	require.Error(t, err)
	require.True(t, pc.IsUnauthorized(err))
	require.Contains(t, err.Error(), "fetch token")
	var errs []string
	errs = append(errs, err.Error())

	// Unreachable login endpoint: the transport error names the URL only.
	unreachable := newClient(t, url, &http.Client{Transport: rec}, func(cfg *pc.Config) {
		cfg.Authority = "http://127.0.0.1:1"
		cfg.MaxRetries = -1
		cfg.Logger = debugLogger(&logs)
	})
	_, err = unreachable.ListCustomers(ctx)
	require.Error(t, err)
	errs = append(errs, err.Error())

	// Right secret: successful calls, a 404 and a 401 retried.
	good := newClient(t, url, &http.Client{Transport: rec}, func(cfg *pc.Config) { cfg.Logger = debugLogger(&logs) })
	_, err = good.ListCustomers(ctx)
	require.NoError(t, err)
	_, err = good.GetOrder(ctx, "00000000-0000-0000-0000-000000000000", "nope")
	require.True(t, pc.IsNotFound(err))
	errs = append(errs, err.Error())
	sim.ExpireTokens()
	_, err = good.ListCustomers(ctx)
	require.NoError(t, err)
	_, err = good.TokenTenantID(ctx)
	require.NoError(t, err)

	tokens := rec.seen()
	require.NotEmpty(t, tokens)
	out := logs.String()
	require.Contains(t, out, "ms_request_id", "the debug log did not record the attempts")
	for _, text := range append(errs, out) {
		require.NotContains(t, text, secret)
		require.NotContains(t, text, wrong)
		for _, tok := range tokens {
			require.NotContains(t, text, tok)
		}
	}
}

func TestIdsThatWouldChangeThePathAreRefusedBeforeSending(t *testing.T) {
	sim := newSim(pcsim.Config{})
	url, hc := startSim(t, sim)
	c := newClient(t, url, hc, nil)
	for _, id := range []string{"", " ", ".", "..", "a b", "a\nb"} {
		require.Error(t, c.DeleteCustomer(context.Background(), id), "id %q", id)
	}
	require.Empty(t, sim.Requests())
}

func TestARetryAfterBeyondTheDeadlineReturnsThe429AtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := newSim(pcsim.Config{RatePerMinute: 1})
		addCustomers(t, sim, 1)
		url, hc, stop := startPipe(sim)
		defer stop()
		c := newClient(t, url, hc, nil)
		_, err := c.ListCustomers(context.Background())
		require.NoError(t, err)

		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		start := time.Now()
		_, err = c.ListCustomers(ctx)
		require.True(t, pc.IsThrottled(err), "got %v", err)
		require.Equal(t, start, time.Now(), "waited for a Retry-After the deadline could not cover")
	})
}
