package pc

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// The fuzz targets feed every decoder of a server's answer with arbitrary
// bytes. Beyond "no panic", each checks what its caller relies on. Seeds are
// in testdata/fuzz/<Target>; .ci/fuzz runs each target for a few seconds.

var fuzzRoot = mustParseRoot("https://api.partnercenter.microsoft.com")

func mustParseRoot(raw string) *url.URL {
	u, err := checkURL("base URL", raw)
	if err != nil {
		panic(err)
	}
	return u
}

// checkPage runs decodePage and the link resolution after it.
func checkPage[T any](t *testing.T, body []byte, maxItems int, check func(T) error) []T {
	items, next, err := decodePage(body, maxItems, check)
	if err != nil {
		if items != nil || next != nil {
			t.Fatalf("an undecodable page returned items or a link: %v", err)
		}
		return nil
	}
	if len(items) > maxItems {
		t.Fatalf("%d items decoded past the bound %d", len(items), maxItems)
	}
	if check != nil {
		for i, it := range items {
			if err := check(it); err != nil {
				t.Fatalf("item %d passed although its check fails: %v", i, err)
			}
		}
	}
	if next != nil {
		u, err := resolveLink(fuzzRoot, next.URI)
		if err == nil && !strings.HasPrefix(u, fuzzRoot.String()+"/") {
			t.Fatalf("next link %q resolved off the API root: %q", next.URI, u)
		}
	}
	return items
}

func FuzzCustomersPage(f *testing.F) {
	f.Add([]byte(`{"totalCount":1,"items":[{"id":"8f1c3c52-1e35-4b8a-9d57-7b6f1d8d1a01","companyProfile":{"domain":"ci-1.onmicrosoft.com","companyName":"CI 1"}}],"links":{"next":{"uri":"/customers?size=40&seekOperation=Next","method":"GET","headers":[{"key":"MS-ContinuationToken","value":"abc"}]}}}`))
	f.Add([]byte(`{"items":[],"links":{}}`))
	f.Add([]byte(`{"items":null}`))
	f.Add([]byte(`{"items":[{"companyProfile":{}}]}`))
	f.Add([]byte(`{"items":[{"id":"a"}],"links":{"next":{"uri":"https://evil.example/v1/customers"}}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, cu := range checkPage(t, body, 1000, checkCustomer) {
			if cu.ID == "" {
				t.Fatal("a customer without id was accepted")
			}
		}
	})
}

func FuzzOrdersPage(f *testing.F) {
	f.Add([]byte(`{"items":[{"id":"o1","status":"pending","creationDate":"2026-01-02T03:04:05.123Z","lineItems":[{"lineItemNumber":0,"offerId":"x","quantity":1}]}]}`))
	f.Add([]byte(`{"items":[{"id":"o1","creationDate":"/Date(1700000000000)/"}]}`))
	f.Add([]byte(`{"items":[{"status":"pending"}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, o := range checkPage(t, body, 1000, checkOrder) {
			if o.ID == "" {
				t.Fatal("an order without id was accepted")
			}
		}
	})
}

func FuzzOrder(f *testing.F) {
	f.Add([]byte(`{"id":"o1","alternateId":"a1","referenceCustomerId":"c1","billingCycle":"one_time","status":"cancelled","creationDate":"2026-01-02T03:04:05Z"}`))
	f.Add([]byte(`{"id":"o1","creationDate":"last week"}`))
	f.Add([]byte(`{"id":12}`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, body []byte) {
		o, err := decodeOrder(body)
		if err == nil && o.ID == "" {
			t.Fatal("an order without id was accepted")
		}
	})
}

func FuzzEntitlementsPage(f *testing.F) {
	f.Add([]byte(`{"items":[{"referenceOrder":{"id":"o1","lineItemId":0},"productId":"p","includedEntitlements":[{"referenceOrder":{"id":"o2"}}]}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		es := checkPage[Entitlement](t, body, 1000, nil)
		for _, id := range OrderIDs(es) {
			if id == "" {
				t.Fatal("OrderIDs returned an empty id")
			}
		}
	})
}

func FuzzActivityPage(f *testing.F) {
	f.Add([]byte(`{"items":[{"id":"r1","customerId":"c1","customerName":"x","operationType":"add_customer","operationDate":"2026-01-02T03:04:05Z"}]}`))
	f.Add([]byte(`{"items":[{"operationType":"add_customer","operationDate":1700000000}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		checkPage[ActivityRecord](t, body, 100000, nil)
	})
}

func FuzzErrorBody(f *testing.F) {
	f.Add([]byte(`{"code":20002,"description":"No relationship between caller and account.","data":[],"source":"PartnerFD"}`), "")
	f.Add([]byte(`{"code":"800060","description":"order is in progress"}`), "")
	f.Add([]byte(`{"statusCode":429,"message":"Rate limit is exceeded. Try again in 57 seconds."}`), "57")
	f.Add([]byte(`<html>bad gateway</html>`), "Wed, 21 Oct 2015 07:28:00 GMT")
	f.Add([]byte(`Try again in 1e999 seconds`), "1e308")
	f.Fuzz(func(t *testing.T, body []byte, header string) {
		code, desc := decodeErrorBody(body)
		if !utf8.ValidString(code) && utf8.Valid(body) {
			t.Fatalf("code %q is not UTF-8", code)
		}
		_ = desc
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		d, ok := retryAfter(http.Header{"Retry-After": {header}}, body, now)
		if d < 0 {
			t.Fatalf("negative Retry-After %v (ok %v) from header %q", d, ok, header)
		}
		if !ok && d != 0 {
			t.Fatalf("Retry-After %v without ok", d)
		}
	})
}

func FuzzTokenAnswer(f *testing.F) {
	f.Add([]byte(`{"token_type":"Bearer","expires_in":"3600","expires_on":"1700003600","resource":"https://api.partnercenter.microsoft.com","access_token":"eyJ0eXAiOiJKV1QifQ.eyJ0aWQiOiJ0In0.c2ln"}`))
	f.Add([]byte(`{"token_type":"Bearer","expires_in":3599,"access_token":"x"}`))
	f.Add([]byte(`{"token_type":"mac","access_token":"x"}`))
	f.Add([]byte(`{"access_token":"x","expires_in":"1e999"}`))
	f.Add([]byte(`{"access_token":"x","expires_on":"1/2/2026 3:04:05 PM +00:00"}`))
	f.Add([]byte(`{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided."}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		ans, err := decodeTokenAnswer(body)
		if err != nil {
			return
		}
		if ans.AccessToken == "" {
			t.Fatal("a token answer without access_token was accepted")
		}
		exp := tokenExpiry(ans, start)
		if s := rawScalar(ans.ExpiresIn); s != "" && exp.Before(start) && !strings.HasPrefix(s, "-") {
			if d, ok := secondsDuration(s); ok && d > 0 {
				t.Fatalf("expires_in %q gave an expiry %v before the request", s, exp)
			}
		}
		_, _ = jwtTenantID(ans.AccessToken)
	})
}

func FuzzJWTTenantID(f *testing.F) {
	f.Add("eyJ0eXAiOiJKV1QifQ.eyJ0aWQiOiIxMTExIn0.c2ln")
	f.Add("a.b.c")
	f.Add("..")
	f.Fuzz(func(t *testing.T, tok string) {
		tid, err := jwtTenantID(tok)
		if err == nil && tid == "" {
			t.Fatal("an empty tid was accepted")
		}
		if err != nil && len(tok) >= 8 && strings.Contains(err.Error(), tok) {
			t.Fatal("the error repeats the token")
		}
	})
}
