package engine_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tipreaper/tipreaper/internal/engine"
	"github.com/tipreaper/tipreaper/internal/pcsim"
	"github.com/tipreaper/tipreaper/internal/store"
)

// rewriteItems lets the simulator answer, then rewrites the items of the
// collections whose path match says so, before the answer is sent: how a
// test plays a Partner Center whose listing is defective.
func rewriteItems(match func(path string) bool, edit func(items []map[string]any) []map[string]any) func(*pcsim.Server) http.Handler {
	return func(sim *pcsim.Server) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet || !match(r.URL.Path) {
				sim.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			sim.ServeHTTP(rec, r)
			body := rec.Body.Bytes()
			var page map[string]any
			if rec.Code == http.StatusOK && json.Unmarshal(body, &page) == nil {
				if raw, ok := page["items"].([]any); ok {
					items := make([]map[string]any, 0, len(raw))
					for _, it := range raw {
						items = append(items, it.(map[string]any))
					}
					page["items"] = edit(items)
					body, _ = json.Marshal(page)
				}
			}
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.Header().Del("Content-Length")
			w.WriteHeader(rec.Code)
			_, _ = w.Write(body)
		})
	}
}

func customerListing(path string) bool {
	return path == "/v1/customers" || path == "/customers"
}

// clone copies a JSON object deeply enough to change its company profile.
func clone(it map[string]any) map[string]any {
	b, _ := json.Marshal(it)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return out
}

func TestACustomerListedTwiceWithTheSameProfileIsReapedOnce(t *testing.T) {
	h := newHarness(t, opts{customers: []pcsim.SeedCustomer{ci("old-a", 10*day, software()), ci("young", day)},
		// Every page repeats itself: a looping listing.
		wrap: rewriteItems(customerListing, func(items []map[string]any) []map[string]any {
			return append(items, items...)
		})})

	r := h.pass()

	require.Equal(t, store.RunSucceeded, r.Status)
	require.Equal(t, []string{"old-a"}, h.gone())
	require.Len(t, h.requests(http.MethodDelete, "/v1/customers/"+h.id("old-a")), 1, "a customer listed twice was deleted twice")
	require.Equal(t, 2, r.Counts.Listed, "the listing has two customers, each listed twice")
	require.Equal(t, 1, r.Counts.Selected)
	require.Contains(t, h.logs.String(), "listed more than once")
}

func TestTheSameIDListedWithTwoProfilesStopsTheAccount(t *testing.T) {
	// The same customer listed once as prod (protected) and once as ci-prod
	// (selected): judged per listing row, the protected customer is deleted.
	h := newHarness(t, opts{
		customers: []pcsim.SeedCustomer{{Domain: "prod.onmicrosoft.com", CompanyName: "Prod", Age: 30 * day, Orders: []pcsim.SeedOrder{software()}}},
		keep:      "  domains: ['^prod\\.']\n",
		wrap: rewriteItems(customerListing, func(items []map[string]any) []map[string]any {
			for _, it := range items {
				if it["companyProfile"].(map[string]any)["domain"] == "prod.onmicrosoft.com" {
					twin := clone(it)
					twin["companyProfile"].(map[string]any)["domain"] = "ci-prod.onmicrosoft.com"
					items = append(items, twin)
				}
			}
			return items
		})})

	r := h.pass()

	requireStopped(t, h, r, "listed twice with different profiles")
	require.Contains(t, r.Accounts[0].Reason, h.id("prod"))
}

func TestCustomerAndOrderIDsMustHaveTheContractsForm(t *testing.T) {
	for _, bad := range []string{"..%2F..%2Fv1%2Fcustomers", "{" + partnerTenant + "}", "not-a-guid"} {
		t.Run(fmt.Sprintf("customer id %q stops the account", bad), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, opts{customers: []pcsim.SeedCustomer{ci("old-a", 10*day, software()), ci("old-b", 10*day, software())},
				wrap: rewriteItems(customerListing, func(items []map[string]any) []map[string]any {
					items[len(items)-1]["id"] = bad
					return items
				})})

			r := h.pass()

			requireStopped(t, h, r, "is not a GUID")
			require.Contains(t, h.emitted(store.ActionGuard)[0].Error, fmt.Sprintf("%q", bad))
		})
	}

	t.Run("an order id with a path in it stops the account before that customer is touched", func(t *testing.T) {
		t.Parallel()
		hh := newHarness(t, opts{customers: []pcsim.SeedCustomer{ci("old-a", 10*day, software())},
			wrap: rewriteItems(func(path string) bool { return strings.HasSuffix(path, "/orders") }, func(items []map[string]any) []map[string]any {
				for _, it := range items {
					it["id"] = "../../" + it["referenceCustomerId"].(string)
				}
				return items
			})})
		id := hh.id("old-a")

		r := hh.pass()

		require.Zero(t, hh.sim.Stats().MutatingCalls, "a customer whose order id is defective got a PATCH or DELETE")
		require.Equal(t, store.RunFailed, r.Status)
		require.Equal(t, 1, r.ExitCode())
		require.True(t, r.Accounts[0].Stopped)
		guards := hh.emitted(store.ActionGuard)
		require.Len(t, guards, 1)
		require.Contains(t, guards[0].Error, `"../../`+id+`"`)
	})
}

func TestMaxSelectedFractionCountsEveryCustomerTheSelectorMatches(t *testing.T) {
	for _, tc := range []struct {
		name  string
		other func(i int) pcsim.SeedCustomer
	}{
		{"too young customers count", func(i int) pcsim.SeedCustomer { return ci(fmt.Sprintf("young-%d", i), day) }},
		{"protected customers count", func(i int) pcsim.SeedCustomer { return ci(fmt.Sprintf("golden-%d", i), 10*day) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// A selector that matches all ten customers, of which only two
			// expire: a wrong regex that would empty the sandbox a few
			// customers per pass.
			customers := []pcsim.SeedCustomer{ci("old-a", 10*day, software()), ci("old-b", 10*day, software())}
			for i := range 8 {
				customers = append(customers, tc.other(i))
			}
			h := newHarness(t, opts{customers: customers, keep: "  domains: ['^ci-golden']\n",
				policies: ciPolicy + "    max_selected_fraction: 0.5\n"})

			r := h.pass()

			requireStopped(t, h, r, "max_selected_fraction")
			require.Contains(t, r.Accounts[0].Reason, "policy ci selects 10 of 10")
		})
	}

	t.Run("each policy counts what its own selector matches", func(t *testing.T) {
		t.Parallel()
		customers := []pcsim.SeedCustomer{ci("old-a", 10*day, software()), ci("young-a", day), ci("young-b", day),
			{Domain: "contoso.onmicrosoft.com", CompanyName: "Contoso", Age: 30 * day}}
		h := newHarness(t, opts{customers: customers, policies: ciPolicy + `    max_selected_fraction: 0.75
  - name: contoso
    account: ${ACCOUNT}
    select:
      domain: '^contoso\.'
    older_than: 2000h
    max_selected_fraction: 0.25
`})

		r := h.pass()

		require.Equal(t, store.RunSucceeded, r.Status, "ci matches 3 of 4, contoso 1 of 4: both within their caps")
		require.Equal(t, []string{"old-a"}, h.gone())
	})
}

// skewDate answers every request with a Date header skew ahead of the
// simulator's clock.
func skewDate(skew time.Duration) func(*pcsim.Server) http.Handler {
	return func(sim *pcsim.Server) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Date", time.Now().Add(skew).UTC().Format(http.TimeFormat))
			sim.ServeHTTP(w, r)
		})
	}
}

func TestALocalClockFarFromPartnerCentersStopsTheAccount(t *testing.T) {
	for _, tc := range []struct {
		name  string
		skew  time.Duration
		trips bool
	}{
		{"Partner Center 10 minutes ahead", 10 * time.Minute, true},
		{"Partner Center 2 hours behind", -2 * time.Hour, true},
		{"Partner Center 2 minutes ahead is tolerated", 2 * time.Minute, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, opts{customers: []pcsim.SeedCustomer{ci("old-a", 10*day, software())}, wrap: skewDate(tc.skew)})

			r := h.pass()

			if !tc.trips {
				require.Equal(t, store.RunSucceeded, r.Status)
				require.Equal(t, []string{"old-a"}, h.gone())
				return
			}
			requireStopped(t, h, r, "skew")
			guard := h.emitted(store.ActionGuard)[0].Error
			require.Contains(t, guard, "the local clock reads")
			require.Contains(t, guard, "Date header reads")
			server := time.Now().Add(tc.skew).UTC().Format("2006-01-02T15:04")
			require.Contains(t, guard, server, "the guard names Partner Center's time")
			_, sighted, err := h.store.Customer(t.Context(), h.account, h.id("old-a"))
			require.NoError(t, err)
			require.False(t, sighted, "a first sighting was written from a clock that cannot be trusted")
		})
	}
}

func TestACustomerGoneWhenItsOrdersAreListedIsAlreadyGone(t *testing.T) {
	h := newHarness(t, opts{customers: []pcsim.SeedCustomer{ci("old-a", 10*day, software()), ci("old-b", 10*day, software())}})
	id := h.id("old-a")
	h.sim.FailNext(http.MethodGet, "/v1/customers/"+id+"/orders", http.StatusNotFound, 1)

	r := h.pass()

	require.Equal(t, store.RunSucceeded, r.Status)
	it := item(t, r, id)
	require.Equal(t, "already_gone", it.Outcome)
	require.Equal(t, 1, r.Counts.AlreadyGone)
	require.Zero(t, r.Counts.Failed)
	require.Equal(t, store.StateDeleted, h.state("old-a").State)
	require.Equal(t, pcsim.Mutations{}, h.mutations("old-a"), "no PATCH or DELETE for a customer already gone")
	require.True(t, strings.Contains(fmt.Sprint(h.customerEvents("old-a")), "already gone"))
}

func TestACustomerAbsentFromAListingAndListedAgainStartsItsAgeAgain(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			var hidden atomic.Value // customer id the listing leaves out
			hidden.Store("")
			h := newHarness(t, opts{store: b.open, customers: []pcsim.SeedCustomer{
				ci("back", day, software()),
				{Domain: "contoso.onmicrosoft.com", CompanyName: "Contoso", Age: 30 * day},
			}, wrap: rewriteItems(customerListing, func(items []map[string]any) []map[string]any {
				return slices.DeleteFunc(items, func(it map[string]any) bool { return it["id"] == hidden.Load() })
			})})
			id := h.id("back")
			h.pass()
			firstSeen := h.state("back").FirstSeen

			hidden.Store(id) // the relationship is gone for a while…
			h.clock.Advance(5 * day)
			h.pass()
			hidden.Store("") // …and re-created with the same tenant id
			h.clock.Advance(time.Hour)
			r := h.pass()

			require.Equal(t, store.RunSucceeded, r.Status)
			require.Empty(t, h.gone(), "a customer listed again was deleted on its old age")
			it := item(t, r, id)
			require.Equal(t, engine.OutcomeSkipped, it.Outcome)
			require.Contains(t, it.Reason, "not older than")
			st := h.state("back")
			require.True(t, st.FirstSeen.After(firstSeen.Add(5*day)), "first_seen %s did not restart", st.FirstSeen)
			ev, ok := find(h.customerEvents("back"), store.ActionReappeared, store.OutcomeOK)
			require.True(t, ok, "no event says the age restarted: %+v", h.customerEvents("back"))
			require.Contains(t, ev.Detail, "listed again")

			// The activity log's record of the old relationship does not age it
			// on later passes either.
			r = h.pass()
			require.Empty(t, h.gone())
			require.Equal(t, engine.OutcomeSkipped, item(t, r, id).Outcome)
			x, err := h.engine().Why(t.Context(), id)
			require.NoError(t, err)
			require.Contains(t, x.NextPass, "nothing yet", "why agrees with the pass")

			h.clock.Advance(4 * day)
			h.pass()
			require.Equal(t, []string{"back"}, h.gone(), "once its new age is over older_than it goes")
		})
	}
}
