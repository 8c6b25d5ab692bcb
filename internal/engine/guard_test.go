package engine_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tipreaper/tipreaper/internal/engine"
	"github.com/tipreaper/tipreaper/internal/pcsim"
	"github.com/tipreaper/tipreaper/internal/policy"
	"github.com/tipreaper/tipreaper/internal/store"
)

// requireStopped checks that the pass stopped the h.account before any
// mutating call and recorded why, naming want.
func requireStopped(t *testing.T, h *harness, r *engine.Report, want string) {
	t.Helper()
	require.Zero(t, h.sim.Stats().MutatingCalls, "a stopped account got a PATCH or DELETE")
	require.Empty(t, h.gone())
	require.Equal(t, store.RunFailed, r.Status)
	require.Equal(t, 1, r.ExitCode())
	require.Len(t, r.Accounts, 1)
	require.True(t, r.Accounts[0].Stopped)
	require.Contains(t, r.Accounts[0].Reason, want)
	require.Zero(t, r.Counts.Deleted+r.Counts.Selected)

	guards := h.emitted(store.ActionGuard)
	require.Len(t, guards, 1, "one guard row for the stopped account")
	require.Equal(t, store.OutcomeError, guards[0].Outcome)
	require.Equal(t, h.account, guards[0].Account)
	require.Equal(t, r.RunID, guards[0].RunID)
	require.Contains(t, guards[0].Error, want)

	run := h.lastRun()
	require.Equal(t, store.RunFailed, run.Status)
	require.Contains(t, run.Error, want)
}

// failSecondPage lets the first page of a customer listing through and
// answers the pages after it with status, n times.
func failSecondPage(status, n int) func(*pcsim.Server) http.Handler {
	return func(sim *pcsim.Server) http.Handler {
		var once sync.Once
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && r.Header.Get("MS-ContinuationToken") != "" {
				once.Do(func() { sim.FailNext(http.MethodGet, r.URL.Path, status, n) })
			}
			sim.ServeHTTP(w, r)
		})
	}
}

func TestAFailedListingPageStopsTheAccountBeforeAnyChange(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		n      int
	}{
		{"a 400 on the second page", http.StatusBadRequest, 1},
		{"a 401 that a new token does not cure", http.StatusUnauthorized, 5},
		{"a 403 on the second page", http.StatusForbidden, 1},
		{"a 404 on the second page", http.StatusNotFound, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// The expired customers are on the first page: a pass that went on
			// with a partial listing would delete them.
			var customers []pcsim.SeedCustomer
			for i := range 8 {
				customers = append(customers, ci(fmt.Sprintf("old-%d", i), 10*day, software()))
			}
			h := newHarness(t, opts{customers: customers, pageSize: 3, wrap: failSecondPage(tc.status, tc.n)})

			r := h.pass()

			requireStopped(t, h, r, "list customers")
			require.Equal(t, engine.GuardListing, r.Accounts[0].Guard)
			require.Zero(t, h.sim.Stats().Requests["GET orders"], "a stopped account's orders were read")
			var pages int
			for _, req := range h.sim.Requests() {
				if req.Header.Get("MS-ContinuationToken") != "" {
					pages++
					require.Equal(t, tc.status, req.Status)
				}
			}
			require.NotZero(t, pages, "the listing never reached its second page")
		})
	}
}

func TestMaxSelectedFractionStopsTheAccountWhenAPolicySelectsTooMuch(t *testing.T) {
	for _, tc := range []struct {
		name     string
		selected int
		trips    bool
	}{
		{"six of ten customers is more than half", 6, true},
		{"five of ten customers is exactly half, which is allowed", 5, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var customers []pcsim.SeedCustomer
			for i := range 10 {
				c := ci(fmt.Sprintf("old-%d", i), 10*day, software())
				if i >= tc.selected {
					c.Domain = fmt.Sprintf("contoso-%d.onmicrosoft.com", i)
				}
				customers = append(customers, c)
			}
			h := newHarness(t, opts{customers: customers, policies: ciPolicy + "    max_selected_fraction: 0.5\n"})

			r := h.pass()

			if tc.trips {
				requireStopped(t, h, r, "max_selected_fraction")
				require.Equal(t, engine.GuardFraction, r.Accounts[0].Guard)
				require.Contains(t, r.Accounts[0].Reason, "policy ci selects 6 of 10")
				return
			}
			require.Equal(t, store.RunSucceeded, r.Status)
			require.Len(t, h.gone(), tc.selected)
			require.Empty(t, h.emitted(store.ActionGuard))
		})
	}
}

func TestATokenForAnotherTenantStopsTheAccount(t *testing.T) {
	const other = "99999999-9999-9999-9999-999999999999"
	h := newHarness(t, opts{sim: pcsim.Config{TokenTenantID: other},
		customers: []pcsim.SeedCustomer{ci("old-a", 10*day, software()), ci("old-b", 10*day)}})

	r := h.pass()

	requireStopped(t, h, r, "partner_tenant_id")
	require.Equal(t, engine.GuardTenant, r.Accounts[0].Guard)
	require.Contains(t, r.Accounts[0].Reason, other)
}

func TestAnAccountLeasedByAnotherTipreaperIsLeftAlone(t *testing.T) {
	for _, tc := range []struct {
		name     string
		postgres bool
	}{
		{"another instance on the same Postgres holds it", true},
		{"another engine on the same SQLite store holds it", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := opts{customers: []pcsim.SeedCustomer{ci("old-a", 10*day, software()), ci("old-b", 10*day)}}
			if tc.postgres {
				o.store = backends[1].open
			}
			h := newHarness(t, o)
			holder := h.store
			if tc.postgres {
				holder = backends[1].open(t) // another Store instance on the same schema
			}
			lease, ok, err := holder.AcquireLease(context.Background(), h.account, 24*day)
			require.NoError(t, err)
			require.True(t, ok)

			r := h.pass()

			require.Empty(t, h.sim.Requests(), "a pass without the account's lock talked to Partner Center")
			require.Empty(t, h.gone())
			require.Len(t, r.Accounts, 1)
			require.False(t, r.Accounts[0].Stopped, "another leader is not a failure")
			require.Contains(t, r.Accounts[0].Reason, "lease")
			require.Empty(t, r.Items)

			require.NoError(t, holder.ReleaseLease(context.Background(), lease))
			r = h.pass()
			require.Equal(t, []string{"old-a", "old-b"}, h.gone())
			require.Equal(t, store.RunSucceeded, r.Status)
		})
	}
}

func TestTheClientSecretAppearsInNoLogAuditRowOrReport(t *testing.T) {
	// A SQLite store of the test's own, so the database file itself can be
	// searched for the secret once it is closed.
	dir := t.TempDir()
	var st store.Store
	var closeOnce sync.Once
	closeStore := func() {
		closeOnce.Do(func() { require.NoError(t, st.Close()) })
	}
	openStore := func(tb testing.TB) store.Store {
		var err error
		st, err = store.Open(context.Background(), "", dir)
		require.NoError(tb, err)
		tb.Cleanup(closeStore)
		require.NoError(tb, st.Migrate(context.Background()))
		return st
	}
	stuck := ci("stuck", 10*day, pcsim.SeedOrder{Type: pcsim.TypeSoftware, NeverCancels: true})
	h := newHarness(t, opts{store: openStore, limits: "  cancel_timeout: 200ms\n", customers: []pcsim.SeedCustomer{
		ci("old", 10*day, software()),
		ci("refused", 10*day),
		stuck,
		ci("ancient", 80*day, pcsim.SeedOrder{Type: pcsim.TypeSoftware, Age: 70 * day}),
	}})
	var reports []*engine.Report

	// The token endpoint refuses once: the listing fails on the token.
	h.sim.FailNext(http.MethodPost, "/"+partnerTenant+"/oauth2", http.StatusBadRequest, 1)
	reports = append(reports, h.pass())
	require.True(t, reports[0].Accounts[0].Stopped)

	// A token for another tenant.
	h.sim.SetTokenTenantID("99999999-9999-9999-9999-999999999999")
	reports = append(reports, h.pass())
	require.True(t, reports[1].Accounts[0].Stopped)
	h.sim.SetTokenTenantID(partnerTenant)

	// Failures of every kind a pass records: a refused DELETE, an order that
	// never cancels, an order too old to cancel.
	h.sim.FailNext(http.MethodDelete, "/v1/customers/"+h.id("refused"), http.StatusBadRequest, 1)
	reports = append(reports, h.pass())
	require.Equal(t, store.RunPartial, reports[2].Status)
	require.Equal(t, []string{"old"}, h.gone())
	require.Equal(t, 2, reports[2].Counts.Failed)
	require.Equal(t, 1, reports[2].Counts.Blocked)

	var all strings.Builder
	all.WriteString(h.logs.String())
	for _, ev := range h.emitted("") {
		fmt.Fprintf(&all, "%+v\n", ev)
	}
	for name := range h.ids {
		for _, ev := range h.customerEvents(name) {
			fmt.Fprintf(&all, "%+v\n", ev)
		}
		fmt.Fprintf(&all, "%+v\n", h.state(name))
	}
	runs, err := h.store.Runs(context.Background(), 0)
	require.NoError(t, err)
	fmt.Fprintf(&all, "%+v\n", runs)
	for _, r := range reports {
		fmt.Fprintf(&all, "%+v\n", *r)
	}
	text := all.String()
	for _, covered := range []string{"fetch token", "partner_tenant_id", "400 injected", "cancel_timeout", "older than 60 days", "DEBUG"} {
		require.True(t, strings.Contains(text, covered), "the search does not cover %q", covered)
	}
	require.False(t, strings.Contains(text, clientSecret), "the client secret is in the logs, audit rows or reports")

	closeStore()
	files, err := os.ReadDir(dir)
	require.NoError(t, err)
	var raw strings.Builder
	for _, f := range files {
		if f.IsDir() {
			continue // instances/: the (now empty) directory of the processes' lock files
		}
		b, err := os.ReadFile(filepath.Join(dir, f.Name()))
		require.NoError(t, err)
		raw.Write(b)
		require.False(t, strings.Contains(string(b), clientSecret), "the client secret is in %s", f.Name())
	}
	require.True(t, strings.Contains(raw.String(), "older than 60 days"), "the database files hold the audit rows as text")
}

func TestAGuardStopsOnlyTheAccountThatTripsIt(t *testing.T) {
	good := newHarness(t, opts{customers: []pcsim.SeedCustomer{ci("good-old", 10*day, software())}})
	bad := newHarness(t, opts{store: func(testing.TB) store.Store { return good.store },
		sim:       pcsim.Config{TokenTenantID: "99999999-9999-9999-9999-999999999999"},
		customers: []pcsim.SeedCustomer{ci("bad-old", 10*day, software())}})
	yaml := `accounts:
  - {name: good, partner_tenant_id: ` + partnerTenant + `, client_id: ` + clientID + `, client_secret: "${PC_CLIENT_SECRET}", base_url: "${GOOD_URL}", authority: "${GOOD_URL}"}
  - {name: bad, partner_tenant_id: ` + partnerTenant + `, client_id: ` + clientID + `, client_secret: "${PC_CLIENT_SECRET}", base_url: "${BAD_URL}", authority: "${BAD_URL}"}
policies:
  - {name: ci-good, account: good, select: {domain: '^ci-'}, older_than: 72h}
  - {name: ci-bad, account: bad, select: {domain: '^ci-'}, older_than: 72h}
`
	env := map[string]string{"GOOD_URL": good.url, "BAD_URL": bad.url, "PC_CLIENT_SECRET": clientSecret}
	cfg, err := policy.Parse("two.yaml", []byte(yaml), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	require.NoError(t, err)
	quickPolls(cfg, "")

	r, err := good.engine(func(o *engine.Options) { o.Config = cfg }).Pass(context.Background())
	require.NoError(t, err)

	require.Equal(t, []string{"good-old"}, good.gone())
	require.Zero(t, bad.sim.Stats().MutatingCalls, "the account whose guard tripped got a PATCH or DELETE")
	require.Equal(t, store.RunFailed, r.Status)
	require.Equal(t, 1, r.ExitCode())
	byName := map[string]engine.AccountReport{}
	for _, a := range r.Accounts {
		byName[a.Name] = a
	}
	require.False(t, byName["good"].Stopped)
	require.True(t, byName["bad"].Stopped)
	require.Contains(t, byName["bad"].Reason, "partner_tenant_id")
	require.Equal(t, engine.OutcomeDeleted, item(t, r, good.id("good-old")).Outcome)
}
