package cli

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/tipreaper/tipreaper/internal/engine"
	"github.com/tipreaper/tipreaper/internal/pcsim"
	"github.com/tipreaper/tipreaper/internal/policy"
	"github.com/tipreaper/tipreaper/internal/store"
)

//go:embed demo.yaml
var demoConfig []byte

// demoAccount is the account name in demo.yaml.
const demoAccount = "demo"

// uncancellableAge is how old a sandbox order may get before Partner Center
// refuses to cancel it (the wire contract): a customer holding an older one is
// blocked, and the demo expects that.
const uncancellableAge = 60 * 24 * time.Hour

func init() { register(newDemoCmd) }

func newDemoCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "demo [flags]",
		Short: "a live pass against the built-in simulator with an embedded store",
		Args:  noArgs,
	}
	keepState := cmd.Flags().Bool("keep-state", true, "keep the demo's state directory after the demo (--keep-state=false removes it)")
	cmd.RunE = e.run(func(ctx context.Context, _ []string) int { return runDemo(ctx, e, keepState) })
	return cmd
}

// runDemo is the README's first command: one live pass against an in-process
// simulator, with a fresh SQLite store, then a check against the simulator
// that the pass deleted what it should and nothing else.
func runDemo(ctx context.Context, e *env, keepState *bool) int {
	now := e.now()

	// The simulator: the demo sandbox, behind a real loopback listener so the
	// pass goes through the same HTTP client as against Partner Center.
	secret, err := randomSecret()
	if err != nil {
		fmt.Fprintf(e.stderr, "reaper demo: %v\n", err)
		return exitPartial
	}
	sim := pcsim.New(pcsim.Config{
		PartnerTenantID: simTenantID,
		ClientID:        simClientID,
		ClientSecret:    secret,
		CancelDelay:     [2]time.Duration{time.Second, 3 * time.Second},
		Latency:         [2]time.Duration{20 * time.Millisecond, 60 * time.Millisecond},
		RatePerMinute:   500,
		Seed:            now.UnixNano(),
	})
	seeded := map[string]pcsim.SeedCustomer{}
	var order []string
	for _, c := range pcsim.DemoSeed(now) {
		id, err := sim.AddCustomer(c)
		if err != nil {
			fmt.Fprintf(e.stderr, "reaper demo: seed the simulator: %v\n", err)
			return exitPartial
		}
		c.ID = id
		seeded[id] = c
		order = append(order, id)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintf(e.stderr, "reaper demo: %v\n", err)
		return exitPartial
	}
	srvCtx, stopServer := context.WithCancel(context.WithoutCancel(ctx))
	served := make(chan error, 1)
	go func() { served <- serve(srvCtx, ln, sim) }()
	defer func() {
		stopServer()
		if err := <-served; err != nil {
			fmt.Fprintf(e.stderr, "reaper demo: simulator: %v\n", err)
		}
	}()
	baseURL := "http://" + ln.Addr().String()

	dir, err := os.MkdirTemp("", "reaper-demo-")
	if err != nil {
		fmt.Fprintf(e.stderr, "reaper demo: %v\n", err)
		return exitPartial
	}
	if !*keepState {
		defer os.RemoveAll(dir)
	}

	// The embedded config goes through policy.Parse, the path a user's file takes.
	vars := map[string]string{"DEMO_URL": baseURL, "DEMO_STATE_DIR": dir, "DEMO_CLIENT_SECRET": secret}
	cfg, err := policy.Parse("demo.yaml", demoConfig, func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
	if err != nil {
		e.printConfigError("demo.yaml", err)
		return exitPartial
	}
	st, ok := e.openMigrated(ctx, cfg)
	if !ok {
		return exitPartial
	}
	defer st.Close()

	fmt.Fprintf(e.stdout, "Partner Center simulator on %s with %d customers (the demo sandbox)\n", baseURL, len(seeded))
	fmt.Fprintf(e.stdout, "store: SQLite at %s\n", filepath.Join(dir, "reaper.db"))
	fmt.Fprintf(e.stdout, "policy ci-leftovers: domain ^ci-[0-9a-f]{8}\\.onmicrosoft\\.com$, older than 72h, keep company ^CI golden\n\n")

	logger := e.logger(slog.LevelWarn)
	out := newReportPrinter(e.stdout, "demo.yaml")
	eng := engine.New(engine.Options{Config: cfg, Store: st, Connect: connect(cfg, st, logger), Logger: logger,
		OnEvent: out.event, Now: e.now})
	rep, err := eng.Pass(ctx)
	if err != nil && rep == nil {
		fmt.Fprintf(e.stderr, "reaper demo: %v\n", err)
		return exitPartial
	}
	out.report(rep)
	if err != nil {
		fmt.Fprintf(e.stderr, "reaper demo: %v\n", err)
		return exitPartial
	}

	fmt.Fprintln(e.stdout, "\nself-check against the simulator:")
	ok = demoCheck(e.stdout, cfg, rep, seeded, order, sim.Customers(), now)
	fmt.Fprintf(e.stdout, "\nThe audit trail is in %s; try\n  sqlite3 %s 'select at, domain, action, outcome, order_id from reaper_events order by id'\n",
		dir, filepath.Join(dir, "reaper.db"))
	if !ok {
		return exitPartial
	}
	return exitOK
}

// demoCheck compares what the pass did with what the simulator now holds, using
// the seed as the truth rather than the engine's view: a customer outside the
// policy, protected or too young must still be there; one the pass deleted
// must be gone; a blocked one must hold an order too old to cancel.
func demoCheck(w io.Writer, cfg *policy.Config, rep *engine.Report, seeded map[string]pcsim.SeedCustomer,
	order []string, remaining []string, now time.Time) bool {
	present := map[string]bool{}
	for _, id := range remaining {
		present[id] = true
	}
	items := map[string]engine.Item{}
	for _, it := range rep.Items {
		items[it.CustomerID] = it
	}
	var bad []string
	var outside, protected, young, deleted, blocked int
	for _, id := range order {
		c := seeded[id]
		d := cfg.Decide(demoAccount, policy.Subject{ID: id, Domain: c.Domain, CompanyName: c.CompanyName,
			Age: now.Sub(c.CreatedAt), AgeKnown: true}, nil, now, "")
		it := items[id]
		switch {
		case it.Outcome == engine.OutcomeDeleted || it.Outcome == engine.OutcomeAlreadyGone:
			if present[id] {
				bad = append(bad, fmt.Sprintf("%s (%s) was reported deleted but is still in Partner Center", c.Domain, id))
			}
			if d.Verdict != policy.Expired {
				bad = append(bad, fmt.Sprintf("%s (%s) was deleted but the policy says %s: %s", c.Domain, id, d.Verdict, d.Reason))
			}
			deleted++
		case d.Verdict == policy.NotSelected, d.Verdict == policy.Protected, d.Verdict == policy.TooYoung:
			if !present[id] {
				bad = append(bad, fmt.Sprintf("%s (%s) is gone but the policy says %s: %s", c.Domain, id, d.Verdict, d.Reason))
				continue
			}
			switch d.Verdict {
			case policy.NotSelected:
				outside++
			case policy.Protected:
				protected++
			default:
				young++
			}
		case it.Outcome == engine.OutcomeBlocked:
			if !present[id] {
				bad = append(bad, fmt.Sprintf("%s (%s) is blocked yet gone", c.Domain, id))
			}
			if !hasUncancellableOrder(c, now) {
				bad = append(bad, fmt.Sprintf("%s (%s) is blocked without an order older than 60 days: %s", c.Domain, id, it.Error))
			}
			blocked++
		case !present[id]:
			bad = append(bad, fmt.Sprintf("%s (%s) is gone though the pass did not delete it", c.Domain, id))
		default:
			bad = append(bad, fmt.Sprintf("%s (%s) is expired but was not deleted: %s %s", c.Domain, id, dash(it.Outcome), it.Error))
		}
	}
	fmt.Fprintf(w, "  ✓ %d customers outside the policy are untouched\n", outside)
	fmt.Fprintf(w, "  ✓ %d protected customers (company ^CI golden) are still there\n", protected)
	fmt.Fprintf(w, "  ✓ %d customers younger than 72h are still there\n", young)
	fmt.Fprintf(w, "  ✓ %d deleted customers are gone from Partner Center\n", deleted)
	if blocked > 0 {
		fmt.Fprintf(w, "  ✓ %d blocked as expected: an order older than 60 days cannot be cancelled through the API,\n"+
			"    so the customer cannot be deleted; a person must resolve it, then `reaper unblock <customer-id>`\n", blocked)
	}
	if rep.Counts.Failed > 0 {
		bad = append(bad, fmt.Sprintf("%d customers failed", rep.Counts.Failed))
	}
	if rep.Status == store.RunFailed || rep.Status == store.RunInterrupted {
		bad = append(bad, fmt.Sprintf("the pass did not complete: %s", rep.Status))
	}
	for _, b := range bad {
		fmt.Fprintf(w, "  ✗ %s\n", oneLine(b))
	}
	if len(bad) == 0 {
		fmt.Fprintln(w, "demo ok")
	}
	return len(bad) == 0
}

func hasUncancellableOrder(c pcsim.SeedCustomer, now time.Time) bool {
	for _, o := range c.Orders {
		if o.NeverCancels || (o.Status != "cancelled" && now.Sub(o.CreatedAt) > uncancellableAge) {
			return true
		}
	}
	return false
}

func randomSecret() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random client secret: %w", err)
	}
	return hex.EncodeToString(b), nil
}
