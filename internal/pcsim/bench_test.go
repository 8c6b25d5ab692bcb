package pcsim

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

// BenchmarkListCustomers lists a full sandbox (75 customers, two pages of 40)
// over HTTP, following next links as a client does.
func BenchmarkListCustomers(b *testing.B) {
	srv := New(Config{})
	for i := range SandboxLimit {
		c := SeedCustomer{Domain: fmt.Sprintf("c%d.onmicrosoft.com", i), Orders: []SeedOrder{{Type: TypeSoftware}}}
		if _, err := srv.AddCustomer(c); err != nil {
			b.Fatal(err)
		}
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	client := ts.Client()

	res, err := client.PostForm(ts.URL+"/t/oauth2/token", url.Values{
		"grant_type": {"client_credentials"}, "client_id": {"bench"}, "resource": {pcResource},
	})
	if err != nil {
		b.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	err = json.NewDecoder(res.Body).Decode(&tok)
	res.Body.Close()
	if err != nil {
		b.Fatal(err)
	}

	get := func(uri string, hdr []string) collection {
		req, err := http.NewRequest(http.MethodGet, ts.URL+uri, nil)
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		req.Header.Set("Accept", "application/json")
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		res, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		if err != nil || res.StatusCode != http.StatusOK {
			b.Fatalf("GET %s: %d %v %s", uri, res.StatusCode, err, body)
		}
		var c collection
		if err := json.Unmarshal(body, &c); err != nil {
			b.Fatal(err)
		}
		return c
	}

	b.ReportAllocs()
	for b.Loop() {
		n := 0
		c := get("/v1/customers?size=40", nil)
		for {
			n += len(c.Items)
			if c.Links.Next == nil {
				break
			}
			var hdr []string
			for _, h := range c.Links.Next.Headers {
				hdr = append(hdr, h.Key, h.Value)
			}
			c = get(c.Links.Next.URI, hdr)
		}
		if n != SandboxLimit {
			b.Fatalf("listed %d customers, want %d", n, SandboxLimit)
		}
	}
}
