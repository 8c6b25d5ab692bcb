package pcsim

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestInjectedFailures(t *testing.T) {
	t.Run("FailNext fails before acting: the customer is still there", func(t *testing.T) {
		s := newSim(t, Config{}, ciCustomer("c1", time.Hour))
		s.srv.FailNext(http.MethodDelete, "/v1/customers/", http.StatusServiceUnavailable, 1)
		res, body := s.do(http.MethodDelete, customerPath("c1"), "")
		requireError(t, res, body, http.StatusServiceUnavailable, "ServiceUnavailable")
		require.Equal(t, []string{"c1"}, s.srv.Customers())
		res, body = s.do(http.MethodDelete, customerPath("c1"), "")
		require.Equal(t, http.StatusNoContent, res.StatusCode, string(body))
	})

	t.Run("FailNextAfter fails after acting: the delete happened and a retry finds it gone", func(t *testing.T) {
		s := newSim(t, Config{}, ciCustomer("c1", time.Hour))
		s.srv.FailNextAfter(http.MethodDelete, "/v1/customers/", http.StatusInternalServerError, 1)
		res, body := s.do(http.MethodDelete, customerPath("c1"), "")
		requireError(t, res, body, http.StatusInternalServerError, "InternalServerError")
		require.Empty(t, s.srv.Customers())
		res, body = s.do(http.MethodDelete, customerPath("c1"), "")
		requireError(t, res, body, http.StatusNotFound, float64(codeNotFound))
	})

	t.Run("a lost cancel answer leaves the order pending", func(t *testing.T) {
		s := newSim(t, slowCancel, ciCustomer("c1", time.Hour, SeedOrder{Type: TypeSoftware}, SeedOrder{Type: TypeSoftware}))
		s.srv.FailNext(http.MethodPatch, "/v1/customers/c1/orders/o1", http.StatusInternalServerError, 1)
		s.srv.FailNextAfter(http.MethodPatch, "/v1/customers/c1/orders/o2", http.StatusInternalServerError, 1)
		for _, id := range []string{"o1", "o2"} {
			res, _ := s.do(http.MethodPatch, orderPath("c1", id), cancelBody(id))
			require.Equal(t, http.StatusInternalServerError, res.StatusCode)
		}
		before, _ := s.srv.Order("c1", "o1")
		after, _ := s.srv.Order("c1", "o2")
		require.Equal(t, StatusCompleted, before)
		require.Equal(t, StatusPending, after)
	})

	t.Run("FailNext counts down and matches only its method and prefix", func(t *testing.T) {
		s := newSim(t, Config{}, ciCustomer("c1", time.Hour))
		s.srv.FailNext(http.MethodGet, "/v1/customers/c1", http.StatusServiceUnavailable, 2)
		res, _ := s.do(http.MethodGet, "/v1/auditrecords?startDate=2026-01-01", "")
		require.Equal(t, http.StatusOK, res.StatusCode)
		for _, want := range []int{503, 503, 200} {
			res, _ = s.do(http.MethodGet, customerPath("c1"), "")
			require.Equal(t, want, res.StatusCode)
		}
		require.Equal(t, 2, s.srv.Stats().FailuresInjected)
	})

	t.Run("FailNext can fail a token request", func(t *testing.T) {
		s := newSim(t, Config{})
		s.srv.FailNext("", "/"+testTenant+"/oauth2/", http.StatusServiceUnavailable, 1)
		res, body := s.postForm("/"+testTenant+"/oauth2/token", url.Values{
			"grant_type": {"client_credentials"}, "client_id": {testClient}, "client_secret": {testSecret}, "resource": {pcResource},
		})
		require.Equal(t, http.StatusServiceUnavailable, res.StatusCode, string(body))
		require.Contains(t, string(body), "temporarily_unavailable")
	})

	t.Run("FailureRate fails API requests both before and after acting, with 500 and 503", func(t *testing.T) {
		var orders []SeedOrder
		for i := range 40 {
			orders = append(orders, SeedOrder{ID: fmt.Sprintf("o%02d", i), Type: TypeSoftware})
		}
		s := newSim(t, Config{FailureRate: 1, Seed: 7, CancelDelay: [2]time.Duration{time.Hour, time.Hour}}, ciCustomer("c1", time.Hour, orders...))
		statuses := map[int]int{}
		outcomes := map[string]int{}
		for _, o := range orders {
			res, _ := s.do(http.MethodPatch, orderPath("c1", o.ID), cancelBody(o.ID))
			statuses[res.StatusCode]++
			st, _ := s.srv.Order("c1", o.ID)
			outcomes[st]++
		}
		require.Equal(t, 40, statuses[500]+statuses[503])
		require.Positive(t, statuses[500])
		require.Positive(t, statuses[503])
		require.Positive(t, outcomes[StatusCompleted], "some failed before acting")
		require.Positive(t, outcomes[StatusPending], "some failed after acting")
		require.Equal(t, 40, s.srv.Stats().FailuresInjected, "the token request was not failed")
	})
}

func TestLatency(t *testing.T) {
	t.Run("latency ends when the caller goes away, and nothing is done", func(t *testing.T) {
		clock := NewClock(t0)
		srv := New(Config{Latency: [2]time.Duration{time.Hour, time.Hour}, Now: clock.Now})
		_, err := srv.AddCustomer(ciCustomer("c1", time.Hour))
		require.NoError(t, err)
		ts := httptest.NewServer(srv)
		s := &sim{t: t, srv: srv, ts: ts, clock: clock}
		s.refreshToken() // token requests have no latency

		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodDelete, ts.URL+customerPath("c1"), http.NoBody)
		require.NoError(t, err)
		req.TransferEncoding = []string{"identity"}
		req.Header.Set("Authorization", "Bearer "+s.token)
		_, err = ts.Client().Do(req)
		require.ErrorIs(t, err, context.DeadlineExceeded)

		ts.Close() // returns only once the handler has given up its hour
		require.Equal(t, []string{"c1"}, srv.Customers())
		log := srv.Requests()
		require.Zero(t, log[len(log)-1].Status)
	})
}
