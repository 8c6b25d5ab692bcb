package pcsim

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type auditJSON struct {
	ID              string `json:"id"`
	CustomerID      string `json:"customerId"`
	CustomerName    string `json:"customerName"`
	OperationType   string `json:"operationType"`
	OperationDate   string `json:"operationDate"`
	OperationStatus string `json:"operationStatus"`
}

func TestAuditRecords(t *testing.T) {
	day := 24 * time.Hour
	seed := []SeedCustomer{
		ciCustomer("d1", 1*day), ciCustomer("d10", 10*day), ciCustomer("d40", 40*day),
		ciCustomer("d89", 89*day), ciCustomer("d100", 100*day),
	}

	t.Run("the log names customers added in the range and not older than 90 days", func(t *testing.T) {
		s := newSim(t, Config{}, seed...)
		var c collection
		s.get("/v1/auditrecords?startDate=2025-01-01&endDate="+t0.Add(-5*day).Format(time.RFC3339), &c)
		var got []auditJSON
		for _, raw := range c.Items {
			var a auditJSON
			require.NoError(t, json.Unmarshal(raw, &a))
			got = append(got, a)
		}
		require.Len(t, got, 3)
		require.Equal(t, []string{"d89", "d40", "d10"}, []string{got[0].CustomerID, got[1].CustomerID, got[2].CustomerID})
		require.Equal(t, "add_customer", got[0].OperationType)
		require.Equal(t, "succeeded", got[0].OperationStatus)
		require.Equal(t, "Company d89", got[0].CustomerName)
		when, err := time.Parse(time.RFC3339Nano, got[2].OperationDate)
		require.NoError(t, err)
		require.Equal(t, t0.Add(-10*day), when)
	})

	t.Run("a deleted customer keeps its add record", func(t *testing.T) {
		s := newSim(t, Config{}, seed...)
		res, body := s.do(http.MethodDelete, customerPath("d1"), "")
		require.Equal(t, http.StatusNoContent, res.StatusCode, string(body))
		var c collection
		s.get("/v1/auditrecords?startDate="+t0.Add(-2*day).Format(time.RFC3339), &c)
		require.Equal(t, 1, c.TotalCount)
	})

	t.Run("a bare end date covers its whole day", func(t *testing.T) {
		s := newSim(t, Config{}, seed...)
		var c collection
		s.get("/v1/auditrecords?startDate=2026-02-19&endDate=2026-02-19", &c)
		require.Equal(t, 1, c.TotalCount, "d10 was added at noon on 2026-02-19")
	})

	t.Run("the log pages like customers, with both link forms", func(t *testing.T) {
		s := newSim(t, Config{MaxPageSize: 1}, seed...)
		ids, next := s.followPages("/v1/auditrecords?startDate=2025-01-01", nil)
		require.Len(t, ids, 4)
		require.Len(t, next, 3)
		require.True(t, strings.HasPrefix(next[0], "/v1/auditrecords?"), next[0])
		require.True(t, strings.HasPrefix(next[1], "/auditrecords?"), next[1])
		require.Contains(t, next[0], "startDate=2025-01-01")
	})

	refusals := []struct{ name, query string }{
		{"a missing startDate is refused", ""},
		{"a startDate that is not a date is refused", "startDate=yesterday"},
		{"an endDate that is not a date is refused", "startDate=2026-01-01&endDate=02%2F01%2F2026"},
		{"an endDate before the startDate is refused", "startDate=2026-02-01&endDate=2026-01-01"},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			s := newSim(t, Config{}, seed...)
			res, body := s.do(http.MethodGet, "/v1/auditrecords?"+tc.query, "")
			requireError(t, res, body, http.StatusBadRequest, codeBadRequest)
		})
	}
}

func TestRoutes(t *testing.T) {
	cases := []struct {
		name, method, path string
		status             int
		code               any
	}{
		{"an unknown path answers 404", http.MethodGet, "/v1/subscriptions", 404, float64(codeNotFound)},
		{"an unknown sub-resource answers 404", http.MethodGet, "/v1/customers/c1/users", 404, float64(codeNotFound)},
		{"a method a resource does not take answers 405", http.MethodPost, "/v1/customers", 405, "MethodNotAllowed"},
		{"an order cannot be deleted", http.MethodDelete, "/v1/customers/c1/orders/o1", 405, "MethodNotAllowed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSim(t, Config{}, ciCustomer("c1", time.Hour, SeedOrder{Type: TypeSoftware}))
			res, body := s.do(tc.method, tc.path, "")
			requireError(t, res, body, tc.status, tc.code)
		})
	}

	t.Run("the API is served with and without /v1", func(t *testing.T) {
		s := newSim(t, Config{}, ciCustomer("c1", time.Hour, SeedOrder{Type: TypeSoftware}))
		for _, p := range []string{"/customers/c1", "/customers/c1/orders", "/customers/c1/orders/o1", "/customers/c1/entitlements", "/customers?size=1"} {
			res, body := s.do(http.MethodGet, p, "")
			require.Equal(t, http.StatusOK, res.StatusCode, "%s: %s", p, body)
		}
	})
}

func TestStats(t *testing.T) {
	t.Run("the counters add up what was sent", func(t *testing.T) {
		s := newSim(t, Config{RatePerMinute: 4}, ciCustomer("c1", time.Hour, SeedOrder{Type: TypeSoftware}), ciCustomer("c2", time.Hour))
		s.do(http.MethodGet, "/v1/customers?size=40", "")
		s.do(http.MethodPatch, orderPath("c1", "o1"), cancelBody("o1"))
		s.do(http.MethodPatch, orderPath("c1", "o1"), cancelBody("o1"))
		s.do(http.MethodDelete, customerPath("c2"), "")
		s.do(http.MethodDelete, customerPath("c2"), "") // throttled, still a mutating call
		s.srv.FailNext(http.MethodGet, "/v1/auditrecords", 500, 1)
		s.do(http.MethodGet, "/v1/auditrecords?startDate=2026-01-01", "")

		st := s.srv.Stats()
		require.Equal(t, map[string]int{"POST": 1, "GET": 2, "PATCH": 2, "DELETE": 2}, st.ByMethod)
		require.Equal(t, map[string]int{
			"POST token": 1, "GET customers": 1, "PATCH order": 2, "DELETE customer": 2, "GET auditrecords": 1,
		}, st.Requests)
		require.Equal(t, Mutations{Patches: 2}, s.srv.MutationsFor("c1"))
		require.Equal(t, Mutations{Deletes: 2}, s.srv.MutationsFor("c2"))
		require.Equal(t, st.Mutations["c2"], s.srv.MutationsFor("c2"))
		require.Equal(t, 4, st.MutatingCalls)
		require.Equal(t, 1, st.Throttled)
		require.Equal(t, 1, st.FailuresInjected)
		require.Equal(t, 4, st.PeakPerMinute)
		require.GreaterOrEqual(t, st.PeakInFlight, 1)
	})

	t.Run("the peak is the busiest window, not the total", func(t *testing.T) {
		s := newSim(t, Config{}, ciCustomer("c1", time.Hour))
		for range 3 {
			s.do(http.MethodGet, customerPath("c1"), "")
		}
		s.clock.Advance(2 * time.Minute)
		for range 2 {
			s.do(http.MethodGet, customerPath("c1"), "")
		}
		require.Equal(t, 3, s.srv.Stats().PeakPerMinute)
	})
}
