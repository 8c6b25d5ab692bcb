package engine_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tipreaper/tipreaper/internal/engine"
	"github.com/tipreaper/tipreaper/internal/pcsim"
	"github.com/tipreaper/tipreaper/internal/store"
)

// inFlight counts the customer requests a simulator is serving at once.
type inFlight struct {
	mu   sync.Mutex
	now  int
	peak int
}

func (f *inFlight) wrap(sim *pcsim.Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/v1/customers/") {
			sim.ServeHTTP(w, r)
			return
		}
		f.mu.Lock()
		f.now++
		f.peak = max(f.peak, f.now)
		f.mu.Unlock()
		defer func() {
			f.mu.Lock()
			f.now--
			f.mu.Unlock()
		}()
		sim.ServeHTTP(w, r)
	})
}

func TestConcurrencyBoundsTheCallsInFlightNotTheCustomersWaiting(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			var customers []pcsim.SeedCustomer
			for i := range 8 {
				customers = append(customers, ci(fmt.Sprintf("old-%d", i), time.Duration(10+i)*day, software(), reserved()))
			}
			f := &inFlight{}
			// Every request takes a while, so customers that were allowed to
			// call at the same time would overlap. cancel_timeout is long so a
			// loaded machine cannot time the first customers out before the
			// last one waits.
			h := newHarness(t, opts{store: b.open, customers: customers, limits: "  concurrency: 2\n  cancel_timeout: 1h\n", wrap: f.wrap,
				sim: pcsim.Config{Latency: [2]time.Duration{10 * time.Millisecond, 20 * time.Millisecond},
					CancelDelay: [2]time.Duration{time.Hour, time.Hour}, TokenTTL: 1000 * time.Hour}})

			// Stop once every customer awaits its cancellations: with two
			// slots, eight customers can only all be waiting at once if a
			// waiting customer holds none.
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var mu sync.Mutex
			awaiting := map[string]bool{}
			e := h.engine(func(o *engine.Options) {
				record := o.OnEvent
				o.OnEvent = func(ev store.Event) {
					record(ev)
					if ev.Action != store.ActionPoll {
						return
					}
					mu.Lock()
					defer mu.Unlock()
					if awaiting[ev.CustomerID] = true; len(awaiting) == len(customers) {
						cancel()
					}
				}
			})
			r, err := e.Pass(ctx)
			require.NoError(t, err)
			require.ErrorIs(t, ctx.Err(), context.Canceled, "not every customer got to wait at once")

			f.mu.Lock()
			peak := f.peak
			f.mu.Unlock()
			require.LessOrEqual(t, peak, 2, "more calls in flight than limits.concurrency")
			require.Equal(t, store.RunInterrupted, r.Status)
			for i := range customers {
				name := fmt.Sprintf("old-%d", i)
				require.Equal(t, store.StateAwaitingCancel, h.state(name).State, name)
				require.Equal(t, pcsim.Mutations{Patches: 2}, h.mutations(name), name)
				requireAnsweredIntents(t, name, h.customerEvents(name))
			}
		})
	}
}
