package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/sethvargo/go-retry"
)

// Results passed to Options.Observe.
const (
	ResultSent   = "sent"
	ResultFailed = "failed"
)

// Options configure a Notifier.
type Options struct {
	URL    string       // the webhook; it carries a token: never logged
	Client *http.Client // default: 10 s timeout per attempt, no redirects
	Logger *slog.Logger // a line per failed notification; nil = discard
	// Observe is told the result of every notification (after its retries).
	Observe func(result string)
	// Tries bounds the attempts of one notification (default 4); Backoff is
	// the first wait between them, doubling with jitter (default 2 s), and
	// MaxWait the longest single wait (default 30 s; a Retry-After above it is
	// cut to it). With the defaults one notification ends within about a minute.
	Tries   int
	Backoff time.Duration
	MaxWait time.Duration
}

// Notifier posts messages to one webhook.
type Notifier struct {
	o  Options
	wg sync.WaitGroup
}

// New returns a Notifier for o.URL.
func New(o Options) *Notifier {
	if o.Client == nil {
		o.Client = &http.Client{
			Timeout:       10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Tries <= 0 {
		o.Tries = 4
	}
	if o.Backoff <= 0 {
		o.Backoff = 2 * time.Second
	}
	if o.MaxWait <= 0 {
		o.MaxWait = 30 * time.Second
	}
	return &Notifier{o: o}
}

// Go sends m in the background, so the caller (a pass, a reload) does not
// wait; Wait waits for what Go started. ctx's values are kept but not its
// cancellation: a notification about the last pass before a SIGTERM is still
// sent, within its bounded retries.
func (n *Notifier) Go(ctx context.Context, m Message) {
	ctx = context.WithoutCancel(ctx)
	n.wg.Go(func() { _ = n.Send(ctx, m) })
}

// Wait waits for the notifications Go started.
func (n *Notifier) Wait() { n.wg.Wait() }

// statusError is a webhook answer other than 2xx.
type statusError struct {
	code       int
	retryAfter time.Duration
}

func (e *statusError) Error() string { return "webhook answered " + strconv.Itoa(e.code) }

// Send posts m, retrying 5xx, 429 and transport errors with bounded backoff.
// The result is logged (on failure), observed and returned.
func (n *Notifier) Send(ctx context.Context, m Message) error {
	body, err := json.Marshal(m)
	if err != nil {
		return n.done(m, 0, fmt.Errorf("encode notification: %w", err))
	}
	b := retry.NewExponential(n.o.Backoff)
	b = retry.WithJitterPercent(20, b)
	b = retry.WithCappedDuration(n.o.MaxWait, b)
	b = retry.WithMaxRetries(uint64(n.o.Tries-1), b)
	attempts := 0
	err = retry.Do(ctx, b, func(ctx context.Context) error {
		attempts++
		err := n.post(ctx, body)
		var se *statusError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &se) && se.code != http.StatusTooManyRequests && se.code < 500:
			return err // 4xx: the URL or the body is wrong; repeating will not help
		case errors.As(err, &se) && se.retryAfter > 0:
			if err := sleep(ctx, min(se.retryAfter, n.o.MaxWait)); err != nil {
				return err
			}
			return retry.RetryableError(err)
		default:
			return retry.RetryableError(err)
		}
	})
	return n.done(m, attempts, err)
}

func (n *Notifier) done(m Message, attempts int, err error) error {
	result := ResultSent
	if err != nil {
		result = ResultFailed
		n.o.Logger.Warn("notification not sent", "kind", m.Kind, "run_id", m.RunID, "attempts", attempts, "error", err)
	}
	if n.o.Observe != nil {
		n.o.Observe(result)
	}
	return err
}

func (n *Notifier) post(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.o.URL, bytes.NewReader(body))
	if err != nil {
		return errors.New("build webhook request: invalid URL") // the URL holds a token: not in the error
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := n.o.Client.Do(req)
	if err != nil {
		// url.Error quotes the URL, which holds the webhook's token.
		var ue interface{ Unwrap() error }
		if errors.As(err, &ue) && ue.Unwrap() != nil {
			err = ue.Unwrap()
		}
		return fmt.Errorf("post webhook: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // drain, so the connection is reused
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	se := &statusError{code: resp.StatusCode}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		se.retryAfter = time.Duration(s) * time.Second
	}
	return se
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
