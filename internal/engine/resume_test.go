package engine_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tipreaper/tipreaper/internal/engine"
	"github.com/tipreaper/tipreaper/internal/pc"
	"github.com/tipreaper/tipreaper/internal/pcsim"
	"github.com/tipreaper/tipreaper/internal/store"
)

func TestAPassResumesACrashedStepWithItsRecordedRequestID(t *testing.T) {
	const (
		correlation = "0b6f8a34-2d1e-4c55-9f0a-6e7d8c9b0a12"
		crashedRID  = "7e1d2c3b-4a59-4687-9b8c-d0e1f2a3b4c5"
	)
	for _, b := range backends {
		for _, tc := range []struct {
			name string
			// orders of the customer; the crash happened on the first.
			orders []pcsim.SeedOrder
			state  string
			intent store.Event
			// wantMethod and wantPath are the request that must carry the
			// crashed step's MS-RequestId.
			wantMethod, wantPath string
		}{
			{
				name:       "after the delete intent",
				orders:     []pcsim.SeedOrder{{ID: "o1", Type: pcsim.TypeSoftware, Status: pcsim.StatusCancelled}},
				state:      store.StateDeleting,
				intent:     store.Event{Action: store.ActionDelete, Outcome: store.OutcomeIntent, MSRequestID: crashedRID},
				wantMethod: http.MethodDelete, wantPath: "",
			},
			{
				name:       "after a cancel intent",
				orders:     []pcsim.SeedOrder{{ID: "o1", Type: pcsim.TypeSoftware}, {ID: "o2", Type: pcsim.TypeReservedInstance}},
				state:      store.StateCancelling,
				intent:     store.Event{Action: store.ActionCancelOrder, OrderID: "o1", Outcome: store.OutcomeIntent, MSRequestID: crashedRID},
				wantMethod: http.MethodPatch, wantPath: "/orders/o1",
			},
		} {
			t.Run(b.name+" "+tc.name, func(t *testing.T) {
				t.Parallel()
				h := newHarness(t, opts{store: b.open, customers: []pcsim.SeedCustomer{ci("crashed", 10*day, tc.orders...)}})
				id := h.id("crashed")
				crashAt := h.clock.Now().Add(-time.Minute)
				// What a pass killed right after writing the intent leaves.
				intent := tc.intent
				intent.At, intent.Account, intent.CustomerID, intent.Policy, intent.MSCorrelationID = crashAt, h.account, id, "ci", correlation
				require.NoError(t, h.store.Transition(context.Background(), store.CustomerState{
					Account: h.account, CustomerID: id, Domain: "ci-crashed.onmicrosoft.com", CompanyName: "CI crashed",
					FirstSeen: crashAt.Add(-time.Hour), LastSeen: crashAt, State: tc.state, Policy: "ci", StateAt: crashAt,
					CorrelationID: correlation, PendingAction: intent.Action, PendingOrderID: intent.OrderID, PendingRequestID: crashedRID,
				}, intent))

				r := h.pass()

				require.Equal(t, []string{"crashed"}, h.gone(), "%+v\n%+v", r.Items, h.customerEvents("crashed"))
				require.Equal(t, engine.OutcomeDeleted, item(t, r, id).Outcome)
				path := "/v1/customers/" + id + tc.wantPath
				reqs := h.requests(tc.wantMethod, path)
				require.Len(t, reqs, 1)
				require.Equal(t, crashedRID, reqs[0].RequestID, "the resumed step is not the crashed request")
				require.Equal(t, correlation, reqs[0].CorrelationID, "the resumed customer lost its correlation id")
				for _, req := range h.sim.Requests() {
					if (req.Method == http.MethodPatch || req.Method == http.MethodDelete) && req.Path != path {
						require.NotEqual(t, crashedRID, req.RequestID, "%s %s reused the crashed step's request id", req.Method, req.Path)
					}
				}

				evs := h.customerEvents("crashed")
				resume, found := find(evs, store.ActionResume, store.OutcomeOK)
				require.True(t, found, "no resume row")
				require.Contains(t, resume.Detail, crashedRID)
				result := store.ActionDelete
				if tc.intent.Action == store.ActionCancelOrder {
					result = store.ActionCancelOrder
				}
				require.True(t, containsRequest(evs, result, store.OutcomeOK, crashedRID), "the resumed step's result row lacks its request id")
				require.Equal(t, store.StateDeleted, h.state("crashed").State)
			})
		}
	}
}

func TestAGracefulStopLeavesEveryCustomerResumable(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			var customers []pcsim.SeedCustomer
			for i := range 4 {
				customers = append(customers, ci(fmt.Sprintf("old-%d", i), time.Duration(10-i)*day, software(), reserved()))
			}
			// Orders take an hour of the simulator's time to cancel. With one
			// slot, old-0 cancels both orders and waits (a waiting customer
			// holds no slot), then old-1 starts; the stop comes as old-1's
			// first cancel is answered, so old-0 is awaiting cancellation,
			// old-1 is between two cancels, and old-2 and old-3 never start.
			h := newHarness(t, opts{store: b.open, customers: customers, limits: "  concurrency: 1\n",
				sim: pcsim.Config{CancelDelay: [2]time.Duration{time.Hour, time.Hour}, TokenTTL: 1000 * time.Hour}})

			// A safety net only: were a waiting customer to hold its slot,
			// old-1 would never start and the stop never come.
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			old1 := h.id("old-1")
			e := h.engine(func(o *engine.Options) {
				record := o.OnEvent
				o.OnEvent = func(ev store.Event) {
					record(ev)
					if ev.CustomerID == old1 && ev.Action == store.ActionCancelOrder && ev.Outcome == store.OutcomeOK {
						cancel()
					}
				}
			})
			r, err := e.Pass(ctx)
			require.NoError(t, err)

			require.Empty(t, h.gone())
			require.Equal(t, store.RunInterrupted, r.Status)
			require.Equal(t, 1, r.ExitCode())
			require.Equal(t, store.RunInterrupted, h.lastRun().Status)
			for i, tc := range []struct {
				name    string
				patches int
				state   string
			}{
				{"old-0", 2, store.StateAwaitingCancel},
				{"old-1", 1, store.StateCancelling},
				{"old-2", 0, store.StateSeen},
				{"old-3", 0, store.StateSeen},
			} {
				require.Equal(t, engine.OutcomeInterrupted, item(t, r, h.id(tc.name)).Outcome, tc.name)
				evs := h.customerEvents(tc.name)
				requireAnsweredIntents(t, tc.name, evs)
				st := h.state(tc.name)
				require.Empty(t, st.PendingAction, "%s is left with an unanswered call", tc.name)
				require.Equal(t, tc.state, st.State, tc.name)
				require.Equal(t, pcsim.Mutations{Patches: tc.patches}, h.mutations(tc.name), tc.name)
				if i < 2 {
					require.Equal(t, store.ActionStop, evs[len(evs)-1].Action, "%s's last row is not its stop", tc.name)
					require.Contains(t, evs[len(evs)-1].Detail, tc.state)
					continue
				}
				require.Empty(t, h.requests(http.MethodGet, "/v1/customers/"+h.id(tc.name)+"/orders"), "%s was started after the stop", tc.name)
				require.False(t, has(evs, store.ActionCancelOrder, store.OutcomeIntent))
			}

			// The stopped customers' orders have had their hour; the others'
			// cancellations take effect as soon as they are accepted.
			h.clock.Advance(time.Hour + time.Minute)
			r = h.pass(func(o *engine.Options) {
				record := o.OnEvent
				o.OnEvent = func(ev store.Event) {
					record(ev)
					if ev.Action == store.ActionCancelOrder && ev.Outcome == store.OutcomeOK {
						h.clock.Advance(time.Hour + time.Minute)
					}
				}
			})

			require.Len(t, h.gone(), 4)
			require.Equal(t, store.RunSucceeded, r.Status)
			for i, name := range []string{"old-0", "old-1", "old-2", "old-3"} {
				evs := h.customerEvents(name)
				requireAnsweredIntents(t, name, evs)
				require.Equal(t, store.StateDeleted, h.state(name).State)
				require.Equal(t, i < 2, has(evs, store.ActionResume, store.OutcomeOK), "only the stopped customers resume")
				want := pcsim.Mutations{Patches: 2, Deletes: 1}
				require.Equal(t, want, h.mutations(name), "%s: a step was repeated", name)
			}
		})
	}
}

// requireAnsweredIntents checks that every intent row has its result row,
// with the same request id.
func requireAnsweredIntents(t *testing.T, name string, evs []store.Event) {
	t.Helper()
	for _, ev := range evs {
		if ev.Outcome != store.OutcomeIntent {
			continue
		}
		answered := false
		for _, res := range evs {
			if res.Action == ev.Action && res.OrderID == ev.OrderID && res.MSRequestID == ev.MSRequestID && res.Outcome != store.OutcomeIntent {
				answered = true
			}
		}
		require.True(t, answered, "%s: %s %s intent %s has no result row", name, ev.Action, ev.OrderID, ev.MSRequestID)
	}
}

func TestACustomerInFlightThatIsNoLongerListedIsRecordedDeletedOnlyWhenAReadSaysGone(t *testing.T) {
	const crashedRID = "4c3b2a19-0f8e-4d7c-9b6a-5f4e3d2c1b0a"
	for _, b := range backends {
		for _, tc := range []struct {
			name string
			// readFails makes the confirming read fail with something other than 404.
			readFails bool
		}{
			{"its orders answer 404", false},
			{"its orders answer 400", true},
		} {
			t.Run(b.name+" when "+tc.name, func(t *testing.T) {
				t.Parallel()
				h := newHarness(t, opts{store: b.open, customers: []pcsim.SeedCustomer{ci("crashed", 10*day), ci("other", day)}})
				id := h.id("crashed")
				// The crashed pass wrote its intent and sent the DELETE, which
				// Partner Center carried out; the pass died before the answer.
				crashAt := h.clock.Now().Add(-time.Minute)
				require.NoError(t, h.store.Transition(context.Background(), store.CustomerState{
					Account: h.account, CustomerID: id, Domain: "ci-crashed.onmicrosoft.com", FirstSeen: crashAt.Add(-time.Hour),
					LastSeen: crashAt, State: store.StateDeleting, Policy: "ci", StateAt: crashAt, CorrelationID: pc.NewGUID(),
					PendingAction: store.ActionDelete, PendingRequestID: crashedRID,
				}, store.Event{At: crashAt, Account: h.account, CustomerID: id, Policy: "ci", Action: store.ActionDelete,
					Outcome: store.OutcomeIntent, MSRequestID: crashedRID}))
				client := h.client()
				require.NoError(t, client.DeleteCustomer(pc.WithRequestID(context.Background(), crashedRID), id))
				if tc.readFails {
					h.sim.FailNext(http.MethodGet, "/v1/customers/"+id+"/orders", http.StatusBadRequest, 1)
				}

				r := h.pass()

				require.Len(t, h.requests(http.MethodDelete, "/v1/customers/"+id), 1, "the DELETE was sent again")
				require.Len(t, h.requests(http.MethodGet, "/v1/customers/"+id+"/orders"), 1, "the engine did not read the customer to confirm it gone")
				st := h.state("crashed")
				evs := h.customerEvents("crashed")
				if tc.readFails {
					require.Equal(t, store.StateDeleting, st.State, "a deletion was assumed, not confirmed")
					require.False(t, has(evs, store.ActionDelete, store.OutcomeOK))
					return
				}
				require.Equal(t, store.StateDeleted, st.State)
				require.Empty(t, st.PendingAction)
				ok, found := find(evs, store.ActionDelete, store.OutcomeOK)
				require.True(t, found, "no delete/ok row")
				require.Equal(t, crashedRID, ok.MSRequestID, "the confirmation does not name the request that deleted it")
				require.Equal(t, http.StatusNotFound, ok.HTTPStatus)
				require.Equal(t, engine.OutcomeAlreadyGone, item(t, r, id).Outcome)
				require.Equal(t, 1, r.Counts.AlreadyGone)
			})
		}
	}
}
