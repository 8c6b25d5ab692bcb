package engine_test

import (
	"fmt"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tipreaper/tipreaper/internal/engine"
	"github.com/tipreaper/tipreaper/internal/pcsim"
	"github.com/tipreaper/tipreaper/internal/ratelimit"
	"github.com/tipreaper/tipreaper/internal/store"
)

// busySandbox has n expired customers among ones that must survive.
func busySandbox(n int) (customers []pcsim.SeedCustomer, expired []string) {
	for i := range n {
		orders := []pcsim.SeedOrder{software()}
		if i%2 == 0 {
			orders = append(orders, reserved())
		}
		name := fmt.Sprintf("old-%02d", i)
		customers = append(customers, ci(name, time.Duration(4+i)*day, orders...))
		expired = append(expired, name)
	}
	for i := range 3 {
		customers = append(customers, ci(fmt.Sprintf("young-%d", i), day, software()))
	}
	for i := range 2 {
		customers = append(customers, pcsim.SeedCustomer{Domain: fmt.Sprintf("contoso-%d.onmicrosoft.com", i), Age: 30 * day,
			Orders: []pcsim.SeedOrder{software()}})
	}
	return customers, expired
}

// requireExactlyExpiredGone checks that the expired customers, and only
// they, were deleted.
func requireExactlyExpiredGone(t *testing.T, h *harness, expired []string) {
	t.Helper()
	require.Equal(t, expired, h.gone())
	requireUntouched(t, h)
	for _, name := range expired {
		require.Equal(t, store.StateDeleted, h.state(name).State)
	}
}

// requireUntouched checks that no customer of busySandbox that must survive
// got a PATCH or DELETE.
func requireUntouched(t *testing.T, h *harness) {
	t.Helper()
	for _, name := range []string{"young-0", "young-1", "young-2", "contoso-0", "contoso-1"} {
		require.Equal(t, pcsim.Mutations{}, h.mutations(name), "%s was not selected but got a PATCH or DELETE", name)
	}
}

func TestALivePassDeletesExactlyTheSelectedSetThroughInjected5xx(t *testing.T) {
	// Sixteen expired customers make about a hundred requests, so that one
	// in ten failing is sure to hit some. A call can still fail four times
	// in a row (one in 10 000): its customer then fails and a later pass
	// settles it, which is the design, so up to two more passes may run.
	customers, expired := busySandbox(16)
	h := newHarness(t, opts{customers: customers, limits: "  concurrency: 8\n", sim: pcsim.Config{FailureRate: 0.1, Seed: 42}})

	r := h.pass()

	stats := h.sim.Stats()
	t.Logf("%d requests, %d failures injected", len(h.sim.Requests()), stats.FailuresInjected)
	require.NotZero(t, stats.FailuresInjected, "the simulator injected no failure: the test proves nothing")
	requireUntouched(t, h)
	if !r.Accounts[0].Stopped {
		require.Equal(t, len(expired), r.Counts.Deleted+r.Counts.AlreadyGone+r.Counts.Failed, "a selected customer was left unhandled")
	}
	for pass := 2; r.Status != store.RunSucceeded && pass <= 3; pass++ {
		t.Logf("pass %d: the last one ended %s (%+v)", pass, r.Status, r.Counts)
		r = h.pass()
	}
	requireExactlyExpiredGone(t, h, expired)
	require.Equal(t, store.RunSucceeded, r.Status)
}

func TestALivePassDeletesExactlyTheSelectedSetThroughThrottling(t *testing.T) {
	// The simulator's 60 s window admits 10 requests; the client's limiter
	// lets 100 through, so the server's 429s are what hold the pass back.
	// The bubble's fake clock lets the minutes of Retry-After pass at once.
	synctest.Test(t, func(t *testing.T) {
		customers, expired := busySandbox(8)
		h := newHarness(t, opts{customers: customers, pipe: true, passTimeout: 24 * time.Hour,
			sim: pcsim.Config{RatePerMinute: 10}, limiter: ratelimit.NewWindow(100, time.Minute)})

		r := h.pass()

		stats := h.sim.Stats()
		t.Logf("%d requests, %d throttled, peak %d per minute", len(h.sim.Requests()), stats.Throttled, stats.PeakPerMinute)
		require.NotZero(t, stats.Throttled, "the simulator throttled nothing: the test proves nothing")
		require.LessOrEqual(t, stats.PeakPerMinute, 10)
		requireExactlyExpiredGone(t, h, expired)
		require.Equal(t, store.RunSucceeded, r.Status)
		require.Equal(t, len(expired), r.Counts.Deleted)
	})
}

func TestADeleteWhoseEveryAnswerIsLostIsSettledByTheNextPass(t *testing.T) {
	for _, tc := range []struct {
		name string
		// carriedOut: the first attempt deleted the customer before its 500.
		carriedOut bool
	}{
		{"when the first attempt deleted the customer", true},
		{"when no attempt reached it", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Every answer to the DELETE is a 5xx. The bubble's fake clock
			// skips the client's retry backoff.
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t, opts{pipe: true, customers: []pcsim.SeedCustomer{ci("lost", 10*day), ci("young", day)}})
				path := "/v1/customers/" + h.id("lost")
				if tc.carriedOut {
					h.sim.FailNextAfter(http.MethodDelete, path, http.StatusInternalServerError, 1)
					h.sim.FailNext(http.MethodDelete, path, http.StatusServiceUnavailable, 3)
				} else {
					h.sim.FailNext(http.MethodDelete, path, http.StatusServiceUnavailable, 4)
				}

				r := h.pass()

				deletes := h.requests(http.MethodDelete, path)
				require.Len(t, deletes, 4, "one attempt and three retries")
				require.Equal(t, engine.OutcomeFailed, item(t, r, h.id("lost")).Outcome, "the pass cannot know whether the DELETE happened")
				require.Equal(t, 1, r.ExitCode())
				requireAnsweredIntents(t, "lost", h.customerEvents("lost"))
				require.Empty(t, h.state("lost").PendingAction, "the DELETE has its result row")

				r = h.pass()

				require.Equal(t, []string{"lost"}, h.gone())
				require.Equal(t, pcsim.Mutations{}, h.mutations("young"))
				st := h.state("lost")
				require.Equal(t, store.StateDeleted, st.State, "a customer Partner Center deleted is still recorded %s", st.State)
				require.Equal(t, 0, r.ExitCode())
				evs := h.customerEvents("lost")
				requireAnsweredIntents(t, "lost", evs)
				if !tc.carriedOut {
					require.Len(t, h.requests(http.MethodDelete, path), 5, "the next pass sends the DELETE again")
					require.Equal(t, engine.OutcomeDeleted, item(t, r, h.id("lost")).Outcome)
					return
				}
				require.Len(t, h.requests(http.MethodDelete, path), 4, "a customer no longer listed got another DELETE")
				ok, found := find(evs, store.ActionDelete, store.OutcomeOK)
				require.True(t, found, "no delete/ok row")
				require.Equal(t, deletes[0].RequestID, ok.MSRequestID, "the confirmation does not name the DELETE that did it")
				require.Equal(t, engine.OutcomeAlreadyGone, item(t, r, h.id("lost")).Outcome)
			})
		})
	}
}
