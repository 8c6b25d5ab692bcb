package pc_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/tipreaper/tipreaper/internal/memhttp"
	"github.com/tipreaper/tipreaper/internal/pc"
	"github.com/tipreaper/tipreaper/internal/pcsim"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	tenant   = "11111111-2222-3333-4444-555555555555"
	clientID = "app-id"
	secret   = "Sup3r~Secret.Value_42"
)

// startSim serves sim over real loopback HTTP and returns its URL and a
// client whose connections close with the server.
func startSim(t *testing.T, h http.Handler) (string, *http.Client) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL, srv.Client()
}

// newClient builds a pc.Client aimed at url (API and login alike).
func newClient(t *testing.T, url string, hc *http.Client, edit func(*pc.Config)) *pc.Client {
	t.Helper()
	cfg := pc.Config{
		BaseURL:      url,
		Authority:    url,
		TenantID:     tenant,
		ClientID:     clientID,
		ClientSecret: secret,
		HTTPClient:   hc,
	}
	if edit != nil {
		edit(&cfg)
	}
	c, err := pc.New(cfg)
	require.NoError(t, err)
	return c
}

func newSim(cfg pcsim.Config) *pcsim.Server {
	if cfg.PartnerTenantID == "" {
		cfg.PartnerTenantID = tenant
	}
	if cfg.ClientID == "" {
		cfg.ClientID = clientID
	}
	if cfg.ClientSecret == "" {
		cfg.ClientSecret = secret
	}
	return pcsim.New(cfg)
}

func addCustomer(t *testing.T, sim *pcsim.Server, c pcsim.SeedCustomer) string {
	t.Helper()
	id, err := sim.AddCustomer(c)
	require.NoError(t, err)
	return id
}

func addCustomers(t *testing.T, sim *pcsim.Server, n int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		ids = append(ids, addCustomer(t, sim, pcsim.SeedCustomer{Domain: fmt.Sprintf("c%02d.onmicrosoft.com", i), CompanyName: fmt.Sprintf("Company %d", i)}))
	}
	return ids
}

// apiRequests returns the simulator's log without token requests.
func apiRequests(sim *pcsim.Server) []pcsim.Request {
	var out []pcsim.Request
	for _, r := range sim.Requests() {
		if !strings.Contains(r.Path, "/oauth2/") {
			out = append(out, r)
		}
	}
	return out
}

func tokenRequests(sim *pcsim.Server) int {
	n := 0
	for _, r := range sim.Requests() {
		if strings.Contains(r.Path, "/oauth2/") {
			n++
		}
	}
	return n
}

// startPipe serves h over in-memory HTTP (see memhttp); inside a synctest
// bubble, call it inside the bubble and stop before the bubble ends.
func startPipe(h http.Handler) (url string, hc *http.Client, stop func()) {
	hc, stop = memhttp.Start(h)
	return memhttp.URL, hc, stop
}

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func debugLogger(buf *syncBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// tokenRecorder remembers every bearer token the client sent, so a test can
// look for them where they must not be.
type tokenRecorder struct {
	base   http.RoundTripper
	mu     sync.Mutex
	tokens []string
}

func (r *tokenRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if tok, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer "); ok {
		r.mu.Lock()
		r.tokens = append(r.tokens, tok)
		r.mu.Unlock()
	}
	return r.base.RoundTrip(req)
}

func (r *tokenRecorder) seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.tokens...)
}

// recordingLimiter wraps a real limiter and counts what the client told it.
type recordingLimiter struct {
	pc.Limiter
	mu        sync.Mutex
	throttles []time.Duration
}

func (r *recordingLimiter) Throttled(d time.Duration) {
	r.mu.Lock()
	r.throttles = append(r.throttles, d)
	r.mu.Unlock()
	r.Limiter.Throttled(d)
}

// slogAt is a text logger at level ("DEBUG", "INFO", …).
func slogAt(buf *syncBuffer, level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		panic(err)
	}
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: l}))
}
