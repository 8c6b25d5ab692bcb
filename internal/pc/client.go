package pc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// Config configures a Client.
type Config struct {
	Cloud         string       // "public" (default) | "china" | "usgov"
	BaseURL       string       // override of the cloud's API root
	Authority     string       // override of the cloud's login authority
	TenantID      string       // partner tenant id (token path segment)
	ClientID      string       //
	ClientSecret  string       // never logged
	PageSize      int          // customers per page, default 40
	HTTPClient    *http.Client // default: one with a 60 s timeout that follows no redirects
	Limiter       Limiter      // optional; nil = no client-side cap
	Application   string       // MS-PartnerCenter-Application, default "tipreaper"
	Logger        *slog.Logger // debug line per attempt; default: discard
	MaxRetries    int          // 5xx / network / timeout retries; 0 = default 3, < 0 = none
	Max429Retries int          // 429 retries; 0 = default 6, < 0 = none

	// MaxRetryWait is the longest wait before one retry (default 2m). A
	// Retry-After beyond it ends the call at once with the answer (a 429 stays
	// IsThrottled): a server asking for days is not obeyed by sleeping days.
	// The token endpoint is held to the same bound.
	MaxRetryWait time.Duration
	// MaxCallTime bounds one logical call with its retries (default 5m): no
	// wait is started that would end beyond it; the last answer is returned
	// instead. The attempt in flight is bounded by the HTTP client's timeout.
	MaxCallTime time.Duration
	// MaxListed bounds a listing (default 1,000, beyond the 75 customers of a
	// Tip account): more items or more pages is an error (ErrListingTooLong),
	// never a partial list. The activity log may hold up to 100 × MaxListed
	// records, in at most MaxListed pages.
	MaxListed int

	// ClientCertificate and ClientKey (PEM; RSA) replace ClientSecret with
	// certificate credentials: each token request carries a client assertion
	// signed with the key and naming the certificate by its x5t thumbprint.
	ClientCertificate []byte
	ClientKey         []byte // never logged
	// RefreshToken switches to App+User credentials: the refresh-token grant
	// with ClientID and ClientSecret. Partner Center rotates refresh tokens;
	// the client uses the newest and hands each new one to OnRefreshToken so
	// the caller can keep it (an error there is logged, the call goes on).
	RefreshToken   string // never logged
	OnRefreshToken func(ctx context.Context, newToken string) error

	// Observe, when set, is called once per HTTP attempt (API and token
	// endpoint alike) after its answer is read or its transport failed. It
	// is called from the calling goroutine, concurrently for concurrent
	// calls, and must be quick: the ops metrics count requests with it.
	Observe func(RequestInfo)
}

// Limiter is what the client needs of a rate limiter (ratelimit.Window
// implements it).
type Limiter interface {
	// Acquire blocks until a request may be sent; release() after the response arrives.
	Acquire(ctx context.Context) (release func(), err error)
	// Throttled reports a 429 that asked to wait retryAfter.
	Throttled(retryAfter time.Duration)
}

// Stats counts what the client did; all counters only grow.
type Stats struct {
	Requests     int64 // API HTTP attempts sent (token requests not included)
	Retries      int64 // attempts that repeated an earlier one (5xx, network, 429, 401 refresh)
	Throttled    int64 // 429 answers
	TokenFetches int64 // token endpoint requests
}

type cloud struct{ apiRoot, authority, resource string }

// The contract's table. usgov uses the public API root and resource; only
// its login authority differs.
var clouds = map[string]cloud{
	"public": {"https://api.partnercenter.microsoft.com", "https://login.microsoftonline.com", "https://api.partnercenter.microsoft.com"},
	"china":  {"https://partner.partnercenterapi.microsoftonline.cn", "https://login.chinacloudapi.cn", "https://partner.partnercenterapi.microsoftonline.cn"},
	"usgov":  {"https://api.partnercenter.microsoft.com", "https://login.microsoftonline.us", "https://api.partnercenter.microsoft.com"},
}

const (
	defaultPageSize      = 40
	defaultMaxRetries    = 3
	defaultMax429Retries = 6
	defaultMaxRetryWait  = 2 * time.Minute
	defaultMaxCallTime   = 5 * time.Minute
	defaultMaxListed     = 1000
	defaultApplication   = "tipreaper"
	defaultHTTPTimeout   = 60 * time.Second
	maxBodyBytes         = 32 << 20 // a customer page is a few kB; more is a broken server
)

// Client is a Partner Center client for one partner tenant. It is safe for
// concurrent use.
type Client struct {
	root        *url.URL // API root, no trailing slash
	tokenURL    string
	resource    string
	clientID    string
	secret      string
	pageSize    int
	http        *http.Client
	limiter     Limiter
	application string
	log         *slog.Logger
	maxRetries  int
	max429      int
	observer    func(RequestInfo)
	cert        *certCredential
	onRefresh   func(context.Context, string) error

	// Waits between attempts; tests in this package shorten them.
	retryDelays  []time.Duration // after the 1st, 2nd, 3rd… 5xx / network failure
	throttleBase time.Duration   // first exponential step when a 429 gives no usable Retry-After
	throttleMax  time.Duration
	maxListed    int           // items and pages per listing
	maxCallTime  time.Duration // one logical call with its retries

	tokens tokenCache
	clock  clockWatch // Date headers of the answers (clock.go)

	requests, retries, throttled, tokenFetches atomic.Int64
}

// New validates cfg and returns a client. API and login URLs must be https,
// except for loopback hosts (tests, a local simulator).
func New(cfg Config) (*Client, error) {
	name := strings.ToLower(strings.TrimSpace(cfg.Cloud))
	if name == "" {
		name = "public"
	}
	cl, ok := clouds[name]
	if !ok {
		return nil, fmt.Errorf("partner center: unknown cloud %q (want public, china or usgov)", cfg.Cloud)
	}
	if strings.TrimSpace(cfg.TenantID) == "" {
		return nil, errors.New("partner center: tenant id is required")
	}
	apiRoot := cl.apiRoot
	if cfg.BaseURL != "" {
		apiRoot = cfg.BaseURL
	}
	root, err := checkURL("base URL", apiRoot)
	if err != nil {
		return nil, err
	}
	authority := cl.authority
	if cfg.Authority != "" {
		authority = cfg.Authority
	}
	auth, err := checkURL("authority", authority)
	if err != nil {
		return nil, err
	}

	c := &Client{
		root:         root,
		tokenURL:     auth.String() + "/" + url.PathEscape(strings.TrimSpace(cfg.TenantID)) + "/oauth2/token",
		resource:     cl.resource,
		clientID:     cfg.ClientID,
		secret:       cfg.ClientSecret,
		pageSize:     cfg.PageSize,
		http:         cfg.HTTPClient,
		limiter:      cfg.Limiter,
		application:  cfg.Application,
		log:          cfg.Logger,
		maxRetries:   retriesOrDefault(cfg.MaxRetries, defaultMaxRetries),
		max429:       retriesOrDefault(cfg.Max429Retries, defaultMax429Retries),
		observer:     cfg.Observe,
		retryDelays:  []time.Duration{500 * time.Millisecond, 1500 * time.Millisecond, 3500 * time.Millisecond},
		throttleBase: time.Second,
		throttleMax:  durationOrDefault(cfg.MaxRetryWait, defaultMaxRetryWait),
		maxCallTime:  durationOrDefault(cfg.MaxCallTime, defaultMaxCallTime),
		maxListed:    cfg.MaxListed,
	}
	if c.maxListed <= 0 {
		c.maxListed = defaultMaxListed
	}
	c.tokens.refresh = cfg.RefreshToken
	c.onRefresh = cfg.OnRefreshToken
	if len(cfg.ClientCertificate) > 0 || len(cfg.ClientKey) > 0 {
		if c.cert, err = parseCertCredential(cfg.ClientCertificate, cfg.ClientKey); err != nil {
			return nil, fmt.Errorf("partner center: %w", err)
		}
	}
	if c.pageSize <= 0 {
		c.pageSize = defaultPageSize
	}
	if c.http == nil {
		// Keep as many idle connections as a pass has customers in flight:
		// the default of 2 per host makes every busy pass reopen TLS sessions.
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 64
		c.http = &http.Client{
			Transport: tr,
			Timeout:   defaultHTTPTimeout,
			// The API does not redirect; following one would resend a DELETE
			// somewhere we did not choose.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if c.application == "" {
		c.application = defaultApplication
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

func durationOrDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

func retriesOrDefault(n, def int) int {
	switch {
	case n == 0:
		return def
	case n < 0:
		return 0
	}
	return n
}

// checkURL parses an API root or login authority: absolute, https (http only
// for a loopback host, so a token or secret never crosses a network in the
// clear), no query or fragment. The result has no trailing slash.
func checkURL(what, raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return nil, fmt.Errorf("partner center: %s %q: %w", what, raw, err)
	}
	if u.Host == "" || u.Opaque != "" {
		return nil, fmt.Errorf("partner center: %s %q is not an absolute URL", what, raw)
	}
	if u.User != nil {
		return nil, fmt.Errorf("partner center: %s must not carry credentials", what)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("partner center: %s %q must not have a query or fragment", what, raw)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopback(u.Hostname()) {
			return nil, fmt.Errorf("partner center: %s %q: plain http is allowed only for loopback hosts (127.0.0.0/8, ::1, localhost); use https", what, raw)
		}
	default:
		return nil, fmt.Errorf("partner center: %s %q: scheme must be https", what, raw)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Stats returns the client's counters.
func (c *Client) Stats() Stats {
	return Stats{
		Requests:     c.requests.Load(),
		Retries:      c.retries.Load(),
		Throttled:    c.throttled.Load(),
		TokenFetches: c.tokenFetches.Load(),
	}
}

// redact removes the client secret and any access token of this client from
// text that came from a server (error descriptions), in case it echoes them.
func (c *Client) redact(s string) string {
	if s == "" {
		return s
	}
	for _, secret := range c.secrets() {
		if len(secret) >= 4 {
			s = strings.ReplaceAll(s, secret, "[REDACTED]")
			if esc := url.QueryEscape(secret); esc != secret {
				s = strings.ReplaceAll(s, esc, "[REDACTED]")
			}
		}
	}
	return s
}
