package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/tipreaper/tipreaper/internal/pcsim"
)

// Identities of the simulated partner. Fixed, so a config pasted from one
// `reaper sim` keeps working against the next.
const (
	simTenantID = "7e1a5c3d-0b2f-4c6e-9a8d-5f4b3e2d1c0a"
	simClientID = "3c9b7a51-2d4e-4f60-8a1b-c2d3e4f5a6b7"
)

// runSim serves the Partner Center simulator until the context is cancelled.
func runSim(ctx context.Context, e *env, args []string) int {
	fs := e.newFlagSet("sim")
	listen := fs.String("listen", "127.0.0.1:8080", "`address` to listen on")
	seedFile := fs.String("seed", "", "YAML seed `FILE` of customers and orders (default: the demo sandbox)")
	tenant := fs.String("tenant", simTenantID, "partner tenant `ID` tokens are issued for")
	clientID := fs.String("client-id", simClientID, "accepted client `ID`")
	secret := fs.String("client-secret", "", "accepted client `secret` (empty: any)")
	latency := &durationRange{v: [2]time.Duration{40 * time.Millisecond, 120 * time.Millisecond}}
	fs.Var(latency, "latency", "per-request latency `MIN-MAX`")
	cancelDelay := &durationRange{v: [2]time.Duration{time.Second, 3 * time.Second}}
	fs.Var(cancelDelay, "cancel-delay", "per-order delay from cancel to cancelled, `MIN-MAX`")
	rate := fs.Int("rate", 500, "requests per minute per tenant before 429 (0: unlimited)")
	failure := fs.Float64("failure-rate", 0, "`fraction` of API requests answered 500/503")
	const synopsis = "[--listen ADDR] [--seed FILE] [--tenant ID] [--client-id ID] [--client-secret S] [--latency MIN-MAX] [--cancel-delay MIN-MAX] [--rate N] [--failure-rate F]"
	if _, code, ok := e.parse(fs, args, synopsis, 0); !ok {
		return code
	}
	if *failure < 0 || *failure > 1 {
		fmt.Fprintln(e.stderr, "reaper sim: --failure-rate is a fraction between 0 and 1")
		return exitUsage
	}
	if _, err := customerID(*tenant); err != nil {
		fmt.Fprintf(e.stderr, "reaper sim: --tenant: %v\n", err)
		return exitUsage
	}

	now := e.now()
	seed := pcsim.DemoSeed(now)
	if *seedFile != "" {
		f, err := os.Open(*seedFile)
		if err != nil {
			fmt.Fprintf(e.stderr, "reaper sim: %v\n", err)
			return exitUsage
		}
		seed, err = pcsim.LoadSeed(f)
		f.Close()
		if err != nil {
			fmt.Fprintf(e.stderr, "reaper sim: seed %s: %v\n", *seedFile, err)
			return exitUsage
		}
	}
	sim := pcsim.New(pcsim.Config{
		PartnerTenantID: *tenant,
		ClientID:        *clientID,
		ClientSecret:    *secret,
		CancelDelay:     cancelDelay.v,
		Latency:         latency.v,
		RatePerMinute:   *rate,
		FailureRate:     *failure,
		Seed:            now.UnixNano(),
	})
	for _, c := range seed {
		if _, err := sim.AddCustomer(c); err != nil {
			fmt.Fprintf(e.stderr, "reaper sim: seed: %v\n", err)
			return exitUsage
		}
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(e.stderr, "reaper sim: %v\n", err)
		return exitPartial
	}
	base := "http://" + ln.Addr().String()
	fmt.Fprintf(e.stdout, "Partner Center simulator on %s: %d customers (tenant %s)\n\n", base, len(seed), *tenant)
	fmt.Fprintln(e.stdout, "Paste this account into a config (see config.example.yaml):")
	printSimAccount(e.stdout, base, *tenant, *clientID, *secret != "")
	fmt.Fprintln(e.stdout, "\nStop it with Ctrl-C.")

	if err := serve(ctx, ln, sim); err != nil {
		fmt.Fprintf(e.stderr, "reaper sim: %v\n", err)
		return exitPartial
	}
	return exitOK
}

func printSimAccount(w io.Writer, base, tenant, clientID string, secretSet bool) {
	secretLine := "client_secret: any-value           # this simulator accepts any secret"
	if secretSet {
		secretLine = "client_secret: ${REAPER_SIM_SECRET} # export REAPER_SIM_SECRET=<the --client-secret>"
	}
	fmt.Fprintf(w, `accounts:
  - name: sim
    partner_tenant_id: %s
    client_id: %s
    %s
    base_url: %s
    authority: %s
`, tenant, clientID, secretLine, base, base)
}

// serve runs an http.Server on ln until ctx is cancelled, then shuts it down.
func serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	// Shutdown lets requests in flight finish, but waits for a connection a
	// client opened and never used for up to 5 s; past a short grace the rest
	// is cut, which a simulator may do.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// durationRange is a flag.Value for "MIN-MAX" (or one duration for both).
type durationRange struct{ v [2]time.Duration }

func (r *durationRange) String() string {
	if r == nil {
		return ""
	}
	if r.v[0] == r.v[1] {
		return r.v[0].String()
	}
	return r.v[0].String() + "-" + r.v[1].String()
}

func (r *durationRange) Set(s string) error {
	lo, hi, found := strings.Cut(s, "-")
	if !found {
		hi = lo
	}
	a, err := time.ParseDuration(strings.TrimSpace(lo))
	if err != nil {
		return fmt.Errorf("want MIN-MAX like 40ms-120ms: %w", err)
	}
	b, err := time.ParseDuration(strings.TrimSpace(hi))
	if err != nil {
		return fmt.Errorf("want MIN-MAX like 40ms-120ms: %w", err)
	}
	if a < 0 || b < a {
		return fmt.Errorf("want 0 <= MIN <= MAX, got %s", s)
	}
	r.v = [2]time.Duration{a, b}
	return nil
}
