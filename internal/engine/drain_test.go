package engine_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tipreaper/tipreaper/internal/engine"
	"github.com/tipreaper/tipreaper/internal/pcsim"
	"github.com/tipreaper/tipreaper/internal/store"
)

// stall holds the first request of one method on a customer until its
// caller goes away, so a graceful stop's drain ends with the call in
// flight. Partner Center either never saw it (before) or carried it out and
// the answer is lost (after).
type stall struct {
	method string
	after  bool
	// arrived is called when the held request arrives.
	arrived func()

	mu       sync.Mutex
	held     bool
	requests []string // MS-RequestId of every request of method that arrived
}

func (s *stall) wrap(sim *pcsim.Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != s.method || !strings.HasPrefix(r.URL.Path, "/v1/customers/") {
			sim.ServeHTTP(w, r)
			return
		}
		s.mu.Lock()
		s.requests = append(s.requests, r.Header.Get("MS-RequestId"))
		hold := !s.held
		s.held = true
		arrived := s.arrived
		s.mu.Unlock()
		if !hold {
			sim.ServeHTTP(w, r)
			return
		}
		// Read the body first: the server notices a caller that went away
		// only once the request body has been consumed.
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := httptest.NewRecorder()
		if s.after {
			sim.ServeHTTP(rec, r)
		}
		arrived()
		// The caller's drain ends long before this safety net, which only
		// keeps a broken test from hanging.
		select {
		case <-r.Context().Done():
		case <-time.After(20 * time.Second):
			if !s.after {
				sim.ServeHTTP(rec, r)
			}
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			_, _ = w.Write(rec.Body.Bytes())
		}
	})
}

func (s *stall) sent() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}

func TestAGracefulStopWhoseDrainEndsMidCallIsFinishedByTheNextPass(t *testing.T) {
	for _, b := range backends {
		for _, tc := range []struct {
			name   string
			method string
			after  bool
		}{
			{"a PATCH Partner Center never saw", http.MethodPatch, false},
			{"a PATCH Partner Center carried out", http.MethodPatch, true},
			{"a DELETE Partner Center never saw", http.MethodDelete, false},
			{"a DELETE Partner Center carried out", http.MethodDelete, true},
		} {
			t.Run(b.name+" "+tc.name, func(t *testing.T) {
				t.Parallel()
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				s := &stall{method: tc.method, after: tc.after, arrived: cancel}
				o := opts{store: b.open, customers: []pcsim.SeedCustomer{ci("old", 10*day, software())},
					limits: "  drain_timeout: 50ms\n", wrap: s.wrap}
				if tc.method == http.MethodPatch {
					// An accepted cancel reads pending for an hour of the
					// simulator's time, so the next pass finds the order of a
					// PATCH that took effect pending, not yet cancelled.
					o.limits += "  cancel_timeout: 1d\n"
					o.sim = pcsim.Config{CancelDelay: [2]time.Duration{time.Hour, time.Hour}, TokenTTL: 1000 * time.Hour}
				}
				h := newHarness(t, o)
				step := store.ActionCancelOrder
				if tc.method == http.MethodDelete {
					step = store.ActionDelete
				}

				r, err := h.engine().Pass(ctx)
				require.NoError(t, err)

				require.Len(t, s.sent(), 1)
				require.Equal(t, store.RunInterrupted, r.Status)
				require.Equal(t, store.RunInterrupted, h.lastRun().Status)
				require.Equal(t, 1, r.ExitCode())
				evs := h.customerEvents("old")
				intent, found := find(evs, step, store.OutcomeIntent)
				require.True(t, found, "no %s intent row: %+v", step, evs)
				require.Equal(t, s.sent()[0], intent.MSRequestID)
				result, found := find(evs, step, store.OutcomeError)
				require.True(t, found, "the call the drain cut short has no result row: %+v", evs)
				require.Equal(t, intent.MSRequestID, result.MSRequestID)
				requireAnsweredIntents(t, "old", evs)
				st := h.state("old")
				require.Empty(t, st.PendingAction, "the cut call is left pending")
				require.NotEqual(t, store.StateBlocked, st.State, "a cut call blocked the customer")
				require.NotEqual(t, store.StateDeleted, st.State, "a deletion was assumed, not confirmed")

				var once sync.Once
				r = h.pass(func(o *engine.Options) {
					record := o.OnEvent
					o.OnEvent = func(ev store.Event) {
						record(ev)
						// The first poll has seen the order pending: its hour passes.
						if ev.Action == store.ActionPoll {
							once.Do(func() { h.clock.Advance(2 * time.Hour) })
						}
					}
				})

				require.Equal(t, []string{"old"}, h.gone(), "%+v", h.customerEvents("old"))
				require.Equal(t, store.StateDeleted, h.state("old").State)
				require.Equal(t, store.RunSucceeded, r.Status)
				// A step Partner Center carried out is not sent again; one it
				// never saw is, as a new request.
				sent := s.sent()
				if tc.after {
					require.Len(t, sent, 1, "the next pass repeated a %s that had taken effect", tc.method)
				} else {
					require.Len(t, sent, 2, "the next pass did not redo the %s", tc.method)
				}
				require.Equal(t, pcsim.Mutations{Patches: 1, Deletes: 1}, h.mutations("old"), "Partner Center got a step twice")
				requireAnsweredIntents(t, "old", h.customerEvents("old"))
				want := engine.OutcomeDeleted
				if tc.after && tc.method == http.MethodDelete {
					want = engine.OutcomeAlreadyGone
				}
				require.Equal(t, want, item(t, r, h.id("old")).Outcome)
			})
		}
	}
}
