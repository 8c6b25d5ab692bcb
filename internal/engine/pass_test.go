package engine_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

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
    account: ${ACCOUNT}
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
				require.Equal(t, h.account, ok.Account)
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

func TestAnOrderThatNeverCancelsFailsOnlyItsCustomer(t *testing.T) {
	h := newHarness(t, opts{limits: "  cancel_timeout: 300ms\n", customers: []pcsim.SeedCustomer{
		ci("stuck", 10*day, software(), pcsim.SeedOrder{Type: pcsim.TypeReservedInstance, NeverCancels: true}),
		ci("a", 9*day, software()),
		ci("b", 8*day, reserved()),
	}})

	r := h.pass()

	require.Equal(t, []string{"a", "b"}, h.gone())
	require.Equal(t, pcsim.Mutations{Patches: 2}, h.mutations("stuck"), "a customer whose orders are not all cancelled got a DELETE")
	require.Equal(t, store.RunPartial, r.Status)
	require.Equal(t, 1, r.ExitCode())
	require.Equal(t, 1, r.Counts.Failed)
	require.Equal(t, 2, r.Counts.Deleted)

	it := item(t, r, h.id("stuck"))
	require.Equal(t, engine.OutcomeFailed, it.Outcome)
	require.Contains(t, it.Error, "cancel_timeout")
	st := h.state("stuck")
	require.Equal(t, store.StateFailed, st.State)
	require.Contains(t, st.Reason, "cancel_timeout")
	require.Empty(t, st.PendingAction)
	evs := h.customerEvents("stuck")
	fail, found := find(evs, store.ActionFail, store.OutcomeError)
	require.True(t, found, "the stuck customer has no fail row")
	require.Contains(t, fail.Error, "cancel_timeout")
	require.False(t, has(evs, store.ActionDelete, store.OutcomeIntent), "a delete was intended for the stuck customer")
	require.True(t, has(evs, store.ActionOrderCancelled, store.OutcomeOK), "the order that did cancel is recorded")
}

func TestACustomerWithAnOrderOlderThan60DaysIsBlockedAndNeverTouched(t *testing.T) {
	h := newHarness(t, opts{customers: []pcsim.SeedCustomer{
		// The fresh order comes first: a pass that cancelled orders before
		// checking them all would PATCH it.
		ci("ancient", 80*day, pcsim.SeedOrder{Type: pcsim.TypeSoftware, Age: day}, pcsim.SeedOrder{Type: pcsim.TypeReservedInstance, Age: 70 * day}),
		ci("fine", 10*day, software()),
	}})

	r := h.pass()

	require.Equal(t, []string{"fine"}, h.gone())
	require.Equal(t, pcsim.Mutations{}, h.mutations("ancient"), "an undeletable customer lost orders")
	require.Equal(t, store.RunPartial, r.Status)
	require.Equal(t, 1, r.ExitCode())
	it := item(t, r, h.id("ancient"))
	require.Equal(t, engine.OutcomeBlocked, it.Outcome)
	require.Contains(t, it.Error, "older than 60 days")
	require.Equal(t, store.StateBlocked, h.state("ancient").State)
	block, found := find(h.customerEvents("ancient"), store.ActionBlock, store.OutcomeError)
	require.True(t, found, "no block row")
	require.Contains(t, block.Error, "older than 60 days")
	ordersPath := "/v1/customers/" + h.id("ancient") + "/orders"
	reads := len(h.requests(http.MethodGet, ordersPath))
	rows := len(h.customerEvents("ancient"))

	r = h.pass()

	require.Equal(t, pcsim.Mutations{}, h.mutations("ancient"))
	require.Len(t, h.requests(http.MethodGet, ordersPath), reads, "the next pass worked the blocked customer again")
	require.Len(t, h.customerEvents("ancient"), rows)
	it = item(t, r, h.id("ancient"))
	require.Equal(t, engine.OutcomeBlocked, it.Outcome, "a blocked customer is still reported")
	require.Contains(t, it.Reason, "older than 60 days")
	require.True(t, it.Standing, "it was blocked before this pass")
	require.Equal(t, 1, r.Counts.Blocked)
	require.Equal(t, store.RunSucceeded, r.Status, "a customer blocked before the pass is no new problem")
	require.Equal(t, 0, r.ExitCode())
}

func TestADeleteWhoseAnswerWasLostCountsTheCustomerDeleted(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
	}{
		{"when the retry finds 404", http.StatusNotFound},
		{"when the retry finds 403 with code 20002", http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, opts{sim: pcsim.Config{GoneStatus: tc.status}, customers: []pcsim.SeedCustomer{ci("old", 10*day, software())}})
			path := "/v1/customers/" + h.id("old")
			h.sim.FailNextAfter(http.MethodDelete, path, http.StatusInternalServerError, 1)

			r := h.pass()

			require.Equal(t, []string{"old"}, h.gone())
			deletes := h.requests(http.MethodDelete, path)
			require.Len(t, deletes, 2)
			require.Equal(t, http.StatusInternalServerError, deletes[0].Status)
			require.Equal(t, tc.status, deletes[1].Status)
			require.Equal(t, deletes[0].RequestID, deletes[1].RequestID, "the retry is the same request")

			require.Equal(t, store.RunSucceeded, r.Status)
			require.Equal(t, engine.OutcomeAlreadyGone, item(t, r, h.id("old")).Outcome)
			require.Equal(t, 1, r.Counts.AlreadyGone)
			st := h.state("old")
			require.Equal(t, store.StateDeleted, st.State)
			require.False(t, st.DeletedAt.IsZero())
			ok, found := find(h.customerEvents("old"), store.ActionDelete, store.OutcomeOK)
			require.True(t, found, "no delete/ok row")
			require.Equal(t, tc.status, ok.HTTPStatus)
			require.Equal(t, deletes[0].RequestID, ok.MSRequestID)
			require.Contains(t, ok.Detail, "already gone")
		})
	}
}

func TestGraceMarksFirstAndDeletesOnlyAfterIt(t *testing.T) {
	h := newHarness(t, opts{policies: ciPolicy + "    grace: 2h\n", customers: []pcsim.SeedCustomer{
		ci("g1", 10*day, software()),
		ci("g2", 10*day, software()),
	}})

	r := h.pass()
	require.Zero(t, h.sim.Stats().MutatingCalls, "the first pass of a grace policy changed Partner Center")
	for _, name := range []string{"g1", "g2"} {
		it := item(t, r, h.id(name))
		require.Equal(t, engine.ActionMark, it.Action)
		require.Equal(t, engine.OutcomeMarked, it.Outcome)
		st := h.state(name)
		require.Equal(t, store.StateMarked, st.State)
		require.False(t, st.MarkedAt.IsZero())
		require.True(t, st.DeleteAfter.Equal(st.MarkedAt.Add(2*time.Hour)), "delete_after %s is not marked_at %s plus the grace", st.DeleteAfter, st.MarkedAt)
		require.True(t, has(h.customerEvents(name), store.ActionMark, store.OutcomeOK))
	}
	require.Equal(t, 2, r.Counts.Marked)

	h.clock.Advance(time.Hour)
	r = h.pass()
	require.Zero(t, h.sim.Stats().MutatingCalls, "a pass inside the grace changed Partner Center")
	for _, name := range []string{"g1", "g2"} {
		it := item(t, r, h.id(name))
		require.Equal(t, engine.ActionWait, it.Action)
		require.Equal(t, engine.OutcomePending, it.Outcome)
		require.Equal(t, store.StateMarked, h.state(name).State)
	}

	require.NoError(t, h.store.AddKeep(context.Background(), store.Keep{CustomerID: h.id("g2"), Reason: "customer demo next week", AddedBy: "test"}))
	h.clock.Advance(61 * time.Minute)
	r = h.pass()

	require.Equal(t, []string{"g1"}, h.gone())
	require.Equal(t, pcsim.Mutations{}, h.mutations("g2"), "a keep added during the grace did not save the customer")
	require.Equal(t, engine.OutcomeDeleted, item(t, r, h.id("g1")).Outcome)
	it := item(t, r, h.id("g2"))
	require.Equal(t, engine.OutcomeSkipped, it.Outcome)
	require.Contains(t, it.Reason, "customer demo next week")
	st := h.state("g2")
	require.Equal(t, store.StateSeen, st.State, "a protected customer is unmarked")
	require.True(t, st.MarkedAt.IsZero())
	require.True(t, has(h.customerEvents("g2"), store.ActionUnmark, store.OutcomeOK))
}

func TestMaxDeletesPerPassCapsEachPassAndTheRestWait(t *testing.T) {
	var customers []pcsim.SeedCustomer
	for i := range 5 {
		customers = append(customers, ci(fmt.Sprintf("old-%d", i), time.Duration(10-i)*day, software()))
	}
	h := newHarness(t, opts{limits: "  max_deletes_per_pass: 2\n", customers: customers})

	r := h.pass()

	require.Equal(t, []string{"old-0", "old-1"}, h.gone(), "the oldest go first")
	require.Equal(t, 2, r.Counts.Deleted)
	require.Equal(t, 3, r.Counts.Skipped)
	for _, name := range []string{"old-2", "old-3", "old-4"} {
		require.Equal(t, pcsim.Mutations{}, h.mutations(name))
		it := item(t, r, h.id(name))
		require.Equal(t, engine.OutcomeSkipped, it.Outcome)
		require.Contains(t, it.Reason, "max_deletes_per_pass")
		skip, found := find(h.customerEvents(name), store.ActionSkip, store.OutcomeSkipped)
		require.True(t, found, "the capped customer %s has no skip row", name)
		require.Contains(t, skip.Detail, "max_deletes_per_pass (2)")
		require.Equal(t, store.StateSeen, h.state(name).State)
	}

	r = h.pass()
	require.Equal(t, []string{"old-0", "old-1", "old-2", "old-3"}, h.gone())
	require.Equal(t, 2, r.Counts.Deleted)

	r = h.pass()
	require.Len(t, h.gone(), 5)
	require.Equal(t, 1, r.Counts.Deleted)
	require.Equal(t, 0, r.Counts.Skipped)
}

func TestACustomerRecordedDeletedThatIsListedAgainIsFlaggedNotTouched(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, opts{store: b.open, customers: []pcsim.SeedCustomer{
				ci("back", 10*day, software()),
				ci("old", 10*day, software()),
			}})
			deletedAt := h.clock.Now().Add(-day)
			require.NoError(t, h.store.Transition(context.Background(), store.CustomerState{
				Account: h.account, CustomerID: h.id("back"), Domain: "ci-back.onmicrosoft.com", State: store.StateDeleted,
				Policy: "ci", FirstSeen: deletedAt.Add(-9 * day), StateAt: deletedAt, DeletedAt: deletedAt,
			}, store.Event{At: deletedAt, Account: h.account, CustomerID: h.id("back"), Action: store.ActionDelete,
				Outcome: store.OutcomeOK, HTTPStatus: http.StatusNoContent, MSRequestID: "5d3c3c1e-7c55-4a38-9a43-0d1f3f6c2b11"}))

			r := h.pass()

			require.Equal(t, []string{"old"}, h.gone())
			require.Equal(t, pcsim.Mutations{}, h.mutations("back"), "a reappeared customer got a PATCH or DELETE")
			require.Equal(t, 1, r.ExitCode())
			require.Equal(t, engine.OutcomeReappeared, item(t, r, h.id("back")).Outcome)
			st := h.state("back")
			require.Equal(t, store.StateReappeared, st.State)
			require.Contains(t, st.Reason, "listed again")
			require.True(t, has(h.customerEvents("back"), store.ActionReappeared, store.OutcomeError))

			r = h.pass()
			require.Equal(t, pcsim.Mutations{}, h.mutations("back"))
			it := item(t, r, h.id("back"))
			require.Equal(t, engine.OutcomeReappeared, it.Outcome, "it waits for a person")
			require.True(t, it.Standing)
			require.Equal(t, 0, r.ExitCode(), "flagged by an earlier pass: no new problem")
		})
	}
}
