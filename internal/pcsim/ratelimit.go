package pcsim

import (
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// rateWindow is the span of Partner Center's sliding request limit.
const rateWindow = time.Minute

// admit counts a request against its tenant's sliding window, or answers 429
// when the window is full. Throttled requests do not take a slot, so a
// client that waits Retry-After gets through. Callers hold s.mu.
func (s *Server) admit(tenant string, at time.Time) (reply, bool) {
	win := s.windows[tenant]
	cut := at.Add(-rateWindow)
	i := 0
	for i < len(win) && !win[i].After(cut) {
		i++
	}
	win = win[i:]
	if limit := s.cfg.RatePerMinute; limit > 0 && len(win) >= limit {
		s.windows[tenant] = win
		s.stats.throttled++
		secs := int((win[0].Add(rateWindow).Sub(at) + time.Second - 1) / time.Second)
		secs = max(secs, 1)
		rp := jsonReply(http.StatusTooManyRequests, wireThrottle{
			StatusCode: http.StatusTooManyRequests,
			Message:    fmt.Sprintf("Rate limit is exceeded. Try again in %d seconds.", secs),
		})
		rp.header.Set("Retry-After", strconv.Itoa(secs))
		return rp, false
	}
	// Arrivals are stamped before the lock is taken, so keep the window sorted.
	win = append(win, at)
	for j := len(win) - 1; j > 0 && win[j].Before(win[j-1]); j-- {
		win[j], win[j-1] = win[j-1], win[j]
	}
	s.windows[tenant] = win
	s.stats.peakWindow = max(s.stats.peakWindow, len(win))
	return reply{}, true
}
