package pc

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func mustURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	require.NoError(t, err)
	return u
}

func TestNextLinksResolveWithAndWithoutTheV1Prefix(t *testing.T) {
	root := mustURL(t, "https://api.partnercenter.microsoft.com")
	proxied := mustURL(t, "https://proxy.example.com/pc")
	tests := []struct {
		name    string
		root    *url.URL
		uri     string
		want    string
		wantErr string
	}{
		{"a link with /v1 is kept under the root", root, "/v1/customers?size=40&seekOperation=Next",
			"https://api.partnercenter.microsoft.com/v1/customers?size=40&seekOperation=Next", ""},
		{"a link without /v1 gets it", root, "/customers?size=40&seekOperation=Next",
			"https://api.partnercenter.microsoft.com/v1/customers?size=40&seekOperation=Next", ""},
		{"a link without a leading slash is rooted", root, "customers?seekOperation=Next",
			"https://api.partnercenter.microsoft.com/v1/customers?seekOperation=Next", ""},
		{"a link to /v1 itself is not doubled", root, "/v1?x=1",
			"https://api.partnercenter.microsoft.com/v1?x=1", ""},
		{"a path starting /v10 is not mistaken for /v1", root, "/v10/things",
			"https://api.partnercenter.microsoft.com/v1/v10/things", ""},
		{"a root with a path prefix keeps it", proxied, "/customers?seekOperation=Next",
			"https://proxy.example.com/pc/v1/customers?seekOperation=Next", ""},
		{"an absolute link on the same host is used as is", root,
			"https://api.partnercenter.microsoft.com/v1/customers?seekOperation=Next",
			"https://api.partnercenter.microsoft.com/v1/customers?seekOperation=Next", ""},
		{"an absolute link to another host is refused", root, "https://evil.example.com/v1/customers", "", "leaves the API host"},
		{"a scheme-relative link to another host is refused", root, "//evil.example.com/v1/customers", "", "leaves the API host"},
		{"an absolute link downgrading to http is refused", root, "http://api.partnercenter.microsoft.com/v1/customers", "", "leaves the API host"},
		{"an empty link is refused", root, "  ", "", "without uri"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := resolveLink(tt.root, tt.uri)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestErrorBodiesDecodeBothCodeFormsAndTheThrottleBody(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		wantCode string
		wantDesc string
	}{
		{"a numeric code becomes a string", `{"code": 20002, "description": "No relationship between caller and account.", "data": [], "source": "PartnerFD"}`,
			"20002", "No relationship between caller and account."},
		{"a string code is kept", `{"code": "800061", "description": "order cannot be cancelled"}`, "800061", "order cannot be cancelled"},
		{"the throttle body gives its message", `{"statusCode": 429, "message": "Rate limit is exceeded. Try again in 57 seconds."}`,
			"", "Rate limit is exceeded. Try again in 57 seconds."},
		{"an empty body gives nothing", ``, "", ""},
		{"an HTML page gives a short excerpt", "<html>\n<body>Bad Gateway</body></html>", "", "<html> <body>Bad Gateway</body></html>"},
		{"a JSON body of another shape gives an excerpt", `{"error": "x"}`, "", `{"error": "x"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, desc := decodeErrorBody([]byte(tt.body))
			require.Equal(t, tt.wantCode, code)
			require.Equal(t, tt.wantDesc, desc)
		})
	}
}

func TestAnExcerptIsBounded(t *testing.T) {
	_, desc := decodeErrorBody([]byte(strings.Repeat("x", 5000)))
	require.LessOrEqual(t, len([]rune(desc)), 201)
}

func TestErrorKindsFollowStatusAndCode(t *testing.T) {
	tests := []struct {
		name                                               string
		err                                                error
		notFound, gone, throttled, retryable, unauthorized bool
	}{
		{"404 is not found and already gone", &Error{StatusCode: 404}, true, true, false, false, false},
		{"403 with 20002 is already gone, not unauthorized", &Error{StatusCode: 403, Code: "20002"}, false, true, false, false, false},
		{"403 with another code is unauthorized, not gone", &Error{StatusCode: 403, Code: "900150"}, false, false, false, false, true},
		{"401 is unauthorized", &Error{StatusCode: 401}, false, false, false, false, true},
		{"429 is throttled, not retryable", &Error{StatusCode: 429}, false, false, true, false, false},
		{"503 is retryable", &Error{StatusCode: 503}, false, false, false, true, false},
		{"a network failure is retryable", &Error{Err: errors.New("connection reset")}, false, false, false, true, false},
		{"a refused certificate is not retryable", &Error{Err: errNotRetryable}, false, false, false, false, false},
		{"400 is nothing of these", &Error{StatusCode: 400, Code: "800061"}, false, false, false, false, false},
		{"a wrapped *Error is still recognised", errors.Join(errors.New("ctx"), &Error{StatusCode: 404}), true, true, false, false, false},
		{"another error is nothing of these", errors.New("x"), false, false, false, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.notFound, IsNotFound(tt.err), "IsNotFound")
			require.Equal(t, tt.gone, IsAlreadyGone(tt.err), "IsAlreadyGone")
			require.Equal(t, tt.throttled, IsThrottled(tt.err), "IsThrottled")
			require.Equal(t, tt.retryable, IsRetryable(tt.err), "IsRetryable")
			require.Equal(t, tt.unauthorized, IsUnauthorized(tt.err), "IsUnauthorized")
		})
	}
	require.Equal(t, "20002", ErrorCode(&Error{StatusCode: 403, Code: "20002"}))
	require.Equal(t, "", ErrorCode(errors.New("x")))
	require.Equal(t, 403, StatusCode(&Error{StatusCode: 403}))
	require.Equal(t, 0, StatusCode(errors.New("x")))
}

func jwt(t *testing.T, claims string) string {
	t.Helper()
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." + enc.EncodeToString([]byte(claims)) + ".c2lnbmF0dXJl"
}

func TestTheTenantIDIsReadFromTheJWTPayload(t *testing.T) {
	tests := []struct {
		name    string
		token   string
		want    string
		wantErr string
	}{
		{"a token with tid gives it", jwt(t, `{"tid":"0f3a","aud":"x"}`), "0f3a", ""},
		{"a padded payload is accepted", "e30." + base64.URLEncoding.EncodeToString([]byte(`{"tid":"abc"}`)) + ".c2ln", "abc", ""},
		{"a token without tid is refused", jwt(t, `{"aud":"x"}`), "", "no tid"},
		{"an empty tid is refused", jwt(t, `{"tid":""}`), "", "no tid"},
		{"a numeric tid is refused", jwt(t, `{"tid":5}`), "", "no tid"},
		{"an opaque token is not a JWT", "opaque-token-value", "", "not a JWT"},
		{"a payload that is not base64url is refused", "a.!!!.c", "", "not base64url"},
		{"a payload that is not JSON is refused", "a." + base64.RawURLEncoding.EncodeToString([]byte("nope")) + ".c", "", "not JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := jwtTenantID(tt.token)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				require.NotContains(t, err.Error(), tt.token, "the token leaked into the error")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestOrderIDsAreDistinctNestedAndInFirstSeenOrder(t *testing.T) {
	ref := func(id string) ReferenceOrder { return ReferenceOrder{ID: id} }
	es := []Entitlement{
		{ReferenceOrder: ref("B"), IncludedEntitlements: []Entitlement{
			{ReferenceOrder: ref("C")},
			{ReferenceOrder: ref("B")},
		}},
		{ReferenceOrder: ref("A")},
		{ReferenceOrder: ref("C"), IncludedEntitlements: []Entitlement{{ReferenceOrder: ref("D"), IncludedEntitlements: []Entitlement{{ReferenceOrder: ref("E")}}}}},
		{ReferenceOrder: ref("")},
	}
	require.Equal(t, []string{"B", "C", "A", "D", "E"}, OrderIDs(es))
	require.Empty(t, OrderIDs(nil))
}

func TestNewChecksCloudsAndURLs(t *testing.T) {
	tests := []struct {
		name     string
		cfg      Config
		wantErr  string
		tokenURL string
		root     string
		resource string
	}{
		{"the default cloud is public", Config{TenantID: "t1"}, "",
			"https://login.microsoftonline.com/t1/oauth2/token", "https://api.partnercenter.microsoft.com", "https://api.partnercenter.microsoft.com"},
		{"china has its own root, authority and resource", Config{Cloud: "china", TenantID: "t1"}, "",
			"https://login.chinacloudapi.cn/t1/oauth2/token", "https://partner.partnercenterapi.microsoftonline.cn", "https://partner.partnercenterapi.microsoftonline.cn"},
		{"usgov has its own authority and the public resource", Config{Cloud: "usgov", TenantID: "t1"}, "",
			"https://login.microsoftonline.us/t1/oauth2/token", "https://api.partnercenter.microsoft.com", "https://api.partnercenter.microsoft.com"},
		{"overrides replace root and authority but not the resource", Config{TenantID: "t1", BaseURL: "https://proxy.example.com/pc/", Authority: "https://login.example.com"}, "",
			"https://login.example.com/t1/oauth2/token", "https://proxy.example.com/pc", "https://api.partnercenter.microsoft.com"},
		{"http to 127.0.0.1 is allowed", Config{TenantID: "t", BaseURL: "http://127.0.0.1:8080", Authority: "http://127.0.0.1:8080"}, "",
			"http://127.0.0.1:8080/t/oauth2/token", "http://127.0.0.1:8080", "https://api.partnercenter.microsoft.com"},
		{"http to anywhere in 127/8 is allowed", Config{TenantID: "t", BaseURL: "http://127.3.4.5"}, "", "", "http://127.3.4.5", ""},
		{"http to ::1 is allowed", Config{TenantID: "t", BaseURL: "http://[::1]:99"}, "", "", "http://[::1]:99", ""},
		{"http to localhost is allowed", Config{TenantID: "t", BaseURL: "http://localhost:99"}, "", "", "http://localhost:99", ""},
		{"http to another host is refused", Config{TenantID: "t", BaseURL: "http://api.partnercenter.microsoft.com"}, "plain http is allowed only for loopback", "", "", ""},
		{"http to a private address is refused", Config{TenantID: "t", BaseURL: "http://10.0.0.1"}, "plain http is allowed only for loopback", "", "", ""},
		{"an http authority off loopback is refused", Config{TenantID: "t", Authority: "http://login.example.com"}, "plain http is allowed only for loopback", "", "", ""},
		{"a host merely named like localhost is refused", Config{TenantID: "t", BaseURL: "http://localhost.example.com"}, "plain http is allowed only for loopback", "", "", ""},
		{"another scheme is refused", Config{TenantID: "t", BaseURL: "ftp://127.0.0.1"}, "scheme must be https", "", "", ""},
		{"a relative URL is refused", Config{TenantID: "t", BaseURL: "api.partnercenter.microsoft.com"}, "not an absolute URL", "", "", ""},
		{"credentials in the URL are refused", Config{TenantID: "t", BaseURL: "https://u:p@x.example.com"}, "must not carry credentials", "", "", ""},
		{"an unknown cloud is refused", Config{Cloud: "mars", TenantID: "t"}, `unknown cloud "mars"`, "", "", ""},
		{"a missing tenant is refused", Config{}, "tenant id is required", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.cfg)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				require.Nil(t, c)
				return
			}
			require.NoError(t, err)
			if tt.tokenURL != "" {
				require.Equal(t, tt.tokenURL, c.tokenURL)
			}
			require.Equal(t, tt.root, c.root.String())
			if tt.resource != "" {
				require.Equal(t, tt.resource, c.resource)
			}
		})
	}
}

func TestRetryAfterIsReadFromTheHeaderOrTheBody(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		header string
		body   string
		want   time.Duration
		ok     bool
	}{
		{"seconds in the header", "57", "", 57 * time.Second, true},
		{"an HTTP date in the header", now.Add(30 * time.Second).Format(http.TimeFormat), "", 30 * time.Second, true},
		{"the header wins over the body", "3", "Try again in 57 seconds.", 3 * time.Second, true},
		{"the body when the header is absent", "", `{"statusCode":429,"message":"Rate limit is exceeded. Try again in 57 seconds."}`, 57 * time.Second, true},
		{"the body when the header is garbage", "soon", "try again in 1 second", time.Second, true},
		{"nothing when neither says", "", `{"statusCode":429}`, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.header != "" {
				h.Set("Retry-After", tt.header)
			}
			got, ok := retryAfter(h, []byte(tt.body), now)
			require.Equal(t, tt.ok, ok)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestTokenExpiryAcceptsStringsNumbersAndExpiresOn(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	tests := []struct {
		name string
		body string
		want time.Time
	}{
		{"expires_in as a string (v1)", `{"expires_in":"3599","expires_on":"1"}`, start.Add(3599 * time.Second)},
		{"expires_in as a number (v2)", `{"expires_in":3599}`, start.Add(3599 * time.Second)},
		{"expires_on as a string when expires_in is absent", `{"expires_on":"1700003600"}`, time.Unix(1_700_003_600, 0)},
		{"expires_on as a number", `{"expires_on":1700003600}`, time.Unix(1_700_003_600, 0)},
		{"no expiry at all is short-lived", `{}`, start.Add(unknownLifetime)},
		{"a garbage expiry is short-lived", `{"expires_in":"soon"}`, start.Add(unknownLifetime)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ans tokenAnswer
			require.NoError(t, json.Unmarshal([]byte(tt.body), &ans))
			require.True(t, tt.want.Equal(tokenExpiry(ans, start)), "got %v", tokenExpiry(ans, start))
		})
	}
}

func TestOrdersDecodeDotNetTimestampsAndNumericLineItemIDs(t *testing.T) {
	var o Order
	require.NoError(t, json.Unmarshal([]byte(`{"id":"o1","status":"pending","creationDate":"2026-03-01T10:20:30.1234567Z",
		"lineItems":[{"lineItemNumber":1,"offerId":"X","quantity":2}]}`), &o))
	require.Equal(t, time.Date(2026, 3, 1, 10, 20, 30, 123456700, time.UTC), o.CreationDate)
	require.Equal(t, []LineItem{{LineItemNumber: 1, OfferID: "X", Quantity: 2}}, o.LineItems)

	var noZone Order
	require.NoError(t, json.Unmarshal([]byte(`{"id":"o1","creationDate":"2026-03-01T10:20:30"}`), &noZone))
	require.Equal(t, time.Date(2026, 3, 1, 10, 20, 30, 0, time.UTC), noZone.CreationDate)

	var bad Order
	require.Error(t, json.Unmarshal([]byte(`{"id":"o1","creationDate":"yesterday"}`), &bad))

	var e Entitlement
	require.NoError(t, json.Unmarshal([]byte(`{"referenceOrder":{"id":"o1","lineItemId":0}}`), &e))
	require.Equal(t, "0", e.ReferenceOrder.LineItemID)
}

func TestTheSecretIsRedactedFromServerText(t *testing.T) {
	c, err := New(Config{TenantID: "t", ClientSecret: "s3cr3t+/="})
	require.NoError(t, err)
	require.Equal(t, "bad [REDACTED] and [REDACTED]", c.redact("bad s3cr3t+/= and "+url.QueryEscape("s3cr3t+/=")))
}

func TestBackoffDelaysFollowTheContract(t *testing.T) {
	c, err := New(Config{TenantID: "t"})
	require.NoError(t, err)
	for n, base := range []time.Duration{500 * time.Millisecond, 1500 * time.Millisecond, 3500 * time.Millisecond, 3500 * time.Millisecond} {
		d := c.retryDelay(n)
		require.GreaterOrEqual(t, d, base)
		require.LessOrEqual(t, d, base+base/4)
	}
	// A 429 wait is never shorter than Retry-After, and grows while 429s go on.
	require.GreaterOrEqual(t, c.throttleWait(0, 57*time.Second), 57*time.Second)
	require.GreaterOrEqual(t, c.throttleWait(4, 2*time.Second), 16*time.Second)
	require.LessOrEqual(t, c.throttleWait(40, 0), c.throttleMax+2*time.Second)
}

func TestAServerThatNeverEndsTheListingIsCutOff(t *testing.T) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/oauth2/") {
			_, _ = io.WriteString(w, `{"token_type":"Bearer","expires_in":"3600","access_token":"t"}`)
			return
		}
		// Every page has a new continuation token, so only the page cap stops it.
		fmt.Fprintf(w, `{"items":[{"id":"a"}],"links":{"next":{"uri":"/customers?seekOperation=Next",
			"headers":[{"key":"MS-ContinuationToken","value":"t%d"}]}}}`, calls.Add(1))
	}))
	t.Cleanup(srv.Close)
	c, err := New(Config{BaseURL: srv.URL, Authority: srv.URL, TenantID: "t", HTTPClient: srv.Client(), MaxListed: 25})
	require.NoError(t, err)

	got, err := c.ListCustomers(context.Background())
	require.ErrorIs(t, err, ErrListingTooLong)
	require.ErrorContains(t, err, "more than 25 pages")
	require.Nil(t, got)
	require.Equal(t, int64(25), calls.Load())
}
