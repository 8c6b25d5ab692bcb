package pcsim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func customersNamed(n int) []SeedCustomer {
	out := make([]SeedCustomer, n)
	for i := range out {
		out[i] = ciCustomer(fmt.Sprintf("c%02d", i+1), time.Duration(i+1)*time.Hour)
	}
	return out
}

// followPages lists a collection from its first page by following next links,
// sending every header each link names, and calls each(page) before the next.
func (s *sim) followPages(first string, each func(page int, c collection)) (ids []string, nextURIs []string) {
	s.t.Helper()
	var c collection
	s.get(first, &c)
	for page := 0; ; page++ {
		for _, raw := range c.Items {
			var item struct {
				ID string `json:"id"`
			}
			require.NoError(s.t, json.Unmarshal(raw, &item))
			ids = append(ids, item.ID)
		}
		if each != nil {
			each(page, c)
		}
		if c.Links.Next == nil {
			return ids, nextURIs
		}
		require.Equal(s.t, http.MethodGet, c.Links.Next.Method)
		nextURIs = append(nextURIs, c.Links.Next.URI)
		var hdr []string
		for _, h := range c.Links.Next.Headers {
			hdr = append(hdr, h.Key, h.Value)
		}
		res, body := s.do(http.MethodGet, c.Links.Next.URI, "", hdr...)
		require.Equal(s.t, http.StatusOK, res.StatusCode, string(body))
		c = collection{}
		require.NoError(s.t, json.Unmarshal(body, &c))
	}
}

func TestListCustomers(t *testing.T) {
	t.Run("paging walks every customer once and next links alternate between /v1/customers and /customers", func(t *testing.T) {
		s := newSim(t, Config{MaxPageSize: 2}, customersNamed(7)...)
		var sizes []int
		ids, next := s.followPages("/v1/customers?size=2", func(_ int, c collection) {
			require.Equal(t, 7, c.TotalCount)
			require.Equal(t, "Collection", c.Attributes.ObjectType)
			sizes = append(sizes, len(c.Items))
		})
		require.Equal(t, s.srv.Customers(), ids)
		require.Equal(t, []int{2, 2, 2, 1}, sizes)
		require.Len(t, next, 3)
		require.True(t, strings.HasPrefix(next[0], "/v1/customers?size=2"), next[0])
		require.True(t, strings.HasPrefix(next[1], "/customers?size=2"), next[1])
		require.True(t, strings.HasPrefix(next[2], "/v1/customers?size=2"), next[2])
		for _, u := range next {
			require.Contains(t, u, "seekOperation=Next")
		}
	})

	t.Run("a size above the maximum is clamped", func(t *testing.T) {
		s := newSim(t, Config{MaxPageSize: 3}, customersNamed(5)...)
		var c collection
		s.get("/v1/customers?size=100", &c)
		require.Len(t, c.Items, 3)
		require.NotNil(t, c.Links.Next)
	})

	t.Run("the default maximum page is 40", func(t *testing.T) {
		s := newSim(t, Config{}, customersNamed(45)...)
		var c collection
		s.get("/v1/customers?size=100", &c)
		require.Len(t, c.Items, 40)
	})

	t.Run("a customer reads as the contract shows it", func(t *testing.T) {
		s := newSim(t, Config{}, ciCustomer("c1", time.Hour))
		var c map[string]any
		s.get("/v1/customers/c1", &c)
		profile := c["companyProfile"].(map[string]any)
		require.Equal(t, "c1", c["id"])
		require.Equal(t, c["id"], profile["tenantId"])
		require.Equal(t, "c1.onmicrosoft.com", profile["domain"])
		require.Equal(t, "Company c1", profile["companyName"])
		require.Equal(t, "reseller", c["relationshipToPartner"])
		require.NotEmpty(t, c["commerceId"])
		require.Equal(t, "Customer", c["attributes"].(map[string]any)["objectType"])
		require.NotContains(t, c, "creationDate", "a customer has no creation date")
	})

	t.Run("the last page has no next link", func(t *testing.T) {
		s := newSim(t, Config{}, customersNamed(3)...)
		var c collection
		s.get("/v1/customers?size=40", &c)
		require.Nil(t, c.Links.Next)
		require.NotNil(t, c.Links.Self)
	})

	t.Run("an empty sandbox lists an empty page", func(t *testing.T) {
		s := newSim(t, Config{})
		res, body := s.do(http.MethodGet, "/v1/customers?size=40", "")
		require.Equal(t, http.StatusOK, res.StatusCode)
		require.JSONEq(t, `[]`, mustField(t, body, "items"))
	})
}

func mustField(t *testing.T, body []byte, field string) string {
	t.Helper()
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(body, &m))
	return string(m[field])
}

func TestContinuationToken(t *testing.T) {
	cases := []struct {
		name string
		hdr  []string
	}{
		{"a next page without MS-ContinuationToken is refused", nil},
		{"a garbled continuation token is refused", []string{"MS-ContinuationToken", "not-a-token"}},
	}
	for _, tc := range cases {
		for _, path := range []string{"/v1/customers?size=2&seekOperation=Next", "/customers?size=2&seekOperation=Next"} {
			t.Run(tc.name+" on "+path, func(t *testing.T) {
				s := newSim(t, Config{}, customersNamed(5)...)
				res, body := s.do(http.MethodGet, path, "", tc.hdr...)
				requireError(t, res, body, http.StatusBadRequest, codeBadRequest)
			})
		}
	}

	t.Run("a continuation token of the activity log is refused on customers", func(t *testing.T) {
		s := newSim(t, Config{MaxPageSize: 1}, customersNamed(3)...)
		var c collection
		s.get("/v1/auditrecords?startDate=2026-01-01", &c)
		require.NotNil(t, c.Links.Next)
		res, body := s.do(http.MethodGet, "/v1/customers?size=1&seekOperation=Next", "", "MS-ContinuationToken", c.Links.Next.Headers[0].Value)
		requireError(t, res, body, http.StatusBadRequest, codeBadRequest)
	})

	t.Run("a retried next page answers the same page", func(t *testing.T) {
		s := newSim(t, Config{}, customersNamed(5)...)
		var c collection
		s.get("/v1/customers?size=2", &c)
		tok := c.Links.Next.Headers[0].Value
		_, a := s.do(http.MethodGet, c.Links.Next.URI, "", "MS-ContinuationToken", tok)
		_, b := s.do(http.MethodGet, c.Links.Next.URI, "", "MS-ContinuationToken", tok)
		require.Equal(t, mustField(t, a, "items"), mustField(t, b, "items"))
	})
}

func TestPagingSnapshot(t *testing.T) {
	t.Run("deletes during paging neither skip nor repeat a customer", func(t *testing.T) {
		s := newSim(t, Config{MaxPageSize: 2}, customersNamed(7)...)
		before := s.srv.Customers()
		ids, _ := s.followPages("/v1/customers?size=2", func(page int, c collection) {
			if page != 0 {
				return
			}
			// Delete one customer already listed and two not yet listed, and add one.
			for _, id := range []string{"c01", "c03", "c06"} {
				res, body := s.do(http.MethodDelete, customerPath(id), "")
				require.Equal(t, http.StatusNoContent, res.StatusCode, string(body))
			}
			_, err := s.srv.AddCustomer(ciCustomer("late", time.Minute))
			require.NoError(t, err)
		})
		require.Equal(t, before, ids)
		require.NotEqual(t, before, s.srv.Customers(), "the deletes did happen")
	})
}
