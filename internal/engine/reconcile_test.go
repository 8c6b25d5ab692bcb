package engine_test

import (
	"net/http"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/require"

	"github.com/tipreaper/tipreaper/internal/engine"
	"github.com/tipreaper/tipreaper/internal/pcsim"
	"github.com/tipreaper/tipreaper/internal/store"
)

func TestAFailedCustomerThatIsGoneIsRecordedDeletedByTheNextPass(t *testing.T) {
	// The DELETE acts but its answer is lost (500); the client's retry of
	// the same call is refused for good (400): the pass records the customer
	// failed although Partner Center deleted it. The bubble's fake clock
	// skips the client's retry backoff.
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, opts{pipe: true, customers: []pcsim.SeedCustomer{ci("lost", 10*day), ci("young", day)}})
		path := "/v1/customers/" + h.id("lost")
		h.sim.FailNextAfter(http.MethodDelete, path, http.StatusInternalServerError, 1)
		h.sim.FailNext(http.MethodDelete, path, http.StatusBadRequest, 1)

		r := h.pass()

		deletes := h.requests(http.MethodDelete, path)
		require.Len(t, deletes, 2, "one attempt and one retry")
		require.Equal(t, []string{"lost"}, h.gone(), "the first attempt deleted it")
		require.Equal(t, engine.OutcomeFailed, item(t, r, h.id("lost")).Outcome)
		require.Equal(t, store.StateFailed, h.state("lost").State)
		require.Empty(t, h.state("lost").PendingRequestID, "a failed customer keeps no request id: the confirmation reads it from the audit")

		// A dry run reads, records what it would record, and changes nothing.
		r = h.pass(dryRun)

		require.Equal(t, store.StateFailed, h.state("lost").State, "a dry run changed the customer's state")
		evs := h.customerEvents("lost")
		dry, found := find(evs, store.ActionDelete, store.OutcomeDryRun)
		require.True(t, found, "the dry run did not record the confirmation it would make")
		require.Equal(t, deletes[0].RequestID, dry.MSRequestID)
		require.False(t, has(evs, store.ActionDelete, store.OutcomeOK), "a dry run recorded a deletion")
		require.Zero(t, h.sim.Stats().ByMethod[http.MethodPatch], "a PATCH was sent")
		require.Len(t, h.requests(http.MethodDelete, path), 2, "a DELETE was sent")

		r = h.pass()

		st := h.state("lost")
		require.Equal(t, store.StateDeleted, st.State, "a customer Partner Center deleted is still recorded %s", st.State)
		require.Empty(t, st.PendingRequestID)
		require.False(t, st.DeletedAt.IsZero())
		require.Len(t, h.requests(http.MethodDelete, path), 2, "a customer no longer listed got another DELETE")
		ok, found := find(h.customerEvents("lost"), store.ActionDelete, store.OutcomeOK)
		require.True(t, found, "no delete/ok row")
		require.Equal(t, deletes[0].RequestID, ok.MSRequestID, "the confirmation does not name the DELETE that did it")
		require.Equal(t, http.StatusNotFound, ok.HTTPStatus)
		it := item(t, r, h.id("lost"))
		require.Equal(t, engine.OutcomeAlreadyGone, it.Outcome)
		require.Equal(t, deletes[0].RequestID, it.RequestID)
		require.Equal(t, pcsim.Mutations{}, h.mutations("young"))
		require.Equal(t, 0, r.ExitCode())

		// Once recorded deleted it is not read again.
		reads := len(h.requests(http.MethodGet, path+"/orders"))
		h.pass()
		require.Len(t, h.requests(http.MethodGet, path+"/orders"), reads, "a deleted customer was read again")
	})
}
