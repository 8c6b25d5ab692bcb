package cli

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tipreaper/tipreaper/internal/pcsim"
	"github.com/tipreaper/tipreaper/internal/store/storetest"
)

// heldSandbox is a sandbox whose order polls for customer hold wait until
// release is called (or 20 s pass): a pass is then reliably in the middle of
// cancelling that customer's orders while the test acts.
func heldSandbox(t *testing.T, seed []pcsim.SeedCustomer, hold string) (sb *sandbox, cancelled <-chan struct{}, release func()) {
	t.Helper()
	sim := pcsim.New(pcsim.Config{PartnerTenantID: testTenant, ClientID: testClientID, ClientSecret: testSecret,
		CancelDelay: [2]time.Duration{10 * time.Millisecond, 20 * time.Millisecond}, Seed: 1})
	for _, c := range seed {
		_, err := sim.AddCustomer(c)
		require.NoError(t, err)
	}
	patched := make(chan struct{})
	gate := make(chan struct{})
	var patchOnce, releaseOnce sync.Once
	release = func() { releaseOnce.Do(func() { close(gate) }) }
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		onHeld := strings.Contains(r.URL.Path, "/customers/"+hold+"/orders")
		if onHeld && r.Method == http.MethodGet && isClosed(patched) {
			select {
			case <-gate:
			case <-time.After(20 * time.Second):
			case <-r.Context().Done():
			}
		}
		sim.ServeHTTP(w, r)
		if onHeld && r.Method == http.MethodPatch {
			patchOnce.Do(func() { close(patched) })
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(release)
	return &sandbox{sim: sim, url: srv.URL}, patched, release
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// While `reaper once` is cancelling a customer's orders, an operator runs
// `reaper keep add` (and the other commands of an operator) on the same store.
func TestKeepAddDuringAPassStopsTheCustomerBeforeItsDelete(t *testing.T) {
	for _, tc := range []struct {
		name  string
		extra func(t *testing.T) string
	}{
		{"sqlite", func(*testing.T) string { return "" }},
		{"postgres", func(t *testing.T) string {
			t.Setenv("REAPER_TEST_DATABASE_URL", storetest.PostgresURL(t))
			return "database:\n  url: ${REAPER_TEST_DATABASE_URL}\n"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sb, patched, release := heldSandbox(t, testSeed(time.Now(), false), idOld1)
			path := writeConfig(t, sb, tc.extra(t))
			require.Equal(t, 0, reaper(t, "migrate", "--config", path).code)

			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			var stdout, stderr syncBuffer
			done := make(chan int, 1)
			go func() {
				done <- Run(ctx, []string{"once", "--config", path}, strings.NewReader(""), &stdout, &stderr)
			}()
			select {
			case <-patched:
			case <-ctx.Done():
				t.Fatalf("the pass never cancelled the customer's order: %s%s", stdout.String(), stderr.String())
			}

			// The pass is waiting for the order to read cancelled: every operator command works meanwhile.
			r := reaper(t, "keep", "add", idOld1, "--reason", "customer demo tomorrow", "--config", path)
			require.Equal(t, 0, r.code, r)
			for _, args := range [][]string{{"keep", "list"}, {"why", idOld1}, {"migrate"}} {
				r := reaper(t, append(args, "--config", path)...)
				require.Equal(t, 0, r.code, "%v during a pass: %s", args, r)
			}
			r = reaper(t, "unblock", idOld2, "--config", path)
			require.Contains(t, r.stderr, "not blocked", "unblock answers during a pass: %s", r)
			release()

			require.Equal(t, 0, <-done, "a customer protected mid-pass is skipped, not failed: %s%s", stdout.String(), stderr.String())
			require.True(t, present(sb.sim)[idOld1], "the customer protected during the pass was not deleted")
			require.Zero(t, sb.sim.MutationsFor(idOld1).Deletes)
			require.False(t, present(sb.sim)[idOld2], "the others were")
			require.Contains(t, stdout.String(), "protected during the pass")
			require.Contains(t, stdout.String(), "orders may already be cancelled")

			r = reaper(t, "why", idOld1, "--config", path)
			require.Equal(t, 0, r.code, r)
			require.Contains(t, r.stdout, "orders may already be cancelled")
		})
	}
}
