package pc_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tipreaper/tipreaper/internal/pc"
	"github.com/tipreaper/tipreaper/internal/pcsim"
	"github.com/tipreaper/tipreaper/internal/ratelimit"
)

// throttleForever answers 429 asking for retryAfter seconds, on the token
// endpoint (token true) or on the API.
func throttleForever(sim *pcsim.Server, token bool, retryAfter string, calls *atomic.Int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/oauth2/") != token {
			sim.ServeHTTP(w, r)
			return
		}
		calls.Add(1)
		w.Header().Set("Retry-After", retryAfter)
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = io.WriteString(w, `{"statusCode":429,"message":"Rate limit is exceeded. Try again in `+retryAfter+` seconds."}`)
	})
}

func TestARetryAfterBeyondMaxRetryWaitEndsTheCallAsThrottled(t *testing.T) {
	tests := []struct {
		name       string
		token      bool
		retryAfter string
		maxWait    time.Duration
		calls      int64
	}{
		{"an API 429 asking for 11 days under the default bound", false, "999999", 0, 1},
		{"a token 429 asking for 11 days under the default bound", true, "999999", 0, 1},
		{"an API 429 asking for 90 s under a bound of 1 m", false, "90", time.Minute, 1},
		{"a token 429 asking for 90 s under a bound of 1 m", true, "90", time.Minute, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				sim := newSim(pcsim.Config{})
				var calls atomic.Int64
				url, hc, stop := startPipe(throttleForever(sim, tt.token, tt.retryAfter, &calls))
				defer stop()
				var logs syncBuffer
				c := newClient(t, url, hc, func(cfg *pc.Config) {
					cfg.MaxRetryWait = tt.maxWait
					cfg.Logger = debugLogger(&logs)
				})

				start := time.Now()
				_, err := c.ListCustomers(context.Background())
				require.True(t, pc.IsThrottled(err), "got %v", err)
				require.Equal(t, start, time.Now(), "the call slept on the Retry-After")
				require.Equal(t, tt.calls, calls.Load())
				require.Contains(t, logs.String(), "is beyond the longest retry wait")
			})
		})
	}
}

func TestA429WithinMaxRetryWaitIsWaitedOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := newSim(pcsim.Config{})
		addCustomers(t, sim, 1)
		var calls atomic.Int64
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !strings.Contains(r.URL.Path, "/oauth2/") && calls.Add(1) == 1 {
				w.Header().Set("Retry-After", "90")
				w.WriteHeader(http.StatusTooManyRequests)
				return
			}
			sim.ServeHTTP(w, r)
		})
		url, hc, stop := startPipe(h)
		defer stop()
		c := newClient(t, url, hc, nil) // default bound: 2 m

		got, err := c.ListCustomers(context.Background())
		require.NoError(t, err)
		require.Len(t, got, 1)
		require.Equal(t, int64(2), calls.Load())
	})
}

func TestRetriesStopAtTheCallsTimeLimitAndAreLogged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := newSim(pcsim.Config{})
		var calls atomic.Int64
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.Contains(r.URL.Path, "/oauth2/") {
				sim.ServeHTTP(w, r)
				return
			}
			calls.Add(1)
			w.Header().Set("Retry-After", "4")
			w.WriteHeader(http.StatusServiceUnavailable)
		})
		url, hc, stop := startPipe(h)
		defer stop()
		var logs syncBuffer
		c := newClient(t, url, hc, func(cfg *pc.Config) {
			cfg.MaxRetries = 10
			cfg.MaxCallTime = 10 * time.Second
			cfg.Logger = slogAt(&logs, "INFO") // retries are logged above debug
		})

		start := time.Now()
		_, err := c.ListCustomers(context.Background())
		require.Equal(t, http.StatusServiceUnavailable, pc.StatusCode(err))
		// Attempts at 0 s, ~4 s, ~8 s; a third wait of ≥ 4 s would pass 10 s.
		require.Equal(t, int64(3), calls.Load())
		require.LessOrEqual(t, time.Since(start), 10*time.Second)
		out := logs.String()
		require.Equal(t, 2, strings.Count(out, "partner center call retrying"), out)
		require.Contains(t, out, "attempt=2")
		require.Contains(t, out, "attempt=3")
		require.Contains(t, out, `cause="HTTP 503"`)
		require.Contains(t, out, "wait_seconds=4")
		require.Contains(t, out, "would pass the call's time limit 10s")
	})
}

func TestAListingLongerThanMaxListedIsAnError(t *testing.T) {
	sim := newSim(pcsim.Config{})
	addCustomers(t, sim, 5)
	url, hc := startSim(t, sim)
	c := newClient(t, url, hc, func(cfg *pc.Config) {
		cfg.MaxListed = 4
		cfg.PageSize = 2
	})
	got, err := c.ListCustomers(context.Background())
	require.ErrorIs(t, err, pc.ErrListingTooLong)
	require.ErrorContains(t, err, "list customers: more than 4 items")
	require.Nil(t, got)

	// At the bound, the listing is whole.
	c = newClient(t, url, hc, func(cfg *pc.Config) {
		cfg.MaxListed = 5
		cfg.PageSize = 2
	})
	got, err = c.ListCustomers(context.Background())
	require.NoError(t, err)
	require.Len(t, got, 5)
}

func TestWaitingForALimiterSlotEndsAtTheCallersDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := newSim(pcsim.Config{})
		addCustomers(t, sim, 1)
		url, hc, stop := startPipe(sim)
		defer stop()
		c := newClient(t, url, hc, func(cfg *pc.Config) { cfg.Limiter = ratelimit.NewWindow(1, time.Minute) })
		_, err := c.ListCustomers(context.Background()) // the window's one slot, for 60 s
		require.NoError(t, err)

		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		start := time.Now()
		_, err = c.ListCustomers(ctx)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Equal(t, 5*time.Second, time.Since(start), "the wait for a slot outlived the deadline")
		require.Len(t, apiRequests(sim), 1)
	})
}

func TestCancellationEndsEveryPlainWaitAtOnce(t *testing.T) {
	tests := []struct {
		name    string
		handler func(sim *pcsim.Server) http.Handler
		limiter bool
	}{
		{"the backoff after a 503", func(sim *pcsim.Server) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.Contains(r.URL.Path, "/oauth2/") {
					sim.ServeHTTP(w, r)
					return
				}
				w.Header().Set("Retry-After", "30")
				w.WriteHeader(http.StatusServiceUnavailable)
			})
		}, false},
		{"the Retry-After of a token 429", func(sim *pcsim.Server) http.Handler {
			var calls atomic.Int64
			return throttleForever(sim, true, "60", &calls)
		}, false},
		{"the wait for a limiter slot", func(sim *pcsim.Server) http.Handler { return sim }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				sim := newSim(pcsim.Config{})
				url, hc, stop := startPipe(tt.handler(sim))
				defer stop()
				c := newClient(t, url, hc, func(cfg *pc.Config) {
					if tt.limiter {
						lim := ratelimit.NewWindow(1, time.Minute)
						release, err := lim.Acquire(context.Background())
						require.NoError(t, err)
						release() // the one slot is taken for 60 s
						cfg.Limiter = lim
					}
				})
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
				synctest.Wait() // the call is waiting
				cancelledAt := time.Now()
				cancel()
				<-done
				require.ErrorIs(t, callErr, context.Canceled)
				require.Equal(t, cancelledAt, returnedAt, "the call kept waiting after its context ended")
			})
		})
	}
}
