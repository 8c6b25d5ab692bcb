package engine_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tipreaper/tipreaper/internal/engine"
	"github.com/tipreaper/tipreaper/internal/pcsim"
	"github.com/tipreaper/tipreaper/internal/store"
)

// failingStore is a real store whose Transition fails for the writes that
// match, a number of times (negative: always): a database that drops a
// write mid-pass.
type failingStore struct {
	store.Store
	mu     sync.Mutex
	match  func(cs store.CustomerState, evs []store.Event) bool
	times  int
	failed int
}

func (f *failingStore) TransitionIf(ctx context.Context, g store.Guard, cs store.CustomerState, evs ...store.Event) error {
	if f.hit(cs, evs) {
		return errors.New("injected: the database dropped the write")
	}
	return f.Store.TransitionIf(ctx, g, cs, evs...)
}

func (f *failingStore) Transition(ctx context.Context, cs store.CustomerState, evs ...store.Event) error {
	if f.hit(cs, evs) {
		return errors.New("injected: the database dropped the write")
	}
	return f.Store.Transition(ctx, cs, evs...)
}

// hit says whether this write fails, and counts it.
func (f *failingStore) hit(cs store.CustomerState, evs []store.Event) bool {
	f.mu.Lock()
	hit := f.match != nil && f.times != 0 && f.match(cs, evs)
	if hit {
		f.times--
		f.failed++
	}
	f.mu.Unlock()
	return hit
}

func (f *failingStore) heal() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.times = 0
}

// deleteResult matches the write that records a DELETE's answer.
func deleteResult(_ store.CustomerState, evs []store.Event) bool {
	return slices.ContainsFunc(evs, func(ev store.Event) bool {
		return ev.Action == store.ActionDelete && ev.Outcome == store.OutcomeOK
	})
}

func TestAResultWriteThatFailsIsRetriedAndAConfirmedDeletionIsNeverRecordedFailed(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name+" once: the retry records it", func(t *testing.T) {
			t.Parallel()
			var fs *failingStore
			h := newHarness(t, opts{customers: []pcsim.SeedCustomer{ci("old-a", 10*day, software())},
				store: func(tb testing.TB) store.Store {
					fs = &failingStore{Store: b.open(tb), match: deleteResult, times: 1}
					return fs
				}})

			r := h.pass()

			require.Equal(t, 1, fs.failed)
			require.Equal(t, store.RunSucceeded, r.Status)
			require.Equal(t, engine.OutcomeDeleted, item(t, r, h.id("old-a")).Outcome)
			require.Equal(t, store.StateDeleted, h.state("old-a").State)
			require.True(t, has(h.customerEvents("old-a"), store.ActionDelete, store.OutcomeOK))
		})

		t.Run(b.name+" always: the next pass reconciles it", func(t *testing.T) {
			t.Parallel()
			var fs *failingStore
			h := newHarness(t, opts{customers: []pcsim.SeedCustomer{ci("old-a", 10*day, software()), ci("old-b", 10*day, software())},
				store: func(tb testing.TB) store.Store {
					fs = &failingStore{Store: b.open(tb), match: func(cs store.CustomerState, evs []store.Event) bool {
						return deleteResult(cs, evs) && cs.Domain == "ci-old-a.onmicrosoft.com"
					}, times: -1}
					return fs
				}})

			r := h.pass()

			require.Equal(t, []string{"old-a", "old-b"}, h.gone())
			require.Greater(t, fs.failed, 1, "the write was not retried")
			it := item(t, r, h.id("old-a"))
			require.Equal(t, engine.OutcomeDeleted, it.Outcome, "Partner Center deleted it: the report must say so")
			require.Contains(t, it.Error, "could not be recorded")
			require.NotEmpty(t, it.RequestID)
			require.Equal(t, 2, r.Counts.Deleted, "both customers were deleted")
			require.Zero(t, r.Counts.Failed)
			require.Equal(t, store.RunPartial, r.Status, "a pass whose audit writes failed is not a success")
			require.Equal(t, 1, r.ExitCode())
			require.Equal(t, 1, r.Accounts[0].AuditErrors)
			require.Contains(t, h.lastRun().Error, "audit writes failed")

			st := h.state("old-a")
			require.Equal(t, store.StateDeleting, st.State, "the customer keeps its in-flight state")
			require.Equal(t, store.ActionDelete, st.PendingAction, "and its intent")
			require.Equal(t, it.RequestID, st.PendingRequestID)
			require.False(t, has(h.customerEvents("old-a"), store.ActionFail, store.OutcomeError), "a confirmed deletion was recorded failed")

			fs.heal()
			r = h.pass()

			require.Equal(t, store.RunSucceeded, r.Status)
			require.Equal(t, store.StateDeleted, h.state("old-a").State)
			ev, ok := find(h.customerEvents("old-a"), store.ActionDelete, store.OutcomeOK)
			require.True(t, ok, "no delete row after the reconciliation")
			require.Equal(t, it.RequestID, ev.MSRequestID, "the reconciliation names the DELETE's request id")
			require.Equal(t, http.StatusNotFound, ev.HTTPStatus)
			require.Len(t, h.requests(http.MethodDelete, "/v1/customers/"+h.id("old-a")), 1, "the reconciliation is a read, not a second DELETE")
		})
	}
}
