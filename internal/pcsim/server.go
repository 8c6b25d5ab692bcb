package pcsim

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash/fnv"
	mrand "math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"
)

// SandboxLimit is the number of customers an integration sandbox holds at most.
const SandboxLimit = 75

// maxRequestLog bounds the request log so a long-running `reaper sim` does not grow without end.
const maxRequestLog = 50_000

// Config shapes a simulated Partner Center. The zero value is a fast, perfect
// server that accepts any credentials.
type Config struct {
	PartnerTenantID string // the tenant tokens are issued for; empty: any tenant in the token path
	TokenTenantID   string // `tid` claim; default PartnerTenantID (tests set another to test the guard)
	ClientID        string // accepted client_id; empty: accept any
	ClientSecret    string // accepted client_secret; empty: accept any
	TokenTTL        time.Duration
	MaxPageSize     int              // default 40; a larger `size` is clamped
	CancelDelay     [2]time.Duration // min, max per order; uniform, drawn per order from Seed
	Latency         [2]time.Duration // min, max per API request; uniform; real (wall-clock) time
	RatePerMinute   int              // 0 = unlimited; sliding 60 s window per tenant on /v1/customers* and /customers*
	FailureRate     float64          // fraction of API requests answered 500/503, half before and half after acting
	Seed            int64            // randomness: generated ids, cancel delays, latency, failures
	Now             func() time.Time // default time.Now; the simulator's notion of time (not latency)

	// GoneStatus is the answer for an unknown or deleted customer: 404 (default)
	// or 403, which answers 403 with code 20002 as the contract allows.
	GoneStatus int
	// EntitlementsAppOnlyForbidden answers GET entitlements with 403 code 900150,
	// as documented for app-only tokens (every token this simulator issues is app-only).
	EntitlementsAppOnlyForbidden bool
	// ClientCertificate, when set, makes client_credentials require a client
	// assertion signed by this certificate's key (no client secret).
	ClientCertificate *x509.Certificate
	// RefreshToken, when set, enables the App+User refresh-token grant with
	// rotation: every grant answers a new refresh token and voids the old one.
	RefreshToken string
	// Chaos, when set, injects the faults it describes (see Chaos); nil: none.
	Chaos *Chaos
}

// Server is a simulated Partner Center: token endpoints and the customer API.
// It implements http.Handler and is safe for concurrent use.
type Server struct {
	cfg Config
	now func() time.Time

	mu        sync.Mutex
	rng       *mrand.Rand
	tokenTID  string
	tokens    map[string]*token
	customers []*customer // every customer ever added, in order; deleted ones stay for the activity log
	byID      map[string]*customer
	pages     pageStore
	windows   map[string][]time.Time // per tenant: arrival times of counted requests in the last 60 s
	failRules []failRule
	log       []Request
	stats     counters
	inFlight  int

	stormUntil time.Time // chaos: every API request is refused with 429 until then
	refresh    string    // the refresh token accepted now (rotates)
}

// New returns a simulator with no customers.
func New(cfg Config) *Server {
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = time.Hour
	}
	if cfg.MaxPageSize <= 0 {
		cfg.MaxPageSize = 40
	}
	if cfg.GoneStatus != http.StatusForbidden {
		cfg.GoneStatus = http.StatusNotFound
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	tid := cfg.TokenTenantID
	if tid == "" {
		tid = cfg.PartnerTenantID
	}
	return &Server{
		cfg:      cfg,
		now:      now,
		refresh:  cfg.RefreshToken,
		rng:      mrand.New(mrand.NewPCG(uint64(cfg.Seed), 0x7069736d)), //nolint:gosec // simulation, not security
		tokenTID: tid,
		tokens:   map[string]*token{},
		byID:     map[string]*customer{},
		windows:  map[string][]time.Time{},
		stats:    newCounters(),
	}
}

// SetTokenTenantID changes the `tid` claim of tokens issued from now on.
func (s *Server) SetTokenTenantID(tid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokenTID = tid
}

// Request is one entry of the request log.
type Request struct {
	Method        string
	Path          string
	Query         string
	RequestID     string      // MS-RequestId as sent ("" if absent)
	CorrelationID string      // MS-CorrelationId as sent
	Accept        string      // Accept as sent
	Header        http.Header // every header sent, Authorization redacted
	Status        int         // status answered; 0 if the caller went away first
	At            time.Time   // Config.Now at arrival
}

// Requests returns a copy of the request log (the most recent 50 000 requests), oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.log))
	copy(out, s.log)
	return out
}

type failRule struct {
	method, prefix string
	status, n      int
	after          bool
}

// FailNext makes the next n requests whose method is method ("" = any) and
// whose path starts with pathPrefix fail with status BEFORE acting: nothing changes.
// It applies to token requests too when the prefix names them.
func (s *Server) FailNext(method, pathPrefix string, status, n int) {
	s.addFailRule(failRule{method: method, prefix: pathPrefix, status: status, n: n})
}

// FailNextAfter is FailNext, but the failure happens AFTER the action took
// effect: the answer is lost (a DELETE that did delete answers 500).
func (s *Server) FailNextAfter(method, pathPrefix string, status, n int) {
	s.addFailRule(failRule{method: method, prefix: pathPrefix, status: status, n: n, after: true})
}

func (s *Server) addFailRule(r failRule) {
	if r.n <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failRules = append(s.failRules, r)
}

// failure is an injected failure decided on arrival.
type failure struct {
	status int
	after  bool
}

// takeFailure consumes a matching FailNext rule or draws against FailureRate
// (API requests only). Callers hold s.mu.
func (s *Server) takeFailure(method, path string, api bool) (failure, bool) {
	for i := range s.failRules {
		r := &s.failRules[i]
		if (r.method == "" || strings.EqualFold(r.method, method)) && strings.HasPrefix(path, r.prefix) {
			r.n--
			f := failure{status: r.status, after: r.after}
			if r.n == 0 {
				s.failRules = append(s.failRules[:i], s.failRules[i+1:]...)
			}
			return f, true
		}
	}
	if !api || s.cfg.FailureRate <= 0 || s.rng.Float64() >= s.cfg.FailureRate {
		return failure{}, false
	}
	f := failure{status: http.StatusInternalServerError, after: s.rng.IntN(2) == 1}
	if s.rng.IntN(2) == 1 {
		f.status = http.StatusServiceUnavailable
	}
	return f, true
}

// reply is an answer built before it is written, so that an injected
// failure after acting can replace it.
type reply struct {
	status int
	header http.Header
	body   []byte
}

func jsonReply(status int, v any) reply {
	b, err := json.Marshal(v)
	if err != nil {
		// Every wire type is plain data; a marshal failure is a bug in the simulator.
		panic(fmt.Sprintf("pcsim: marshal %T: %v", v, err))
	}
	return reply{status: status, header: http.Header{"Content-Type": {"application/json; charset=utf-8"}}, body: b}
}

func (rp reply) write(w http.ResponseWriter) {
	for k, vs := range rp.header {
		w.Header()[k] = vs
	}
	w.WriteHeader(rp.status)
	if len(rp.body) > 0 {
		_, _ = w.Write(rp.body)
	}
}

// ServeHTTP answers token requests and API requests. An API request goes
// through, in order: authentication, the rate limit (both on arrival),
// latency, an injected failure before acting, the action, and an injected
// failure after acting.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	at := s.now()
	s.inFlight++
	s.stats.peakInFlight = max(s.stats.peakInFlight, s.inFlight)
	s.mu.Unlock()

	entry := Request{
		Method:        r.Method,
		Path:          r.URL.Path,
		Query:         r.URL.RawQuery,
		RequestID:     r.Header.Get("MS-RequestId"),
		CorrelationID: r.Header.Get("MS-CorrelationId"),
		Accept:        r.Header.Get("Accept"),
		Header:        r.Header.Clone(),
		At:            at,
	}
	if entry.Header.Get("Authorization") != "" {
		entry.Header.Set("Authorization", "REDACTED")
	}

	var status int
	if tenant, v2, ok := tokenRoute(r.URL.Path); ok {
		status = s.serveToken(w, r, tenant, v2)
	} else {
		status = s.serveAPI(w, r, at)
	}
	entry.Status = status

	s.mu.Lock()
	s.inFlight--
	if len(s.log) >= maxRequestLog {
		s.log = append(s.log[:0], s.log[len(s.log)-maxRequestLog/2:]...)
	}
	s.log = append(s.log, entry)
	s.mu.Unlock()
	if status == statusDropped {
		// The work is done; the answer is lost with the connection.
		panic(http.ErrAbortHandler)
	}
}

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request, at time.Time) int {
	h := w.Header()
	h.Set("MS-RequestId", headerOrGUID(r, "MS-RequestId"))
	h.Set("MS-CorrelationId", headerOrGUID(r, "MS-CorrelationId"))
	h.Set("MS-CV", newCV())

	rt := parseRoute(r.URL.Path)
	s.mu.Lock()
	s.stats.count(r.Method, rt)
	if (r.Method == http.MethodPatch || r.Method == http.MethodDelete) && rt.customerID != "" {
		// Counted on arrival, whatever the answer: a safety test must see every attempt.
		s.stats.mutation(r.Method, rt.customerID)
	}
	tenant, rp, ok := s.authenticate(r, at)
	if ok && rt.rateLimited() {
		rp, ok = s.admit(tenant, at)
	}
	var fail failure
	var failing bool
	var chaos chaosFault
	if ok {
		chaos = s.drawChaos(r, at)
		if chaos.storm.status != 0 {
			rp, ok = chaos.storm, false
		}
	}
	if ok {
		fail, failing = s.takeFailure(r.Method, r.URL.Path, true)
		if failing {
			s.stats.failures++
		} else if chaos.before || chaos.after {
			failing = true
			fail = failure{status: http.StatusInternalServerError, after: chaos.after}
			if s.rng.IntN(2) == 1 {
				fail.status = http.StatusServiceUnavailable
			}
		}
	}
	latency := s.drawLatency() + chaos.latency
	s.mu.Unlock()
	if !ok {
		rp.write(w)
		return rp.status
	}

	if err := sleep(r.Context(), latency); err != nil {
		return 0 // the caller went away; act on nothing, as a real front door would drop it
	}
	if failing && !fail.after {
		rp = failureReply(fail.status)
		rp.write(w)
		return rp.status
	}
	rp = s.dispatch(r, rt)
	if chaos.drop {
		return statusDropped // ServeHTTP closes the connection without an answer
	}
	if failing {
		rp = failureReply(fail.status)
	}
	rp.write(w)
	return rp.status
}

// statusDropped is the request log's status of an answer chaos dropped after
// acting (the connection was closed, the client saw no status).
const statusDropped = -1

func (s *Server) drawLatency() time.Duration {
	lo, hi := s.cfg.Latency[0], s.cfg.Latency[1]
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(s.rng.Int64N(int64(hi-lo)+1))
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func failureReply(status int) reply {
	code := "InternalServerError"
	if status == http.StatusServiceUnavailable {
		code = "ServiceUnavailable"
	}
	return errorReply(status, code, fmt.Sprintf("The service could not complete the request (%d injected by the simulator).", status))
}

// errorReply builds the Partner Center error envelope. code is an int or a
// string: the contract says both are seen on the wire.
func errorReply(status int, code any, description string) reply {
	return jsonReply(status, wireError{Code: code, Description: description, Data: []any{}, Source: "PartnerFD"})
}

func headerOrGUID(r *http.Request, name string) string {
	if v := r.Header.Get(name); v != "" {
		return v
	}
	return newGUID()
}

func newGUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// newCV returns a correlation vector shaped like the ones Partner Center sends.
func newCV() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return base64.RawStdEncoding.EncodeToString(b[:]) + ".0"
}

// randomToken returns an unguessable opaque string.
func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// hashSeed mixes the seed with a name so per-entity draws do not depend on
// the order in which requests happen to arrive.
func hashSeed(seed int64, name string) *mrand.Rand {
	h := fnv.New64a()
	_, _ = h.Write([]byte(name))
	return mrand.New(mrand.NewPCG(uint64(seed), h.Sum64())) //nolint:gosec // simulation, not security
}
