package deploy

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tipreaper/tipreaper/internal/cli"
	"github.com/tipreaper/tipreaper/internal/pcsim"
)

// A small simulated sandbox for the tests that run commands against a database: a known audit.
const (
	sbTenant   = "7e1a5c3d-0b2f-4c6e-9a8d-5f4b3e2d1c0a"
	sbClientID = "3c9b7a51-2d4e-4f60-8a1b-c2d3e4f5a6b7"
	sbSecret   = "s3cret-never-printed-4711"

	idOld1    = "11111111-1111-4111-8111-111111111111" // expired: deleted
	idOld2    = "22222222-2222-4222-8222-222222222222" // expired: deleted
	idYoung   = "33333333-3333-4333-8333-333333333333" // too young
	idGolden  = "44444444-4444-4444-8444-444444444444" // protected by the policy's keep
	idOutside = "55555555-5555-4555-8555-555555555555" // no policy selects it
	idAncient = "66666666-6666-4666-8666-666666666666" // expired, but its order is too old to cancel: blocked
)

type sandbox struct {
	sim *pcsim.Server
	url string
}

func newSandbox(t *testing.T) *sandbox {
	t.Helper()
	now := time.Now()
	day := 24 * time.Hour
	sim := pcsim.New(pcsim.Config{
		PartnerTenantID: sbTenant,
		ClientID:        sbClientID,
		ClientSecret:    sbSecret,
		CancelDelay:     [2]time.Duration{20 * time.Millisecond, 80 * time.Millisecond},
		Seed:            1,
	})
	customer := func(id, domain, company string, age time.Duration, order string) pcsim.SeedCustomer {
		return pcsim.SeedCustomer{ID: id, Domain: domain, CompanyName: company, CreatedAt: now.Add(-age),
			Orders: []pcsim.SeedOrder{{ID: order, Type: "software", Status: "completed", CreatedAt: now.Add(-age)}}}
	}
	for _, c := range []pcsim.SeedCustomer{
		customer(idOld1, "ci-0a1b2c3d.onmicrosoft.com", "CI run 1", 10*day, "a0000000-0000-4000-8000-000000000001"),
		customer(idOld2, "ci-0a1b2c3e.onmicrosoft.com", "CI run 2", 5*day, "a0000000-0000-4000-8000-000000000002"),
		customer(idYoung, "ci-0a1b2c3f.onmicrosoft.com", "CI run 3", time.Hour, "a0000000-0000-4000-8000-000000000003"),
		customer(idGolden, "ci-0a1b2c40.onmicrosoft.com", "CI golden image", 30*day, "a0000000-0000-4000-8000-000000000004"),
		customer(idOutside, "contoso-prod.onmicrosoft.com", "Contoso", 40*day, "a0000000-0000-4000-8000-000000000005"),
		customer(idAncient, "ci-0a1b2c41.onmicrosoft.com", "CI run 0", 70*day, "a0000000-0000-4000-8000-000000000006"),
	} {
		_, err := sim.AddCustomer(c)
		require.NoError(t, err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return &sandbox{sim: sim, url: srv.URL}
}

func (sb *sandbox) present() map[string]bool {
	m := map[string]bool{}
	for _, id := range sb.sim.Customers() {
		m[id] = true
	}
	return m
}

const sandboxConfig = `schedule: "0 0 1 1 *"
database:
  url: '{{DB}}'
state_dir: {{STATE}}
accounts:
  - name: tip
    partner_tenant_id: ` + sbTenant + `
    client_id: ` + sbClientID + `
    client_secret: ${DEPLOY_TEST_SECRET}
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

// writeConfig writes a config for the sandbox on the database at dbURL ("" = SQLite in its own state dir)
// and returns its path.
func (sb *sandbox) writeConfig(t *testing.T, dbURL string) string {
	t.Helper()
	t.Setenv("DEPLOY_TEST_SECRET", sbSecret)
	dir := t.TempDir()
	text := strings.NewReplacer("{{STATE}}", filepath.Join(dir, "state"), "{{URL}}", sb.url, "{{DB}}", dbURL).Replace(sandboxConfig)
	path := filepath.Join(dir, "reaper.yaml")
	require.NoError(t, os.WriteFile(path, []byte(text), 0o600))
	return path
}

type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return "exit " + string(rune('0'+r.code)) + "\nstdout:\n" + r.stdout + "\nstderr:\n" + r.stderr
}

// reaper runs a command line of the binary in process.
func reaper(ctx context.Context, args ...string) result {
	var stdout, stderr bytes.Buffer
	code := cli.Run(ctx, args, strings.NewReader(""), &stdout, &stderr)
	return result{code, stdout.String(), stderr.String()}
}

var planIDPattern = regexp.MustCompile(`plan ([0-9a-f-]{36}) saved`)
