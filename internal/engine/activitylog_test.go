package engine_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tipreaper/tipreaper/internal/pcsim"
)

// A daemon's engine reads the activity log's 90 days once; later passes
// read only since the last read (less a day's overlap) and still date
// customers by what the earlier read said.
func TestLaterPassesReadTheActivityLogOnlySinceTheLastReadAndRememberTheRest(t *testing.T) {
	// Added two days ago: too young now, four days old at the second pass.
	// The store first sights it at the first pass, so at the second pass
	// only the remembered log can make it older than 72h.
	h := newHarness(t, opts{customers: []pcsim.SeedCustomer{ci("young", 2*day, software())}})
	e := h.engine()
	first := h.clock.Now()
	_, err := e.Pass(context.Background())
	require.NoError(t, err)
	require.Empty(t, h.gone(), "a customer two days old was deleted")

	h.clock.Advance(2 * day)
	_, err = e.Pass(context.Background())
	require.NoError(t, err)

	reads := h.requests(http.MethodGet, "/v1/auditrecords")
	require.Len(t, reads, 2)
	start := func(r pcsim.Request) time.Time {
		q, err := url.ParseQuery(r.Query)
		require.NoError(t, err)
		at, err := time.Parse(time.RFC3339, q.Get("startDate"))
		require.NoError(t, err)
		return at
	}
	require.WithinDuration(t, first.Add(-90*day), start(reads[0]), time.Minute, "the first read covers the log's 90 days")
	require.WithinDuration(t, first.Add(-day), start(reads[1]), time.Minute, "the second read starts a day before the first one ended")
	require.Equal(t, []string{"young"}, h.gone(), "the second pass forgot when the first read said the customer was added")
}
