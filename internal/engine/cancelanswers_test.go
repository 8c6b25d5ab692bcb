package engine_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tipreaper/tipreaper/internal/engine"
	"github.com/tipreaper/tipreaper/internal/pcsim"
	"github.com/tipreaper/tipreaper/internal/store"
)

func TestACancelAlreadyInProgressIsNotAFailure(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			// Orders take an hour of the simulator's time to cancel, so the
			// client's retry of the PATCH whose answer was lost finds the order
			// pending: 409 with code 800060.
			h := newHarness(t, opts{store: b.open, customers: []pcsim.SeedCustomer{ci("old", 10*day, software())},
				limits: "  cancel_timeout: 1d\n",
				sim:    pcsim.Config{CancelDelay: [2]time.Duration{time.Hour, time.Hour}, TokenTTL: 1000 * time.Hour}})
			id := h.id("old")
			h.sim.FailNextAfter(http.MethodPatch, "/v1/customers/"+id+"/orders/", http.StatusInternalServerError, 1)

			r := h.pass(func(o *engine.Options) {
				record := o.OnEvent
				o.OnEvent = func(ev store.Event) {
					record(ev)
					// Once the 409 is recorded, the cancellation's hour passes.
					if ev.Action == store.ActionCancelOrder && ev.Outcome != store.OutcomeIntent {
						h.clock.Advance(2 * time.Hour)
					}
				}
			})

			var patches []pcsim.Request
			for _, p := range h.sim.Requests() {
				if p.Method == http.MethodPatch {
					patches = append(patches, p)
				}
			}
			require.Len(t, patches, 2)
			require.Equal(t, http.StatusInternalServerError, patches[0].Status)
			require.Equal(t, http.StatusConflict, patches[1].Status, "the retry did not meet an order in progress: the test proves nothing")
			require.Equal(t, patches[0].RequestID, patches[1].RequestID)

			require.Equal(t, []string{"old"}, h.gone(), "%+v", h.customerEvents("old"))
			require.Equal(t, store.RunSucceeded, r.Status)
			require.Equal(t, engine.OutcomeDeleted, item(t, r, id).Outcome)
			require.Equal(t, store.StateDeleted, h.state("old").State)
			evs := h.customerEvents("old")
			requireAnsweredIntents(t, "old", evs)
			res, found := find(evs, store.ActionCancelOrder, store.OutcomeOK)
			require.True(t, found, "the 409 was not recorded as an accepted cancel: %+v", evs)
			require.Equal(t, http.StatusConflict, res.HTTPStatus)
			require.Equal(t, patches[0].RequestID, res.MSRequestID)
			require.False(t, has(evs, store.ActionFail, store.OutcomeError))
			require.False(t, has(evs, store.ActionBlock, store.OutcomeError))
			require.False(t, has(evs, store.ActionCancelOrder, store.OutcomeError))
		})
	}
}

// requireBlockedForGood checks that the customer is blocked after one
// refused PATCH and no DELETE, and that a later pass leaves it alone while
// still reporting it.
func requireBlockedForGood(t *testing.T, h *harness, r *engine.Report, name, why string) {
	t.Helper()
	id := h.id(name)
	it := item(t, r, id)
	require.Equal(t, engine.OutcomeBlocked, it.Outcome)
	require.Contains(t, it.Error, why)
	require.Equal(t, store.StateBlocked, h.state(name).State)
	require.Empty(t, h.state(name).PendingAction)
	evs := h.customerEvents(name)
	requireAnsweredIntents(t, name, evs)
	block, found := find(evs, store.ActionBlock, store.OutcomeError)
	require.True(t, found, "no block row: %+v", evs)
	require.Contains(t, block.Error, why)
	require.False(t, has(evs, store.ActionFail, store.OutcomeError), "a blocked customer is not a failure to retry")
	require.Equal(t, store.RunPartial, r.Status)
	require.Equal(t, 1, r.ExitCode())

	mut := h.mutations(name)
	reads := len(h.requests(http.MethodGet, "/v1/customers/"+id+"/orders"))
	rows := len(evs)

	r = h.pass()

	require.Equal(t, mut, h.mutations(name), "a later pass sent %s a PATCH or DELETE", name)
	require.Len(t, h.requests(http.MethodGet, "/v1/customers/"+id+"/orders"), reads, "a later pass worked the blocked customer again")
	require.Len(t, h.customerEvents(name), rows)
	require.Equal(t, store.StateBlocked, h.state(name).State)
	it = item(t, r, id)
	require.Equal(t, engine.OutcomeBlocked, it.Outcome, "a blocked customer is still reported")
	require.Contains(t, it.Reason, why)
	require.True(t, it.Standing)
	require.Equal(t, 0, r.ExitCode(), "blocked by an earlier pass: no new problem, so no exit 1 on every later pass")
}

func TestACancelRefusedForGoodBlocksTheCustomer(t *testing.T) {
	for _, b := range backends {
		for _, tc := range []struct {
			name  string
			order pcsim.SeedOrder
			// lag sets the engine's clock behind Partner Center's, so that it
			// sees an order younger than Partner Center does.
			lag  time.Duration
			code string
			why  string
		}{
			{"400 800063 for a subscription-based order", pcsim.SeedOrder{Type: pcsim.TypeSubscription}, 0, "800063", "subscription"},
			{"400 800061 for an order that cannot be cancelled", pcsim.SeedOrder{Type: pcsim.TypeSoftware, Status: pcsim.StatusUnknown}, 0, "800061", "cannot be cancelled"},
			{"400 900117 for an order the engine took for younger than 60 days", pcsim.SeedOrder{Type: pcsim.TypeSoftware, Age: 61 * day}, 2 * day, "900117", "cancellation window"},
		} {
			t.Run(b.name+" "+tc.name, func(t *testing.T) {
				t.Parallel()
				h := newHarness(t, opts{store: b.open, customers: []pcsim.SeedCustomer{ci("stuck", 10*day, tc.order), ci("fine", 10*day, software())}})
				lagging := func(o *engine.Options) { o.Now = func() time.Time { return h.clock.Now().Add(-tc.lag) } }

				r := h.pass(lagging)

				require.Equal(t, []string{"fine"}, h.gone(), "the rest of the pass did not go on")
				require.Equal(t, pcsim.Mutations{Patches: 1}, h.mutations("stuck"), "a refused cancel was retried, or the customer was deleted")
				patches := h.requests(http.MethodPatch, "/v1/customers/"+h.id("stuck")+"/orders/"+orderOf(t, h, "stuck"))
				require.Len(t, patches, 1)
				require.Equal(t, http.StatusBadRequest, patches[0].Status)
				res, found := find(h.customerEvents("stuck"), store.ActionCancelOrder, store.OutcomeError)
				require.True(t, found, "no cancel_order result row")
				require.Equal(t, http.StatusBadRequest, res.HTTPStatus)
				require.Contains(t, res.Error, tc.code)
				require.Equal(t, patches[0].RequestID, res.MSRequestID)
				requireBlockedForGood(t, h, r, "stuck", tc.why)
			})
		}
	}
}

// orderOf is the id of the customer's only order.
func orderOf(t *testing.T, h *harness, name string) string {
	t.Helper()
	orders, err := h.client().ListOrders(context.Background(), h.id(name))
	require.NoError(t, err)
	require.Len(t, orders, 1)
	return orders[0].ID
}

// refuseDelete answers every DELETE with 403 code 900150 (the app's role
// lacks the right) without passing it to the simulator, and records the
// MS-RequestId of each.
func refuseDelete(mu *sync.Mutex, sent *[]string) func(*pcsim.Server) http.Handler {
	return func(sim *pcsim.Server) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodDelete {
				sim.ServeHTTP(w, r)
				return
			}
			mu.Lock()
			*sent = append(*sent, r.Header.Get("MS-RequestId"))
			mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"code":900150,"description":"The supplied role does not have the rights to perform the requested operation.","data":[],"source":"PartnerFD"}`))
		})
	}
}

func TestADeleteRefusedWith403OtherThan20002BlocksTheCustomer(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			var sent []string
			deletes := func() []string {
				mu.Lock()
				defer mu.Unlock()
				return append([]string(nil), sent...)
			}
			h := newHarness(t, opts{store: b.open, customers: []pcsim.SeedCustomer{ci("old", 10*day, software())},
				wrap: refuseDelete(&mu, &sent)})

			r := h.pass()

			require.Equal(t, []string{"old"}, h.present())
			require.Len(t, deletes(), 1, "a DELETE refused with 403 was retried")
			require.Equal(t, pcsim.Mutations{Patches: 1}, h.mutations("old"))
			evs := h.customerEvents("old")
			res, found := find(evs, store.ActionDelete, store.OutcomeError)
			require.True(t, found, "no delete result row: %+v", evs)
			require.Equal(t, http.StatusForbidden, res.HTTPStatus)
			require.Equal(t, deletes()[0], res.MSRequestID)
			require.False(t, has(evs, store.ActionDelete, store.OutcomeOK), "a 403 other than 20002 was taken for a deletion")
			require.Zero(t, r.Counts.Deleted+r.Counts.AlreadyGone)
			requireBlockedForGood(t, h, r, "old", "403")
			require.Len(t, deletes(), 1, "a later pass sent the DELETE again")
		})
	}
}
