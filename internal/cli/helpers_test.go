package cli

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/tipreaper/tipreaper/internal/pcsim"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// syncBuffer is a bytes.Buffer a test may read while a command still writes to it.
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

// result is what one command run printed and returned.
type result struct {
	code   int
	stdout string
	stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout\n%s--- stderr\n%s", r.code, r.stdout, r.stderr)
}

// reaper runs the command like cmd/reaper does, minus signals.
func reaper(t *testing.T, args ...string) result {
	t.Helper()
	return reaperCtx(t, t.Context(), args...)
}

func reaperCtx(t *testing.T, ctx context.Context, args ...string) result {
	t.Helper()
	var stdout, stderr syncBuffer
	code := Run(ctx, args, strings.NewReader(""), &stdout, &stderr)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// Identities the test simulator and configs share.
const (
	testTenant   = "7e1a5c3d-0b2f-4c6e-9a8d-5f4b3e2d1c0a"
	testClientID = "3c9b7a51-2d4e-4f60-8a1b-c2d3e4f5a6b7"
	testSecret   = "s3cret-never-printed-4711"
)

// Customer ids of the test sandbox.
const (
	idOld1    = "11111111-1111-4111-8111-111111111111"
	idOld2    = "22222222-2222-4222-8222-222222222222"
	idYoung   = "33333333-3333-4333-8333-333333333333"
	idGolden  = "44444444-4444-4444-8444-444444444444"
	idOutside = "55555555-5555-4555-8555-555555555555"
	idAncient = "66666666-6666-4666-8666-666666666666"
)

type sandbox struct {
	sim *pcsim.Server
	url string
}

// testSeed is a small sandbox: two expired CI customers, one too young, one
// protected by company name, one outside the policy; withAncient adds one
// holding an order too old to cancel (it ends blocked).
func testSeed(now time.Time, withAncient bool) []pcsim.SeedCustomer {
	day := 24 * time.Hour
	order := func(id string, at time.Time) []pcsim.SeedOrder {
		return []pcsim.SeedOrder{{ID: id, Type: "software", Status: "completed", CreatedAt: at}}
	}
	seed := []pcsim.SeedCustomer{
		{ID: idOld1, Domain: "ci-0a1b2c3d.onmicrosoft.com", CompanyName: "CI run 1", CreatedAt: now.Add(-10 * day),
			Orders: order("a0000000-0000-4000-8000-000000000001", now.Add(-10*day))},
		{ID: idOld2, Domain: "ci-0a1b2c3e.onmicrosoft.com", CompanyName: "CI run 2", CreatedAt: now.Add(-5 * day),
			Orders: order("a0000000-0000-4000-8000-000000000002", now.Add(-5*day))},
		{ID: idYoung, Domain: "ci-0a1b2c3f.onmicrosoft.com", CompanyName: "CI run 3", CreatedAt: now.Add(-time.Hour),
			Orders: order("a0000000-0000-4000-8000-000000000003", now.Add(-time.Hour))},
		{ID: idGolden, Domain: "ci-0a1b2c40.onmicrosoft.com", CompanyName: "CI golden image", CreatedAt: now.Add(-30 * day),
			Orders: order("a0000000-0000-4000-8000-000000000004", now.Add(-30*day))},
		{ID: idOutside, Domain: "contoso-prod.onmicrosoft.com", CompanyName: "Contoso", CreatedAt: now.Add(-40 * day),
			Orders: order("a0000000-0000-4000-8000-000000000005", now.Add(-40*day))},
	}
	if withAncient {
		seed = append(seed, pcsim.SeedCustomer{ID: idAncient, Domain: "ci-0a1b2c41.onmicrosoft.com", CompanyName: "CI run 0",
			CreatedAt: now.Add(-70 * day), Orders: order("a0000000-0000-4000-8000-000000000006", now.Add(-70*day))})
	}
	return seed
}

// newSandbox serves a simulator holding seed on a loopback httptest server.
func newSandbox(t *testing.T, seed []pcsim.SeedCustomer) *sandbox {
	t.Helper()
	sim := pcsim.New(pcsim.Config{
		PartnerTenantID: testTenant,
		ClientID:        testClientID,
		ClientSecret:    testSecret,
		CancelDelay:     [2]time.Duration{20 * time.Millisecond, 80 * time.Millisecond},
		Seed:            1,
	})
	for _, c := range seed {
		_, err := sim.AddCustomer(c)
		require.NoError(t, err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return &sandbox{sim: sim, url: srv.URL}
}

const configTemplate = `# test config
state_dir: {{STATE}}
accounts:
  - name: tip
    partner_tenant_id: ` + testTenant + `
    client_id: ` + testClientID + `
    client_secret: ${REAPER_TEST_SECRET}
    base_url: {{URL}}
    authority: {{URL}}
limits:
  poll_interval: 100ms
  poll_max: 300ms
policies:
  - name: ci-leftovers
    account: tip
    select:
      domain: '^ci-[0-9a-f]{8}\.onmicrosoft\.com$'
    older_than: 72h
    keep:
      company_names: ['^CI golden']
`

// writeConfig writes a config for the sandbox with its own SQLite state dir
// and returns its path. The client secret comes from the environment, as
// the README tells users to do.
func writeConfig(t *testing.T, sb *sandbox, extra string) string {
	t.Helper()
	t.Setenv("REAPER_TEST_SECRET", testSecret)
	dir := t.TempDir()
	url := "http://127.0.0.1:1"
	if sb != nil {
		url = sb.url
	}
	text := strings.NewReplacer("{{STATE}}", filepath.Join(dir, "state"), "{{URL}}", url).Replace(configTemplate) + extra
	path := filepath.Join(dir, "reaper.yaml")
	require.NoError(t, os.WriteFile(path, []byte(text), 0o600))
	return path
}

func present(sim *pcsim.Server) map[string]bool {
	m := map[string]bool{}
	for _, id := range sim.Customers() {
		m[id] = true
	}
	return m
}
