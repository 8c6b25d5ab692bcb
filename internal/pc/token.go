package pc

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	// refreshMargin: a token is renewed this long before it expires, so no
	// request leaves with a token that dies on the way (the SDK's margin).
	refreshMargin = 30 * time.Second
	// unknownLifetime is assumed when the token answer gives no expiry:
	// short, so a token of unknown age is not kept for long.
	unknownLifetime = 5 * time.Minute
)

type tokenCache struct {
	mu       sync.Mutex
	token    string
	previous string // kept only so redact can still scrub it

	refresh    string   // the newest refresh token (App+User), "" for app-only
	oldRefresh []string // the last refresh tokens replaced, kept only so redact can scrub them
	expires    time.Time
	call       *tokenCall // the fetch in progress, shared by concurrent callers
}

type tokenCall struct {
	done            chan struct{}
	token           string
	err             error
	leaderCancelled bool // the fetch failed because its caller gave up, not the server
}

func (c *Client) secrets() []string {
	c.tokens.mu.Lock()
	defer c.tokens.mu.Unlock()
	return append([]string{c.secret, c.tokens.token, c.tokens.previous, c.tokens.refresh}, c.tokens.oldRefresh...)
}

// token returns a usable access token. stale, when not empty, is a token the
// API just refused with 401: a new one is fetched unless another caller has
// already replaced it.
func (c *Client) token(ctx context.Context, stale string) (string, error) {
	for {
		tc := &c.tokens
		tc.mu.Lock()
		fresh := tc.token != "" && time.Now().Before(tc.expires.Add(-refreshMargin))
		if fresh && (stale == "" || tc.token != stale) {
			tok := tc.token
			tc.mu.Unlock()
			return tok, nil
		}
		if call := tc.call; call != nil {
			tc.mu.Unlock()
			select {
			case <-call.done:
			case <-ctx.Done():
				return "", fmt.Errorf("fetch token: %w", ctx.Err())
			}
			if call.err != nil && call.leaderCancelled && ctx.Err() == nil {
				continue // the caller that fetched gave up; fetch for ourselves
			}
			return call.token, call.err
		}
		call := &tokenCall{done: make(chan struct{})}
		tc.call = call
		tc.mu.Unlock()

		tok, expires, err := c.fetchToken(ctx)

		tc.mu.Lock()
		tc.call = nil
		if err == nil {
			tc.previous, tc.token, tc.expires = tc.token, tok, expires
		}
		tc.mu.Unlock()
		call.token, call.err, call.leaderCancelled = tok, err, ctx.Err() != nil
		close(call.done)
		return tok, err
	}
}

// tokenAnswer is the token endpoint's answer; v1 sends numbers as strings.
type tokenAnswer struct {
	TokenType        string          `json:"token_type"`
	AccessToken      string          `json:"access_token"`
	ExpiresIn        json.RawMessage `json:"expires_in"`
	ExpiresOn        json.RawMessage `json:"expires_on"`
	RefreshToken     string          `json:"refresh_token"`
	Error            string          `json:"error"`
	ErrorDescription string          `json:"error_description"`
}

// fetchToken gets an app-only token (v1 client credentials), retrying 5xx,
// 429 and network failures like API calls.
func (c *Client) fetchToken(ctx context.Context) (string, time.Time, error) {
	const op = "fetch token"

	start := time.Now()
	cl := &call{op: op} // for the retry log lines
	for attempt := 0; ; attempt++ {
		c.tokenFetches.Add(1)
		// Built per attempt: a client assertion is single-use and short-lived,
		// and a refresh token may have rotated meanwhile.
		form, err := c.tokenForm()
		if err != nil {
			return "", time.Time{}, &Error{Op: op, Err: err}
		}
		tok, expires, err := c.fetchTokenOnce(ctx, op, form, attempt+1)
		if err == nil {
			return tok, expires, nil
		}
		if ctx.Err() != nil {
			return "", time.Time{}, fmt.Errorf("%s: %w", op, ctx.Err())
		}
		e, _ := asError(err)
		if e == nil || !(IsRetryable(e) || IsThrottled(e)) {
			return "", time.Time{}, err
		}
		if attempt >= c.maxRetries {
			return "", time.Time{}, c.giveUp(ctx, cl, e, attempt+1, "retries used up")
		}
		if e.RetryAfter > c.throttleMax {
			return "", time.Time{}, c.giveUp(ctx, cl, e, attempt+1,
				fmt.Sprintf("Retry-After %s is beyond the longest retry wait %s", e.RetryAfter, c.throttleMax))
		}
		delay := max(c.retryDelay(attempt), e.RetryAfter)
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < delay {
			return "", time.Time{}, c.giveUp(ctx, cl, e, attempt+1,
				fmt.Sprintf("a wait of %s would pass the caller's deadline", delay.Round(time.Millisecond)))
		}
		if time.Since(start)+delay > c.maxCallTime {
			return "", time.Time{}, c.giveUp(ctx, cl, e, attempt+1,
				fmt.Sprintf("a wait of %s would pass the call's time limit %s", delay.Round(time.Millisecond), c.maxCallTime))
		}
		c.log.InfoContext(ctx, "partner center call retrying", "op", op, "attempt", attempt+2,
			"wait_seconds", delay.Seconds(), "cause", c.cause(e))
		if err := sleep(ctx, delay); err != nil {
			return "", time.Time{}, fmt.Errorf("%s: %w", op, err)
		}
	}
}

func (c *Client) fetchTokenOnce(ctx context.Context, op, form string, attempt int) (string, time.Time, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.tokenURL, strings.NewReader(form))
	if err != nil {
		return "", time.Time{}, &Error{Op: op, Err: errors.New("build token request")}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")

	start := time.Now()
	resp, err := c.http.Do(req)
	ri := RequestInfo{Endpoint: EndpointToken, Method: http.MethodPost, Attempt: attempt}
	if err != nil {
		ri.Duration = time.Since(start)
		c.observe(ri)
		c.log.DebugContext(ctx, "partner center token request failed", "error", c.redact(err.Error()))
		return "", time.Time{}, &Error{Op: op, Err: c.safeTransportErr(err)}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	ri.Duration = time.Since(start)
	if err == nil {
		ri.StatusCode, ri.Throttled = resp.StatusCode, resp.StatusCode == http.StatusTooManyRequests
	}
	c.observe(ri)
	c.log.DebugContext(ctx, "partner center token request",
		"method", http.MethodPost, "status", resp.StatusCode, "ms", time.Since(start).Milliseconds())
	if err != nil {
		return "", time.Time{}, &Error{Op: op, StatusCode: resp.StatusCode, Err: c.safeTransportErr(err)}
	}

	var ans tokenAnswer
	decodeErr := json.Unmarshal(body, &ans)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e := &Error{Op: op, StatusCode: resp.StatusCode, CV: resp.Header.Get("MS-CV")}
		if decodeErr == nil && (ans.Error != "" || ans.ErrorDescription != "") {
			e.Code, e.Description = ans.Error, c.redact(ans.ErrorDescription)
		} else {
			e.Code, e.Description = decodeErrorBody(body)
			e.Description = c.redact(e.Description)
		}
		if resp.StatusCode == http.StatusTooManyRequests {
			e.RetryAfter, _ = retryAfter(resp.Header, body, time.Now())
		}
		return "", time.Time{}, e
	}
	ans, err = decodeTokenAnswer(body)
	if err != nil {
		return "", time.Time{}, &Error{Op: op, StatusCode: resp.StatusCode, Err: err}
	}
	c.rotate(ctx, ans.RefreshToken)
	return ans.AccessToken, tokenExpiry(ans, start), nil
}

// decodeTokenAnswer decodes a 2xx answer of the token endpoint. Its errors
// never quote the body, which holds the token.
func decodeTokenAnswer(body []byte) (tokenAnswer, error) {
	var ans tokenAnswer
	if err := json.Unmarshal(body, &ans); err != nil {
		return tokenAnswer{}, errors.New("undecodable token answer")
	}
	if ans.AccessToken == "" {
		return tokenAnswer{}, errors.New("token answer without access_token")
	}
	if ans.TokenType != "" && !strings.EqualFold(ans.TokenType, "Bearer") {
		return tokenAnswer{}, fmt.Errorf("token type %q is not Bearer", truncate(ans.TokenType, 40))
	}
	return ans, nil
}

// safeTransportErr keeps a transport error's kind (timeouts, cancellation)
// but guarantees its text holds no secret. url.Error carries only the URL
// (authority and tenant), never the form body; scrub anyway.
func (c *Client) safeTransportErr(err error) error {
	msg := err.Error()
	if clean := c.redact(msg); clean != msg {
		return &redactedError{msg: clean, err: err}
	}
	return err
}

type redactedError struct {
	msg string
	err error
}

func (r *redactedError) Error() string { return r.msg }

// Unwrap lets errors.Is see timeouts and cancellation; the wrapped error's
// own text is never printed through this type.
func (r *redactedError) Unwrap() error { return r.err }

// maxUnixSeconds bounds expires_on: year 9999, beyond which int64 nanoseconds overflow.
const maxUnixSeconds = 253402300799

// secondsDuration parses a count of seconds, as Retry-After and expires_in
// send it. NaN and negatives are refused; values too large for a Duration are
// clamped to the largest one instead of overflowing into the past.
func secondsDuration(s string) (time.Duration, bool) {
	secs, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || secs != secs || secs < 0 {
		return 0, false
	}
	if secs >= float64(math.MaxInt64)/float64(time.Second) {
		return time.Duration(math.MaxInt64), true
	}
	return time.Duration(secs * float64(time.Second)), true
}

// tokenExpiry reads expires_in (seconds from now) or, failing that,
// expires_on (Unix seconds, or a date), each a string or a number. The
// request start is used as "now": the server's clock started no earlier.
func tokenExpiry(ans tokenAnswer, start time.Time) time.Time {
	if s := rawScalar(ans.ExpiresIn); s != "" {
		if d, ok := secondsDuration(s); ok && d > 0 {
			return start.Add(d)
		}
	}
	if s := rawScalar(ans.ExpiresOn); s != "" {
		if secs, err := strconv.ParseFloat(s, 64); err == nil && secs > 0 && secs < maxUnixSeconds {
			return time.Unix(int64(secs), 0)
		}
		for _, layout := range []string{time.RFC3339, "1/2/2006 3:04:05 PM -07:00", "1/2/2006 3:04:05 PM Z07:00"} {
			if t, err := time.Parse(layout, s); err == nil {
				return t
			}
		}
	}
	return start.Add(unknownLifetime)
}

// TokenTenantID returns the `tid` claim of the current access token, read
// from the JWT payload without verification: it tells which tenant the
// credentials really belong to, so the caller can refuse to act on another.
func (c *Client) TokenTenantID(ctx context.Context) (string, error) {
	tok, err := c.token(ctx, "")
	if err != nil {
		return "", fmt.Errorf("token tenant id: %w", err)
	}
	return jwtTenantID(tok)
}

func jwtTenantID(tok string) (string, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return "", errors.New("token tenant id: the access token is not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return "", errors.New("token tenant id: the access token payload is not base64url")
	}
	var claims struct {
		TID json.RawMessage `json:"tid"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return "", errors.New("token tenant id: the access token payload is not JSON")
	}
	var tid string
	if len(bytes.TrimSpace(claims.TID)) > 0 && json.Unmarshal(claims.TID, &tid) == nil && tid != "" {
		return tid, nil
	}
	return "", errors.New("token tenant id: the access token has no tid claim")
}
