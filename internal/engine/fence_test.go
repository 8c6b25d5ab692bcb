package engine_test

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/tipreaper/tipreaper/internal/engine"
	"github.com/tipreaper/tipreaper/internal/pcsim"
	"github.com/tipreaper/tipreaper/internal/store"
	"github.com/tipreaper/tipreaper/internal/store/storetest"
)

// mutating says whether a request to the simulator changes the sandbox.
func mutating(r *http.Request) bool {
	return r.Method == http.MethodPatch || r.Method == http.MethodDelete
}

func TestAKeepAddedWhileACustomersOrdersAreCancellingStopsItBeforeItsNextCall(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			var h *harness
			var kept atomic.Bool
			o := opts{
				customers: []pcsim.SeedCustomer{ci("kept", 10*day, software(), reserved()), ci("other", 10*day, software())},
				store:     b.open,
				limits:    "  concurrency: 1\n",
				// An operator runs `reaper keep add` while the first of the customer's orders is being cancelled.
				wrap: func(sim *pcsim.Server) http.Handler {
					return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						sim.ServeHTTP(w, r)
						if r.Method == http.MethodPatch && strings.Contains(r.URL.Path, h.id("kept")) && !kept.Swap(true) {
							require.NoError(t, h.store.AddKeep(context.Background(),
								store.Keep{CustomerID: h.id("kept"), Reason: "customer demo tomorrow", AddedBy: "ops"}))
						}
					})
				},
			}
			h = newHarness(t, o)

			r := h.pass()

			require.True(t, kept.Load(), "the keep was added mid-pass")
			require.Equal(t, pcsim.Mutations{Patches: 1}, h.mutations("kept"),
				"after the keep, neither its other order's PATCH nor its DELETE was sent")
			require.Equal(t, []string{"other"}, h.gone())
			it := item(t, r, h.id("kept"))
			require.Equal(t, engine.OutcomeSkipped, it.Outcome)
			require.Contains(t, it.Error, "protected during the pass")
			require.Contains(t, it.Error, "customer demo tomorrow")
			require.Contains(t, it.Error, "orders may already be cancelled", "the report says what was already done")

			st := h.state("kept")
			require.Equal(t, store.StateSeen, st.State, "it stops where it is, out of flight")
			require.Contains(t, st.Reason, "orders may already be cancelled", "why shows it")
			require.True(t, st.MarkedAt.IsZero(), "its mark is cleared")
			require.Empty(t, st.PendingAction)
			ev, ok := find(h.customerEvents("kept"), store.ActionUnmark, store.OutcomeOK)
			require.True(t, ok, "an unmark row records it")
			require.Contains(t, ev.Detail, "protected during the pass")
			require.False(t, has(h.customerEvents("kept"), store.ActionDelete, store.OutcomeIntent), "no delete intent was written")

			r = h.pass()
			require.Equal(t, pcsim.Mutations{Patches: 1}, h.mutations("kept"), "later passes leave it alone too")
			require.Equal(t, engine.OutcomeSkipped, item(t, r, h.id("kept")).Outcome)
		})
	}
}

// stealer takes the harness account's lease from the pass that holds it, in
// the middle of that pass, the way each store can lose it.
type stealer struct {
	name  string
	store func(t *testing.T) (holder, standby store.Store, steal func(account string))
}

var stealers = []stealer{
	{"postgres: the holder's database sessions are terminated and a stand-by instance takes over", func(t *testing.T) (store.Store, store.Store, func(string)) {
		url := storetest.PostgresURL(t)
		app := "reaper-holder-" + strings.ReplaceAll(t.Name(), "/", "-")
		if len(app) > 60 {
			app = app[len(app)-60:]
		}
		holder := openStore(t, url+"&application_name="+app, "")
		standby := openStore(t, url, "")
		return holder, standby, func(string) {
			ctx := context.Background()
			conn, err := pgx.Connect(ctx, storetest.DatabaseURL())
			require.NoError(t, err)
			defer conn.Close(ctx)
			var n int
			require.NoError(t, conn.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`, app).Scan(&n))
			require.Positive(t, n, "the holder's sessions were found")
		}
	}},
	{"sqlite: the holder's lease expires and another engine on the same file takes over", func(t *testing.T) (store.Store, store.Store, func(string)) {
		dir := t.TempDir()
		st := openStore(t, "", dir)
		return st, st, func(account string) {
			db, err := sql.Open("sqlite", filepath.Join(dir, "reaper.db")+"?_busy_timeout=10000")
			require.NoError(t, err)
			defer db.Close()
			_, err = db.Exec(`UPDATE reaper_leases SET expires_at = '2000-01-01T00:00:00.000000Z' WHERE account = $1`, account)
			require.NoError(t, err)
		}
	}},
}

func openStore(t *testing.T, url, dir string) store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), url, dir)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	require.NoError(t, s.Migrate(context.Background()))
	return s
}

func TestAPassThatLostItsLeaseMakesNoFurtherMutatingCallAndTheNewHolderFinishes(t *testing.T) {
	for _, s := range stealers {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			holder, standby, steal := s.store(t)
			var h *harness
			var (
				stolen   atomic.Bool
				mu       sync.Mutex
				after    []string // mutating calls the holder made after it lost the lease
				newLease store.Lease
			)
			o := opts{
				customers: []pcsim.SeedCustomer{ci("a", 10*day, software()), ci("b", 10*day, software()), ci("c", 10*day, software())},
				store:     func(testing.TB) store.Store { return holder },
				limits:    "  concurrency: 1\n",
				wrap: func(sim *pcsim.Server) http.Handler {
					return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						if mutating(r) {
							if stolen.Load() {
								mu.Lock()
								after = append(after, r.Method+" "+r.URL.Path)
								mu.Unlock()
							} else if r.Method == http.MethodPatch {
								// The first PATCH: its intent is written; now the lease goes, and a stand-by takes the account.
								steal(h.account)
								var ok bool
								require.Eventually(t, func() bool {
									var err error
									newLease, ok, err = standby.AcquireLease(context.Background(), h.account, time.Hour)
									require.NoError(t, err)
									return ok
								}, 20*time.Second, 10*time.Millisecond, "the stand-by takes the account over")
								stolen.Store(true)
							}
						}
						sim.ServeHTTP(w, r)
					})
				},
			}
			h = newHarness(t, o)

			r := h.pass(func(o *engine.Options) { o.LeaseTTL = 20 * time.Second })

			require.True(t, stolen.Load())
			mu.Lock()
			require.Empty(t, after, "the first pass made mutating calls after it lost the lease")
			mu.Unlock()
			require.True(t, r.Accounts[0].Stopped)
			require.Contains(t, r.Accounts[0].Reason, "lease")
			require.NotEqual(t, store.RunSucceeded, r.Status)
			require.Len(t, h.gone(), 0, "nothing was deleted by the pass that lost the lease")

			// The stand-by's pass finishes the work once it holds the account (here: its test lease released).
			require.NoError(t, standby.ReleaseLease(context.Background(), newLease))
			r = h.pass(func(o *engine.Options) { o.Store = standby })
			require.Equal(t, store.RunSucceeded, r.Status)
			require.Equal(t, []string{"a", "b", "c"}, h.gone())
			for _, name := range []string{"a", "b", "c"} {
				require.Equal(t, 1, h.mutations(name).Deletes, "customer %s deleted once", name)
				require.Equal(t, store.StateDeleted, h.state(name).State)
			}
		})
	}
}

func TestAPassLongerThanItsLeaseKeepsItByRenewing(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			// Orders take several lease lengths to read cancelled: the pass only finishes if it renews.
			h := newHarness(t, opts{
				customers: []pcsim.SeedCustomer{ci("slow-a", 10*day, software()), ci("slow-b", 10*day, software())},
				store:     b.open,
				sim:       pcsim.Config{CancelDelay: [2]time.Duration{4 * time.Second, 4500 * time.Millisecond}},
			})
			r := h.pass(func(o *engine.Options) { o.LeaseTTL = 3 * time.Second })
			require.Equal(t, store.RunSucceeded, r.Status, "%+v\n%s", r.Accounts, h.logs.String())
			require.Equal(t, []string{"slow-a", "slow-b"}, h.gone())
		})
	}
}

// flakyStore fails the next writes of a delete result, as a terminated
// database session fails the statement it was running.
type flakyStore struct {
	store.Store
	fails atomic.Int32
}

func (f *flakyStore) TransitionIf(ctx context.Context, g store.Guard, cs store.CustomerState, evs ...store.Event) error {
	if cs.State == store.StateDeleted && f.fails.Add(-1) >= 0 {
		return errors.New("FATAL: terminating connection due to administrator command (SQLSTATE 57P01)")
	}
	return f.Store.TransitionIf(ctx, g, cs, evs...)
}

func TestAResultWriteThatFailsOnceIsRetriedAndTheDeletionRecorded(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			flaky := &flakyStore{}
			flaky.fails.Store(1)
			h := newHarness(t, opts{customers: []pcsim.SeedCustomer{ci("old", 10*day, software())},
				store: func(tb testing.TB) store.Store { flaky.Store = b.open(tb); return flaky }})
			r := h.pass()
			require.Equal(t, int32(-1), flaky.fails.Load(), "the result write failed once, then was retried")
			require.Equal(t, store.RunSucceeded, r.Status)
			require.Equal(t, engine.OutcomeDeleted, item(t, r, h.id("old")).Outcome)
			require.Equal(t, store.StateDeleted, h.state("old").State)
			require.True(t, has(h.customerEvents("old"), store.ActionDelete, store.OutcomeOK), "the deletion is in the audit")
		})
	}
}
