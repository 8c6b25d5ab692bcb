package pc

import (
	"net/http"
	"sync"
	"time"
)

// ClockReading is one answer's Date header beside the local time at which
// the answer arrived.
type ClockReading struct {
	Server time.Time // the answer's Date header
	Local  time.Time // the local clock when the answer arrived
}

// Skew is how far the local clock is ahead of the server's (negative: behind).
// The Date header has a resolution of one second.
func (r ClockReading) Skew() time.Duration { return r.Local.Sub(r.Server) }

// clockWatch keeps the reading of the largest skew seen since it was last taken.
type clockWatch struct {
	mu    sync.Mutex
	worst ClockReading
	seen  bool
}

// observe compares an answer's Date header, if it has a valid one, with the
// local clock.
func (w *clockWatch) observe(h http.Header, local time.Time) {
	date, err := http.ParseTime(h.Get("Date"))
	if err != nil {
		return
	}
	r := ClockReading{Server: date, Local: local}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.seen || abs(r.Skew()) > abs(w.worst.Skew()) {
		w.worst, w.seen = r, true
	}
}

// ClockSkew returns the reading with the largest skew among the answers
// of the API received since the previous call, and forgets them. ok is false when no answer carried a Date.
func (c *Client) ClockSkew() (r ClockReading, ok bool) {
	c.clock.mu.Lock()
	defer c.clock.mu.Unlock()
	r, ok = c.clock.worst, c.clock.seen
	c.clock.worst, c.clock.seen = ClockReading{}, false
	return r, ok
}

func abs(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
