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

	"github.com/spf13/cobra"

	"github.com/tipreaper/tipreaper/internal/pcsim"
)

// Identities of the simulated partner. Fixed, so a config pasted from one
// `reaper sim` keeps working against the next.
const (
	simTenantID = "7e1a5c3d-0b2f-4c6e-9a8d-5f4b3e2d1c0a"
	simClientID = "3c9b7a51-2d4e-4f60-8a1b-c2d3e4f5a6b7"
)

func init() { register(newSimCmd) }

// simFlags are the flags of `reaper sim`.
type simFlags struct {
	listen, seedFile, tenant, clientID, secret string
	latency, cancelDelay                       durationRange
	rate                                       int
	failure                                    float64
	chaos                                      bool
}

func newSimCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sim [flags]",
		Short: "serve the Partner Center simulator",
		Args:  noArgs,
	}
	f := &simFlags{
		latency:     durationRange{v: [2]time.Duration{40 * time.Millisecond, 120 * time.Millisecond}},
		cancelDelay: durationRange{v: [2]time.Duration{time.Second, 3 * time.Second}},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", "127.0.0.1:8080", "`address` to listen on")
	fl.StringVar(&f.seedFile, "seed", "", "YAML seed `FILE` of customers and orders (default: the demo sandbox)")
	fl.StringVar(&f.tenant, "tenant", simTenantID, "partner tenant `ID` tokens are issued for")
	fl.StringVar(&f.clientID, "client-id", simClientID, "accepted client `ID`")
	fl.StringVar(&f.secret, "client-secret", "", "accepted client `secret` (empty: any)")
	fl.Var(&f.latency, "latency", "per-request latency `MIN-MAX`")
	fl.Var(&f.cancelDelay, "cancel-delay", "per-order delay from cancel to cancelled, `MIN-MAX`")
	fl.IntVar(&f.rate, "rate", 500, "requests per minute per tenant before 429 (0: unlimited)")
	fl.Float64Var(&f.failure, "failure-rate", 0, "`fraction` of API requests answered 500/503")
	fl.BoolVar(&f.chaos, "chaos", false, "hostile mode: 5xx, answers lost after acting, 429 storms with long Retry-After, short-lived tokens, latency spikes, repeated and reordered listings")
	cmd.RunE = e.run(func(ctx context.Context, _ []string) int { return runSim(ctx, e, f) })
	return cmd
}

// runSim serves the Partner Center simulator until the context is cancelled.
func runSim(ctx context.Context, e *env, f *simFlags) int {
	listen, seedFile, tenant, clientID, secret := &f.listen, &f.seedFile, &f.tenant, &f.clientID, &f.secret
	latency, cancelDelay, rate, failure := &f.latency, &f.cancelDelay, &f.rate, &f.failure
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
	var chaos *pcsim.Chaos
	if f.chaos {
		c := pcsim.DefaultChaos()
		chaos = &c
	}
	sim := pcsim.New(pcsim.Config{
		Chaos:           chaos,
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
	fmt.Fprintf(e.stdout, "Partner Center simulator on %s: %d customers (tenant %s)\n", base, len(seed), *tenant)
	if chaos != nil {
		fmt.Fprintln(e.stdout, "Chaos mode: 5xx, answers lost after acting, 429 storms (Retry-After up to 3m), tokens refused after 5s, latency spikes, repeated and reordered listings.")
	}
	fmt.Fprintln(e.stdout)
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

// durationRange is a pflag.Value for "MIN-MAX" (or one duration for both).
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

func (r *durationRange) Type() string { return "range" }

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
