// Package ratelimit keeps a client under a server's "N requests per window"
// quota (Partner Center allows 500 requests per 60 s per tenant on customer
// and order resources) so that the server rarely has to answer 429.
//
// The model is a sliding window of slots, not a token bucket: a client may
// burst the whole window at once and must then wait until the oldest request
// has left the window.
//
//	Acquire ──► slot taken (in flight) ──► release() ──► slot held for `window` ──► slot free
//	                 ▲                      response        (the server saw the
//	       FIFO waiters, woken by a         received         request before we saw
//	       single timer at the next         here             its answer, so the
//	       expiry / pause end / raise                        server's window ends first)
//
// A slot is counted from Acquire (the request may reach the server at any
// moment after it) until `window` after release. Because the response arrives
// after the server counted the request, the client's window always covers the
// server's, and the server never counts more than the limit from this client.
//
// When the server still throttles (other clients share the tenant's quota),
// Throttled pauses every send until Retry-After has passed and lowers the
// effective limit to 90 % of the slots then in the window. The limit climbs
// back by one per quiet window (a whole window without a 429) up to the
// configured one.
//
// Waiters are served first come, first served. A waiter blocks in a select on
// its context and a channel; one timer per Window (not one goroutine per
// waiter) wakes the queue when the next slot can free up.
package ratelimit
