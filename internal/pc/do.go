package pc

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// call is one logical API request: every attempt of it is built afresh from
// these fields and carries the same MS-RequestId.
type call struct {
	op            string
	endpoint      string // low-cardinality name of the route, for the observer
	method        string
	url           string
	body          []byte      // JSON body, nil for none
	header        http.Header // extra headers (a next link's), may be nil
	requestID     string
	correlationID string
}

// response is a successful (2xx) answer with its body read.
type response struct {
	status int
	header http.Header
	body   []byte
}

// newCall fills the request identity from ctx or fresh GUIDs.
func newCall(ctx context.Context, op, endpoint, method, url string) *call {
	cl := &call{op: op, endpoint: endpoint, method: method, url: url,
		requestID: requestIDFrom(ctx), correlationID: correlationIDFrom(ctx)}
	if cl.requestID == "" {
		cl.requestID = NewGUID()
	}
	if cl.correlationID == "" {
		cl.correlationID = NewGUID()
	}
	return cl
}

// reserved headers are never taken from a server's next link: the server
// must not choose our credentials or the framing of our request.
var reservedHeaders = map[string]bool{
	"Authorization": true, "Host": true, "Content-Length": true, "Transfer-Encoding": true,
}

// do sends cl until it succeeds, fails for good, or ctx ends. It returns the
// 2xx answer, an *Error, or an error wrapping ctx.Err(). Retries are bounded
// in count (MaxRetries, Max429Retries), per wait (MaxRetryWait) and in total
// (MaxCallTime, the caller's deadline); each is logged as it is decided.
func (c *Client) do(ctx context.Context, cl *call) (*response, error) {
	var (
		start                = time.Now()
		transient, throttled int    // retries spent of each budget
		refreshed            bool   // the one token refresh after a 401 is used
		stale                string // token the API just refused
	)
	for attempt := 1; ; attempt++ {
		if attempt > 1 {
			c.retries.Add(1)
		}
		resp, tok, err := c.attempt(ctx, cl, stale, attempt)
		stale = ""
		if err == nil {
			return resp, nil // even if ctx ended meanwhile: the call did happen
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s: %w", cl.op, ctx.Err())
		}
		e, ok := asError(err)
		if !ok || tok == "" {
			return nil, err // not an answer of the API (token or limiter failure)
		}
		var wait time.Duration
		switch {
		case e.StatusCode == http.StatusUnauthorized && !refreshed:
			// The token may have been revoked or expired early: one new
			// token, one more try, and no more.
			refreshed, stale = true, tok
			c.log.DebugContext(ctx, "partner center call retrying with a new token", "op", cl.op, "attempt", attempt+1)
			continue
		case e.StatusCode == http.StatusTooManyRequests:
			c.throttled.Add(1)
			if c.limiter != nil {
				asked := e.RetryAfter
				if asked <= 0 {
					asked = c.throttleWait(throttled, 0)
				}
				// The limiter pauses every request of the account: never
				// longer than one call may wait.
				c.limiter.Throttled(min(asked, c.throttleMax))
			}
			if throttled >= c.max429 {
				return nil, c.giveUp(ctx, cl, e, attempt, "retries of 429 used up")
			}
			if e.RetryAfter > c.throttleMax {
				return nil, c.giveUp(ctx, cl, e, attempt, fmt.Sprintf("Retry-After %s is beyond the longest retry wait %s", e.RetryAfter, c.throttleMax))
			}
			wait = c.throttleWait(throttled, e.RetryAfter)
			throttled++
		case IsRetryable(e):
			if transient >= c.maxRetries {
				return nil, c.giveUp(ctx, cl, e, attempt, "retries used up")
			}
			if e.RetryAfter > c.throttleMax {
				return nil, c.giveUp(ctx, cl, e, attempt, fmt.Sprintf("Retry-After %s is beyond the longest retry wait %s", e.RetryAfter, c.throttleMax))
			}
			wait = max(c.retryDelay(transient), e.RetryAfter)
			transient++
		default:
			return nil, e
		}
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait {
			// The caller cannot wait that long: the server's answer says
			// more than a deadline error would after a futile wait.
			return nil, c.giveUp(ctx, cl, e, attempt, fmt.Sprintf("a wait of %s would pass the caller's deadline", wait.Round(time.Millisecond)))
		}
		if elapsed := time.Since(start); elapsed+wait > c.maxCallTime {
			return nil, c.giveUp(ctx, cl, e, attempt, fmt.Sprintf("a wait of %s would pass the call's time limit %s", wait.Round(time.Millisecond), c.maxCallTime))
		}
		c.log.InfoContext(ctx, "partner center call retrying", "op", cl.op, "ms_request_id", cl.requestID,
			"attempt", attempt+1, "wait_seconds", wait.Seconds(), "cause", c.cause(e))
		if err := sleep(ctx, wait); err != nil {
			return nil, fmt.Errorf("%s: %w", cl.op, err)
		}
	}
}

// giveUp logs why a failed attempt is not retried and returns its error.
func (c *Client) giveUp(ctx context.Context, cl *call, e *Error, attempt int, why string) error {
	c.log.WarnContext(ctx, "partner center call not retried", "op", cl.op, "ms_request_id", cl.requestID,
		"attempt", attempt, "cause", c.cause(e), "reason", why)
	return e
}

// cause is a short, secret-free description of a failed attempt for logs.
func (c *Client) cause(e *Error) string {
	switch {
	case e.StatusCode != 0 && e.Code != "":
		return fmt.Sprintf("HTTP %d, code %s", e.StatusCode, e.Code)
	case e.StatusCode != 0:
		return fmt.Sprintf("HTTP %d", e.StatusCode)
	case e.Err != nil:
		return c.redact(e.Err.Error())
	}
	return "failed"
}

// attempt sends one HTTP request of cl and reads the whole answer. It
// returns the token it sent ("" if it sent nothing), so that a 401 can name
// the token to replace.
func (c *Client) attempt(ctx context.Context, cl *call, stale string, n int) (*response, string, error) {
	release := func() {}
	if c.limiter != nil {
		var err error
		if release, err = c.limiter.Acquire(ctx); err != nil {
			return nil, "", fmt.Errorf("%s: wait for the rate limiter: %w", cl.op, err)
		}
	}
	// The token is taken after the limiter's wait, which can be long, so
	// the request never leaves with a token that aged in the queue.
	tok, err := c.token(ctx, stale)
	if err != nil {
		release()
		return nil, "", fmt.Errorf("%s: %w", cl.op, err)
	}
	resp, err := c.send(ctx, cl, tok, n, release)
	return resp, tok, err
}

// send sends one HTTP request of cl with tok, reads the whole answer, then
// calls release.
func (c *Client) send(ctx context.Context, cl *call, tok string, n int, release func()) (*response, error) {
	req, err := c.newRequest(ctx, cl, tok)
	if err != nil {
		release()
		return nil, err
	}
	c.requests.Add(1)
	start := time.Now()
	resp, err := c.http.Do(req)
	var body []byte
	if err == nil {
		body, err = io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes+1))
		resp.Body.Close()
	}
	release() // the response is in: the server has counted this request
	ri := RequestInfo{Endpoint: cl.endpoint, Method: cl.method, Attempt: n, Duration: time.Since(start)}
	if resp != nil && err == nil {
		ri.StatusCode = resp.StatusCode
		ri.Throttled = resp.StatusCode == http.StatusTooManyRequests
	}
	c.observe(ri)

	attrs := []any{"method", cl.method, "path", req.URL.Path, "ms_request_id", cl.requestID,
		"ms_correlation_id", cl.correlationID, "attempt", n, "ms", time.Since(start).Milliseconds()}
	if resp == nil {
		c.log.DebugContext(ctx, "partner center request failed", append(attrs, "error", c.redact(err.Error()))...)
		return nil, &Error{Op: cl.op, RequestID: cl.requestID, CorrelationID: cl.correlationID, Err: classify(err)}
	}
	c.clock.observe(resp.Header, time.Now())
	cv := resp.Header.Get("MS-CV")
	c.log.DebugContext(ctx, "partner center request", append(attrs, "status", resp.StatusCode, "ms_cv", cv)...)

	e := &Error{Op: cl.op, StatusCode: resp.StatusCode, RequestID: cl.requestID, CorrelationID: cl.correlationID, CV: cv}
	if err != nil {
		// The answer was cut off: the request may have had its effect, and
		// resending it under the same MS-RequestId is how that is made safe.
		e.StatusCode, e.Err = 0, classify(err)
		return nil, e
	}
	if len(body) > maxBodyBytes {
		e.Err = fmt.Errorf("response body larger than %d bytes: %w", maxBodyBytes, errNotRetryable)
		return nil, e
	}
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return &response{status: resp.StatusCode, header: resp.Header, body: body}, nil
	}
	e.Code, e.Description = decodeErrorBody(body)
	e.Description = c.redact(e.Description)
	if d, ok := retryAfter(resp.Header, body, time.Now()); ok {
		e.RetryAfter = d
	}
	return nil, e
}

func (c *Client) newRequest(ctx context.Context, cl *call, tok string) (*http.Request, error) {
	var body io.Reader
	if cl.body != nil {
		body = bytes.NewReader(cl.body) // a new reader per attempt: a retried PATCH resends its body
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, cl.url, body)
	if err != nil {
		return nil, &Error{Op: cl.op, RequestID: cl.requestID, Err: fmt.Errorf("build request: %w: %w", err, errNotRetryable)}
	}
	for k, vs := range cl.header {
		if !reservedHeaders[http.CanonicalHeaderKey(k)] {
			req.Header[http.CanonicalHeaderKey(k)] = vs
		}
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("MS-RequestId", cl.requestID)
	req.Header.Set("MS-CorrelationId", cl.correlationID)
	req.Header.Set("MS-PartnerCenter-Application", c.application)
	req.Header.Set("X-Locale", "en-US")
	if cl.body != nil {
		req.Header.Set("Content-Type", "application/json")
	} else if cl.method == http.MethodDelete || cl.method == http.MethodPatch || cl.method == http.MethodPost {
		// The contract asks for "Content-Length: 0" on DELETE. net/http
		// omits it for a bodiless DELETE unless told the length is known.
		req.Body = http.NoBody
		req.ContentLength = 0
		req.TransferEncoding = []string{"identity"}
	}
	return req, nil
}

// classify marks transport failures no retry can fix.
func classify(err error) error {
	var (
		verify  *tls.CertificateVerificationError
		unknown x509.UnknownAuthorityError
		host    x509.HostnameError
		invalid x509.CertificateInvalidError
	)
	if errors.As(err, &verify) || errors.As(err, &unknown) || errors.As(err, &host) || errors.As(err, &invalid) {
		return fmt.Errorf("%w (%w)", err, errNotRetryable)
	}
	return err
}

// retryDelay is the wait before transient retry n (0-based): 0.5 s, 1.5 s,
// 3.5 s, then 3.5 s again, each plus up to 25 % jitter so that workers that
// failed together do not retry together.
func (c *Client) retryDelay(n int) time.Duration {
	if len(c.retryDelays) == 0 {
		return 0
	}
	base := c.retryDelays[min(n, len(c.retryDelays)-1)]
	return base + jitter(base/4)
}

// throttleWait is the wait before 429 retry n (0-based): at least what the
// server asked for, growing exponentially while the server keeps refusing.
func (c *Client) throttleWait(n int, asked time.Duration) time.Duration {
	exp := c.throttleBase << min(n, 16)
	if exp > c.throttleMax || exp <= 0 {
		exp = c.throttleMax
	}
	wait := max(asked, exp)
	// Never beyond the longest wait (do refuses a longer Retry-After first).
	return max(min(wait+jitter(min(wait/10, 2*time.Second)), c.throttleMax), asked)
}

func jitter(upTo time.Duration) time.Duration {
	if upTo <= 0 {
		return 0
	}
	return rand.N(upTo)
}

var tryAgainIn = regexp.MustCompile(`(?i)try again in (\d+(?:\.\d+)?) seconds?`)

// retryAfter reads how long a 429 (or 503) asks to wait: the Retry-After
// header in seconds or as an HTTP date, else "Try again in N seconds" in the
// body. ok is false when the answer does not say.
func retryAfter(h http.Header, body []byte, now time.Time) (d time.Duration, ok bool) {
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if d, ok := secondsDuration(v); ok {
			return d, true
		}
		if t, err := http.ParseTime(v); err == nil {
			return max(t.Sub(now), 0), true
		}
	}
	if m := tryAgainIn.FindSubmatch(body); m != nil {
		if d, ok := secondsDuration(string(m[1])); ok {
			return d, true
		}
	}
	return 0, false
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
