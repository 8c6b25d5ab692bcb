package pcsim

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const (
	testTenant = "8d3f1c2e-0000-4000-8000-000000000001"
	testClient = "3a9e7b10-0000-4000-8000-000000000002"
	testSecret = "s3cret-value"
	pcResource = "https://api.partnercenter.microsoft.com"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// sim is a simulator behind a real HTTP server, with a fake clock and a token.
type sim struct {
	t     *testing.T
	srv   *Server
	ts    *httptest.Server
	clock *Clock
	token string
}

// newSim starts a simulator on cfg (tenant and credentials filled in), adds
// the customers and fetches a v1 token.
func newSim(t *testing.T, cfg Config, customers ...SeedCustomer) *sim {
	t.Helper()
	clock := NewClock(t0)
	if cfg.Now == nil {
		cfg.Now = clock.Now
	}
	if cfg.PartnerTenantID == "" {
		cfg.PartnerTenantID = testTenant
	}
	if cfg.ClientID == "" {
		cfg.ClientID, cfg.ClientSecret = testClient, testSecret
	}
	srv := New(cfg)
	for _, c := range customers {
		_, err := srv.AddCustomer(c)
		require.NoError(t, err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	s := &sim{t: t, srv: srv, ts: ts, clock: clock}
	s.refreshToken()
	return s
}

// advance moves the clock and fetches a fresh token, as a client would
// after a long wait.
func (s *sim) advance(d time.Duration) {
	s.clock.Advance(d)
	s.refreshToken()
}

func (s *sim) refreshToken() {
	t := s.t
	t.Helper()
	res, body := s.postForm("/"+testTenant+"/oauth2/token", url.Values{
		"grant_type": {"client_credentials"}, "client_id": {testClient}, "client_secret": {testSecret}, "resource": {pcResource},
	})
	require.Equal(t, http.StatusOK, res.StatusCode, string(body))
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	require.NoError(t, json.Unmarshal(body, &tok))
	s.token = tok.AccessToken
}

func (s *sim) postForm(path string, form url.Values) (*http.Response, []byte) {
	s.t.Helper()
	res, err := s.ts.Client().PostForm(s.ts.URL+path, form)
	require.NoError(s.t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(s.t, err)
	return res, body
}

// do sends an API request the way the contract says a client should: bearer
// token, Accept: application/json, a fresh MS-RequestId, and Content-Length: 0
// on a DELETE. Headers in hdr override or add.
func (s *sim) do(method, path, body string, hdr ...string) (*http.Response, []byte) {
	s.t.Helper()
	var rd io.Reader
	switch {
	case body != "":
		rd = strings.NewReader(body)
	case method == http.MethodDelete:
		rd = http.NoBody
	}
	req, err := http.NewRequest(method, s.ts.URL+path, rd)
	require.NoError(s.t, err)
	req.Header.Set("Authorization", "Bearer "+s.token)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("MS-RequestId", newGUID())
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if method == http.MethodDelete {
		// Go sends Content-Length: 0 on a DELETE only with a non-nil body
		// (http.NoBody) and TransferEncoding "identity".
		req.TransferEncoding = []string{"identity"}
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := s.ts.Client().Do(req)
	require.NoError(s.t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(s.t, err)
	return res, b
}

// get sends a GET and decodes a 200 answer into v.
func (s *sim) get(path string, v any) {
	s.t.Helper()
	res, body := s.do(http.MethodGet, path, "")
	require.Equal(s.t, http.StatusOK, res.StatusCode, string(body))
	require.NoError(s.t, json.Unmarshal(body, v))
}

type envelope struct {
	Code        any    `json:"code"`
	Description string `json:"description"`
	Data        []any  `json:"data"`
	Source      string `json:"source"`
}

// requireError checks the status and the error envelope, code included with
// its JSON type (float64 for a number, string for a string).
func requireError(t *testing.T, res *http.Response, body []byte, status int, code any) envelope {
	t.Helper()
	require.Equal(t, status, res.StatusCode, string(body))
	var e envelope
	require.NoError(t, json.Unmarshal(body, &e), string(body))
	require.Equal(t, code, e.Code, string(body))
	require.Equal(t, "PartnerFD", e.Source)
	require.NotNil(t, e.Data)
	return e
}

type collection struct {
	TotalCount int               `json:"totalCount"`
	Items      []json.RawMessage `json:"items"`
	Links      struct {
		Self *link `json:"self"`
		Next *link `json:"next"`
	} `json:"links"`
	Attributes struct {
		ObjectType string `json:"objectType"`
	} `json:"attributes"`
}

type link struct {
	URI     string `json:"uri"`
	Method  string `json:"method"`
	Headers []struct {
		Key   string `json:"key"`
		Value string `json:"value"`
	} `json:"headers"`
}

type orderJSON struct {
	ID           string `json:"id"`
	Status       string `json:"status"`
	CreationDate string `json:"creationDate"`
	BillingCycle string `json:"billingCycle"`
}

func customerPath(id string) string { return "/v1/customers/" + id }
func orderPath(customerID, orderID string) string {
	return "/v1/customers/" + customerID + "/orders/" + orderID
}
func cancelBody(orderID string) string { return `{"id":"` + orderID + `","status":"cancelled"}` }

// ciCustomer is a customer with the given orders (ids o1, o2, … unless set).
func ciCustomer(id string, age time.Duration, orders ...SeedOrder) SeedCustomer {
	for i := range orders {
		if orders[i].ID == "" {
			orders[i].ID = "o" + string(rune('1'+i))
		}
	}
	return SeedCustomer{ID: id, Domain: id + ".onmicrosoft.com", CompanyName: "Company " + id, CreatedAt: t0.Add(-age), Orders: orders}
}
