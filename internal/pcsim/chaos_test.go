package pcsim

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tipreaper/tipreaper/internal/memhttp"
)

func TestChaosFaults(t *testing.T) {
	t.Run("a storm answers 429 with its long Retry-After and acts on nothing", func(t *testing.T) {
		s := newSim(t, Config{Chaos: &Chaos{StormChance: 1, StormLength: 10 * time.Second,
			StormRetryAfter: [2]time.Duration{200 * time.Second, 200 * time.Second}}}, ciCustomer("c1", time.Hour))
		for range 2 {
			res, body := s.do(http.MethodDelete, customerPath("c1"), "")
			require.Equal(t, http.StatusTooManyRequests, res.StatusCode, string(body))
			require.Equal(t, "200", res.Header.Get("Retry-After"))
			require.Contains(t, string(body), "Try again in 200 seconds")
		}
		require.Equal(t, []string{"c1"}, s.srv.Customers())
		require.Equal(t, 2, s.srv.Stats().Throttled)
	})

	t.Run("a storm ends after its length", func(t *testing.T) {
		ch := &Chaos{StormChance: 1, StormLength: 10 * time.Second, StormRetryAfter: [2]time.Duration{time.Second, time.Second}}
		s := newSim(t, Config{Chaos: ch}, ciCustomer("c1", time.Hour))
		res, _ := s.do(http.MethodGet, customerPath("c1"), "")
		require.Equal(t, http.StatusTooManyRequests, res.StatusCode)
		ch.StormChance = 0 // no new storm; the running one must end by itself
		s.advance(11 * time.Second)
		res, body := s.do(http.MethodGet, customerPath("c1"), "")
		require.Equal(t, http.StatusOK, res.StatusCode, string(body))
	})

	t.Run("a server error comes before acting", func(t *testing.T) {
		s := newSim(t, Config{Chaos: &Chaos{ServerErrors: 1}}, ciCustomer("c1", time.Hour))
		res, body := s.do(http.MethodDelete, customerPath("c1"), "")
		require.GreaterOrEqual(t, res.StatusCode, 500, string(body))
		require.Equal(t, []string{"c1"}, s.srv.Customers())
		require.Equal(t, 1, s.srv.Stats().FailuresInjected)
	})

	t.Run("a dropped answer comes after the work was done", func(t *testing.T) {
		s := newSim(t, Config{Chaos: &Chaos{DroppedAnswers: 1}, Seed: 3}, ciCustomer("c1", time.Hour),
			ciCustomer("c2", time.Hour), ciCustomer("c3", time.Hour), ciCustomer("c4", time.Hour))
		lost := map[string]int{}
		for _, id := range []string{"c1", "c2", "c3", "c4"} {
			req, err := http.NewRequest(http.MethodDelete, s.ts.URL+customerPath(id), http.NoBody)
			require.NoError(t, err)
			req.TransferEncoding = []string{"identity"}
			req.Header.Set("Authorization", "Bearer "+s.token)
			res, err := s.ts.Client().Do(req)
			if err != nil {
				lost["connection closed"]++
				continue
			}
			_ = res.Body.Close()
			require.GreaterOrEqual(t, res.StatusCode, 500)
			lost["5xx"]++
		}
		require.Empty(t, s.srv.Customers(), "every DELETE took effect")
		require.Equal(t, 4, lost["connection closed"]+lost["5xx"])
		require.Positive(t, lost["connection closed"], "seed 3 draws both kinds")
		require.Positive(t, lost["5xx"], "seed 3 draws both kinds")
		res, _ := s.do(http.MethodGet, customerPath("c1"), "") // reads are never dropped
		require.Equal(t, http.StatusNotFound, res.StatusCode)
	})

	t.Run("a token stops working after TokenLife although it announces the TTL", func(t *testing.T) {
		s := newSim(t, Config{TokenTTL: time.Hour, Chaos: &Chaos{TokenLife: 5 * time.Second}}, ciCustomer("c1", time.Hour))
		res, body := s.do(http.MethodGet, customerPath("c1"), "")
		require.Equal(t, http.StatusOK, res.StatusCode, string(body))
		s.clock.Advance(6 * time.Second)
		res, _ = s.do(http.MethodGet, customerPath("c1"), "")
		require.Equal(t, http.StatusUnauthorized, res.StatusCode)
		s.refreshToken()
		res, _ = s.do(http.MethodGet, customerPath("c1"), "")
		require.Equal(t, http.StatusOK, res.StatusCode)
	})

	t.Run("a listing repeats a customer exactly and comes reordered", func(t *testing.T) {
		var seeds []SeedCustomer
		var ids []string
		for i := range 10 {
			id := fmt.Sprintf("c%d", i)
			ids = append(ids, id)
			seeds = append(seeds, ciCustomer(id, time.Hour))
		}
		s := newSim(t, Config{Seed: 5, MaxPageSize: 4, Chaos: &Chaos{DuplicateChance: 1, ReorderChance: 1}}, seeds...)
		var raw []json.RawMessage
		var col collection
		s.get("/v1/customers?size=4", &col)
		for {
			raw = append(raw, col.Items...)
			if col.Links.Next == nil {
				break
			}
			res, body := s.do(http.MethodGet, col.Links.Next.URI, "", "MS-ContinuationToken", col.Links.Next.Headers[0].Value)
			require.Equal(t, http.StatusOK, res.StatusCode, string(body))
			col = collection{}
			require.NoError(t, json.Unmarshal(body, &col))
		}
		require.Len(t, raw, 11)
		var got []string
		first := map[string]string{}
		for _, r := range raw {
			var c struct{ ID string }
			require.NoError(t, json.Unmarshal(r, &c))
			if prev, ok := first[c.ID]; ok {
				require.JSONEq(t, prev, string(r), "the repeat is an exact copy")
				continue
			}
			first[c.ID] = string(r)
			got = append(got, c.ID)
		}
		require.ElementsMatch(t, ids, got)
		require.NotEqual(t, ids, got, "seed 5 reorders")
	})
}

func TestAChaosLatencySpikeDelaysTheAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := New(Config{Chaos: &Chaos{SpikeChance: 1, Spike: 3 * time.Second}})
		hc, stop := memhttp.Start(srv)
		defer stop()
		res, err := hc.PostForm(memhttp.URL+"/t/oauth2/token", map[string][]string{"grant_type": {"client_credentials"},
			"client_id": {"a"}, "resource": {pcResource}})
		require.NoError(t, err)
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		require.NoError(t, json.NewDecoder(res.Body).Decode(&tok))
		_ = res.Body.Close()

		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, memhttp.URL+"/v1/customers", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		start := time.Now()
		res, err = hc.Do(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, res.Body)
		_ = res.Body.Close()
		require.Equal(t, http.StatusOK, res.StatusCode)
		require.Equal(t, 3*time.Second, time.Since(start))
	})
}
