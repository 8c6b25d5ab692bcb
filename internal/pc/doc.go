// Package pc is the Partner Center REST client of tipreaper. It speaks the
// wire contract in shared/partner-center-api.md and nothing else: it knows
// customers, orders, entitlements and audit records, not policies or stores.
//
// A call flows like this:
//
//	ListCustomers ─► do(op) ─► per attempt: Limiter.Acquire ─► token ─► HTTP ─► read body ─► release
//	                   │                      ▲                                       │
//	                   │                      ├── 401: refresh once, resend ◄─────────┤
//	                   │                      ├── 429: Throttled, wait Retry-After ◄──┤
//	                   │                      └── 5xx / network: 0.5 s, 1.5 s, 3.5 s ◄┘
//	                   └─► 2xx: decode, or *Error (status, code, MS-RequestId, MS-CV)
//
// Every logical call carries one MS-RequestId (the caller's, via
// WithRequestID, or a fresh GUID) on all of its attempts, so a retried PATCH
// or DELETE is the same request to Partner Center. Collections are paged by
// following links.next with its headers (MS-ContinuationToken); a page that
// fails fails the whole list, because a partial customer list would let the
// caller draw conclusions from what is missing.
//
// Tokens are app-only v1 client-credential tokens, cached and refreshed 30 s
// before expiry; concurrent callers share one refresh. The client secret and
// access tokens never appear in errors or logs.
package pc
