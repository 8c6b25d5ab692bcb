package pcsim

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRateLimit(t *testing.T) {
	t.Run("a full window answers 429 with Retry-After until its oldest request leaves", func(t *testing.T) {
		s := newSim(t, Config{RatePerMinute: 3}, ciCustomer("c1", time.Hour))
		for range 3 {
			res, body := s.do(http.MethodGet, "/v1/customers/c1", "")
			require.Equal(t, http.StatusOK, res.StatusCode, string(body))
			s.clock.Advance(10 * time.Second)
		}
		// Requests at 0 s, 10 s and 20 s; now is 30 s: the first leaves the window at 60 s.
		res, body := s.do(http.MethodGet, "/v1/customers?size=40", "")
		require.Equal(t, http.StatusTooManyRequests, res.StatusCode, string(body))
		require.Equal(t, "30", res.Header.Get("Retry-After"))
		var got struct {
			StatusCode int    `json:"statusCode"`
			Message    string `json:"message"`
		}
		require.NoError(t, json.Unmarshal(body, &got))
		require.Equal(t, 429, got.StatusCode)
		require.Equal(t, "Rate limit is exceeded. Try again in 30 seconds.", got.Message)

		s.clock.Advance(30 * time.Second)
		res, body = s.do(http.MethodGet, "/v1/customers/c1", "")
		require.Equal(t, http.StatusOK, res.StatusCode, string(body))
		res, _ = s.do(http.MethodGet, "/v1/customers/c1", "")
		require.Equal(t, http.StatusTooManyRequests, res.StatusCode)
		require.Equal(t, "10", res.Header.Get("Retry-After"), "the request at 10 s is now the oldest")
		require.Equal(t, 2, s.srv.Stats().Throttled)
	})

	t.Run("throttled requests do not take a slot", func(t *testing.T) {
		s := newSim(t, Config{RatePerMinute: 2}, ciCustomer("c1", time.Hour))
		for range 2 {
			res, _ := s.do(http.MethodGet, "/v1/customers/c1", "")
			require.Equal(t, http.StatusOK, res.StatusCode)
		}
		s.clock.Advance(30 * time.Second)
		for range 5 {
			res, _ := s.do(http.MethodGet, "/v1/customers/c1", "")
			require.Equal(t, http.StatusTooManyRequests, res.StatusCode)
		}
		s.clock.Advance(30 * time.Second)
		for range 2 {
			res, body := s.do(http.MethodGet, "/v1/customers/c1", "")
			require.Equal(t, http.StatusOK, res.StatusCode, string(body))
		}
	})

	t.Run("Retry-After is at least one second", func(t *testing.T) {
		s := newSim(t, Config{RatePerMinute: 1}, ciCustomer("c1", time.Hour))
		res, _ := s.do(http.MethodGet, "/v1/customers/c1", "")
		require.Equal(t, http.StatusOK, res.StatusCode)
		s.clock.Advance(59*time.Second + 900*time.Millisecond)
		res, _ = s.do(http.MethodGet, "/v1/customers/c1", "")
		require.Equal(t, http.StatusTooManyRequests, res.StatusCode)
		require.Equal(t, "1", res.Header.Get("Retry-After"))
	})

	t.Run("tokens and the activity log are not limited, and neither path form escapes the limit", func(t *testing.T) {
		s := newSim(t, Config{RatePerMinute: 2}, ciCustomer("c1", time.Hour))
		res, _ := s.do(http.MethodGet, "/v1/customers/c1", "")
		require.Equal(t, http.StatusOK, res.StatusCode)
		res, _ = s.do(http.MethodGet, "/customers/c1", "")
		require.Equal(t, http.StatusOK, res.StatusCode)
		res, _ = s.do(http.MethodGet, "/customers/c1", "")
		require.Equal(t, http.StatusTooManyRequests, res.StatusCode)
		res, _ = s.do(http.MethodGet, "/v1/customers/c1/orders", "")
		require.Equal(t, http.StatusTooManyRequests, res.StatusCode)

		res, body := s.do(http.MethodGet, "/v1/auditrecords?startDate=2026-01-01", "")
		require.Equal(t, http.StatusOK, res.StatusCode, string(body))
		res, body = s.postForm("/"+testTenant+"/oauth2/token", url.Values{
			"grant_type": {"client_credentials"}, "client_id": {testClient}, "client_secret": {testSecret}, "resource": {pcResource},
		})
		require.Equal(t, http.StatusOK, res.StatusCode, string(body))
	})

	t.Run("without a limit nothing is throttled and the peak is still counted", func(t *testing.T) {
		s := newSim(t, Config{}, ciCustomer("c1", time.Hour))
		for range 50 {
			res, _ := s.do(http.MethodGet, "/v1/customers/c1", "")
			require.Equal(t, http.StatusOK, res.StatusCode)
		}
		st := s.srv.Stats()
		require.Zero(t, st.Throttled)
		require.Equal(t, 50, st.PeakPerMinute)
	})
}
