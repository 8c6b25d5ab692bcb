package engine_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tipreaper/tipreaper/internal/engine"
	"github.com/tipreaper/tipreaper/internal/pcsim"
	"github.com/tipreaper/tipreaper/internal/store"
)

func TestAFailingActivityLogLeavesAgesToFirstSightings(t *testing.T) {
	// Both customers were added ten days ago. The store first saw "known"
	// then; "unseen" only the activity log can date.
	h := newHarness(t, opts{customers: []pcsim.SeedCustomer{ci("known", 10*day, software()), ci("unseen", 10*day, software())}})
	_, err := h.store.Sight(context.Background(), h.account,
		[]store.Sighting{{CustomerID: h.id("known"), Domain: "ci-known.onmicrosoft.com", CompanyName: "CI known"}}, h.clock.Now().Add(-10*day))
	require.NoError(t, err)
	// A 403 is not retried: the log fails for the whole pass.
	h.sim.FailNext(http.MethodGet, "/v1/auditrecords", http.StatusForbidden, 1)

	r := h.pass()

	audits := h.requests(http.MethodGet, "/v1/auditrecords")
	require.Len(t, audits, 1, "the pass did not ask the activity log: the test proves nothing")
	require.Equal(t, http.StatusForbidden, audits[0].Status)
	require.Contains(t, h.logs.String(), "activity log unavailable")

	require.Equal(t, []string{"known"}, h.gone(), "the pass did not go on with first sightings")
	require.Equal(t, pcsim.Mutations{}, h.mutations("unseen"), "a customer only the failed activity log could date was touched")
	require.Equal(t, store.RunSucceeded, r.Status)
	require.False(t, r.Accounts[0].Stopped)
	require.Equal(t, engine.OutcomeDeleted, item(t, r, h.id("known")).Outcome)
	it := item(t, r, h.id("unseen"))
	require.Equal(t, engine.ActionSkip, it.Action)
	require.Equal(t, engine.OutcomeSkipped, it.Outcome)
	require.Less(t, it.Age, day, "the age of %s does not come from its first sighting", "unseen")
	st := h.state("unseen")
	require.Equal(t, store.StateSeen, st.State)
	require.False(t, has(h.customerEvents("unseen"), store.ActionPlan, store.OutcomeOK))

	// With the log back, the same customer is ten days old and goes: it
	// was the log's failure, not the policy, that kept it.
	r = h.pass()

	require.Equal(t, []string{"known", "unseen"}, h.gone())
	it = item(t, r, h.id("unseen"))
	require.Equal(t, engine.OutcomeDeleted, it.Outcome)
	require.Greater(t, it.Age, 9*day)
}

func TestADaemonWhoseActivityLogFailsKeepsWhatItReadAndRereadsTheGap(t *testing.T) {
	// Added two days ago: first sighted at the first pass, so two days
	// later only the remembered activity log makes it older than 72h.
	h := newHarness(t, opts{customers: []pcsim.SeedCustomer{ci("young", 2*day, software())}})
	e := h.engine()
	first := h.clock.Now()
	_, err := e.Pass(context.Background())
	require.NoError(t, err)
	require.Empty(t, h.gone())

	h.clock.Advance(2 * day)
	h.sim.FailNext(http.MethodGet, "/v1/auditrecords", http.StatusForbidden, 1)
	r, err := e.Pass(context.Background())
	require.NoError(t, err)

	reads := h.requests(http.MethodGet, "/v1/auditrecords")
	require.Len(t, reads, 2)
	require.Equal(t, http.StatusForbidden, reads[1].Status, "the second read did not fail: the test proves nothing")
	require.Equal(t, []string{"young"}, h.gone(), "a failed read lost what the first read said")
	require.Equal(t, store.RunSucceeded, r.Status)

	// The next read starts where the last successful one ended (less the
	// overlap), not where the failed one would have.
	h.clock.Advance(day)
	_, err = e.Pass(context.Background())
	require.NoError(t, err)

	reads = h.requests(http.MethodGet, "/v1/auditrecords")
	require.Len(t, reads, 3)
	q, err := url.ParseQuery(reads[2].Query)
	require.NoError(t, err)
	start, err := time.Parse(time.RFC3339, q.Get("startDate"))
	require.NoError(t, err)
	require.False(t, start.After(first), "the read after a failed one starts at %s, after the last successful read ended at %s", start, first)
}
