package engine_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tipreaper/tipreaper/internal/engine"
	"github.com/tipreaper/tipreaper/internal/pcsim"
	"github.com/tipreaper/tipreaper/internal/store"
)

const globalKeepID = "33333333-3333-3333-3333-333333333333"

// sandbox is a sandbox with one customer for every way of being spared and
// three that expired: two with orders, one without.
func sandbox() []pcsim.SeedCustomer {
	globalKeep := ci("keep-global", 10*day, software())
	globalKeep.ID = globalKeepID
	return []pcsim.SeedCustomer{
		ci("old-a", 10*day, software(), reserved()),
		ci("old-b", 5*day, software()),
		ci("old-bare", 4*day),
		ci("young", 1*day, software()),
		globalKeep,
		ci("golden-1", 10*day, software()), // policy keep: ^ci-golden
		ci("keep-store", 10*day, software()),
		{Domain: "contoso.onmicrosoft.com", CompanyName: "Contoso", Age: 30 * day, Orders: []pcsim.SeedOrder{software()}},
	}
}

// newSandbox is a harness on sandbox(), with keep-store protected by a
// reaper_keep row.
func newSandbox(t *testing.T, open func(testing.TB) store.Store) *harness {
	h := newHarness(t, opts{store: open, customers: sandbox(), policies: sandboxPolicy,
		keep: "  customer_ids: [" + globalKeepID + "]\n"})
	require.NoError(t, h.store.AddKeep(context.Background(), store.Keep{CustomerID: h.id("keep-store"), Reason: "used by the nightly e2e", AddedBy: "test"}))
	return h
}

const sandboxPolicy = `
  - name: ci
    account: tip
    select:
      domain: '^ci-'
    older_than: 72h
    keep:
      domains: ['^ci-golden']
`

func TestAPassDeletesExactlyTheExpiredUnprotectedCustomers(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			h := newSandbox(t, b.open)

			r := h.pass()

			require.Equal(t, []string{"old-a", "old-b", "old-bare"}, h.gone())
			for _, name := range []string{"young", "keep-global", "golden-1", "keep-store", "contoso"} {
				require.Equal(t, pcsim.Mutations{}, h.mutations(name), "%s was spared but got a PATCH or DELETE", name)
			}
			require.Equal(t, pcsim.Mutations{Patches: 2, Deletes: 1}, h.mutations("old-a"))
			require.Equal(t, pcsim.Mutations{Patches: 1, Deletes: 1}, h.mutations("old-b"))
			require.Equal(t, pcsim.Mutations{Deletes: 1}, h.mutations("old-bare"), "a customer without orders needs no PATCH")

			require.Equal(t, store.RunSucceeded, r.Status)
			require.Equal(t, 0, r.ExitCode())
			require.Equal(t, store.Counts{Listed: 8, Selected: 3, Deleted: 3, Skipped: 4}, r.Counts)
			run := h.lastRun()
			require.Equal(t, r.RunID, run.ID)
			require.Equal(t, store.ModeLive, run.Mode)
			require.Equal(t, store.RunSucceeded, run.Status)
			require.Equal(t, r.Counts, run.Counts)

			for _, name := range []string{"old-a", "old-b", "old-bare"} {
				id := h.id(name)
				require.Equal(t, engine.OutcomeDeleted, item(t, r, id).Outcome)
				st := h.state(name)
				require.Equal(t, store.StateDeleted, st.State)
				require.False(t, st.DeletedAt.IsZero())
				require.Empty(t, st.PendingAction)

				deletes := h.requests(http.MethodDelete, "/v1/customers/"+id)
				require.Len(t, deletes, 1)
				require.Equal(t, http.StatusNoContent, deletes[0].Status)
				evs := h.customerEvents(name)
				ok, found := find(evs, store.ActionDelete, store.OutcomeOK)
				require.True(t, found, "%s has no delete/ok row", name)
				require.Equal(t, deletes[0].RequestID, ok.MSRequestID, "the audit row names another request than the DELETE the server saw")
				require.Equal(t, deletes[0].CorrelationID, ok.MSCorrelationID)
				require.Equal(t, http.StatusNoContent, ok.HTTPStatus)
				intent, found := find(evs, store.ActionDelete, store.OutcomeIntent)
				require.True(t, found, "%s has no delete intent row", name)
				require.Equal(t, ok.MSRequestID, intent.MSRequestID)
				require.Equal(t, r.RunID, ok.RunID)
				require.Equal(t, account, ok.Account)
				require.Equal(t, "ci", ok.Policy)
			}

			// Every PATCH the server saw has its intent row, with the same MS-RequestId.
			for _, name := range []string{"old-a", "old-b"} {
				evs := h.customerEvents(name)
				for _, req := range h.sim.Requests() {
					if req.Method == http.MethodPatch && strings.HasPrefix(req.Path, "/v1/customers/"+h.id(name)+"/") {
						require.True(t, containsRequest(evs, store.ActionCancelOrder, store.OutcomeIntent, req.RequestID), "PATCH %s has no intent row", req.Path)
						require.True(t, containsRequest(evs, store.ActionCancelOrder, store.OutcomeOK, req.RequestID), "PATCH %s has no result row", req.Path)
					}
				}
			}

			for name, want := range map[string]string{
				"keep-global": "keep.customer_ids (global)",
				"golden-1":    "keep.domains",
				"keep-store":  "used by the nightly e2e",
			} {
				it := item(t, r, h.id(name))
				require.Equal(t, engine.OutcomeSkipped, it.Outcome)
				require.Contains(t, it.Reason, want)
				skip, found := find(h.customerEvents(name), store.ActionSkip, store.OutcomeSkipped)
				require.True(t, found, "a protected customer's skip is audited")
				require.Contains(t, skip.Detail, want)
			}
			require.Equal(t, engine.OutcomeSkipped, item(t, r, h.id("young")).Outcome)
			require.Contains(t, item(t, r, h.id("young")).Reason, "not older than 3d")
		})
	}
}

func containsRequest(evs []store.Event, action, outcome, requestID string) bool {
	for _, ev := range evs {
		if ev.Action == action && ev.Outcome == outcome && ev.MSRequestID == requestID {
			return true
		}
	}
	return false
}
