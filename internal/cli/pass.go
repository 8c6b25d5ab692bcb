package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/tipreaper/tipreaper/internal/engine"
	"github.com/tipreaper/tipreaper/internal/policy"
	"github.com/tipreaper/tipreaper/internal/store"
)

func init() {
	register(newOnceCmd)
	register(newApplyCmd)
}

// newOnceCmd runs one pass now: migrate, pass, report.
func newOnceCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "once [flags]",
		Short: "one pass now (a dry run stores a plan)",
		Args:  noArgs,
	}
	jsonOut := cmd.Flags().Bool("json", false, "print the report as JSON instead of tables")
	dryRun := cmd.Flags().Bool("dry-run", false, "decide and record a plan, but change nothing in Partner Center")
	only := cmd.Flags().String("policy", "", "run only the policy `NAME`")
	cmd.RunE = e.run(func(ctx context.Context, _ []string) int {
		if *only != "" {
			// Checked here, not left to the engine, so a typo is a usage error (2), not a failed pass (1).
			cfg, ok := e.loadConfig(e.config)
			if !ok {
				return exitUsage
			}
			if _, found := cfg.Policy(*only); !found {
				fmt.Fprintf(e.stderr, "reaper once: --policy %q: no such policy in %s\n", *only, e.config)
				return exitUsage
			}
		}
		return e.pass(ctx, *jsonOut, func(o engine.Options) engine.Options {
			o.DryRun = *dryRun
			o.Policy = *only
			return o
		}, func(ctx context.Context, eng *engine.Engine) (*engine.Report, error) {
			return eng.Pass(ctx)
		})
	})
	return cmd
}

// newApplyCmd carries out a plan stored by `once --dry-run`.
func newApplyCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "apply <plan-id> [flags]",
		Short: "carry out a stored dry-run plan",
		Args:  exactArgs(1),
	}
	jsonOut := cmd.Flags().Bool("json", false, "print the report as JSON instead of tables")
	cmd.RunE = e.run(func(ctx context.Context, args []string) int {
		planID, err := uuid.Parse(args[0])
		if err != nil {
			fmt.Fprintf(e.stderr, "reaper apply: %q is not a plan id (a UUID printed by `reaper once --dry-run`)\n", args[0])
			return exitUsage
		}
		return e.pass(ctx, *jsonOut, nil, func(ctx context.Context, eng *engine.Engine) (*engine.Report, error) {
			return eng.Apply(ctx, planID)
		})
	})
	return cmd
}

// pass is the body of once and apply: config, store, engine, output.
func (e *env) pass(ctx context.Context, jsonOut bool, opts func(engine.Options) engine.Options,
	do func(context.Context, *engine.Engine) (*engine.Report, error)) int {
	cfg, ok := e.loadConfig(e.config)
	if !ok {
		return exitUsage
	}
	logger := e.logger(slog.LevelWarn)
	st, ok := e.openMigrated(ctx, cfg)
	if !ok {
		return exitPartial
	}
	defer st.Close()

	o := engine.Options{Config: cfg, Store: st, Connect: connect(cfg, logger), Logger: logger, Now: e.now}
	if opts != nil {
		o = opts(o)
	}
	out := newReportPrinter(e.stdout, e.config)
	if !jsonOut {
		o.OnEvent = out.event
		o.OnPlan = out.plan
	}
	rep, err := do(ctx, engine.New(o))
	if err != nil && rep == nil {
		fmt.Fprintf(e.stderr, "reaper: %s\n", printable(err.Error()))
		return exitPartial
	}
	if jsonOut {
		if err := writeJSON(e.stdout, rep); err != nil {
			fmt.Fprintf(e.stderr, "reaper: %v\n", err)
			return exitPartial
		}
	} else {
		out.report(rep)
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "reaper: %s\n", printable(err.Error()))
		return exitPartial
	}
	return rep.ExitCode()
}

// writeJSON writes v as indented JSON, with the runes a terminal acts on
// escaped (escapeJSON).
func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode JSON: %w", err)
	}
	b = append(escapeJSON(b), '\n')
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}

// reportPrinter prints a pass for people: each account's plan as a table
// before its first Partner Center change, a progress line per audit row while
// it works, then every customer with its outcome and the summary. The engine
// calls it from its workers.
type reportPrinter struct {
	w          io.Writer
	configPath string
	mu         sync.Mutex
}

func newReportPrinter(w io.Writer, configPath string) *reportPrinter {
	return &reportPrinter{w: w, configPath: configPath}
}

// plan prints one account's plan.
func (p *reportPrinter) plan(account string, items []engine.Item) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "plan of account %s:\n", printable(account))
	p.table(items, false)
	fmt.Fprintln(p.w)
}

// event prints one audit row.
func (p *reportPrinter) event(ev store.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	io.WriteString(p.w, progressLine(ev))
}

// progressLine is one audit row as one short line: time, customer, step, outcome, order.
func progressLine(ev store.Event) string {
	var b strings.Builder
	b.WriteString(ev.At.Local().Format("15:04:05"))
	b.WriteString("  ")
	who := ev.Domain
	if who == "" {
		who = ev.CustomerID
	}
	if who == "" {
		who = "account " + ev.Account
	}
	fmt.Fprintf(&b, "%-36s %-15s %-12s", printable(who), ev.Action, ev.Outcome)
	if ev.OrderID != "" {
		fmt.Fprintf(&b, " order %s", printable(ev.OrderID))
	}
	if ev.HTTPStatus != 0 {
		fmt.Fprintf(&b, " http %d", ev.HTTPStatus)
	}
	if ev.Error != "" {
		fmt.Fprintf(&b, " error: %s", oneLine(ev.Error))
	} else if ev.Detail != "" {
		fmt.Fprintf(&b, " %s", oneLine(ev.Detail))
	}
	return strings.TrimRight(b.String(), " ") + "\n"
}

// report prints every customer with its outcome and the summary of a finished pass.
func (p *reportPrinter) report(r *engine.Report) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintln(p.w)
	p.table(r.Items, true)
	fmt.Fprintln(p.w)
	p.summary(r)
}

// table prints items; with outcomes once the pass has run.
func (p *reportPrinter) table(items []engine.Item, outcomes bool) {
	if len(items) == 0 {
		fmt.Fprintln(p.w, "no customer is selected by any policy")
		return
	}
	tw := tabwriter.NewWriter(p.w, 0, 4, 2, ' ', 0)
	if outcomes {
		fmt.Fprintln(tw, "ACCOUNT\tCUSTOMER\tDOMAIN\tPOLICY\tAGE\tACTION\tOUTCOME\tREASON")
	} else {
		fmt.Fprintln(tw, "ACCOUNT\tCUSTOMER\tDOMAIN\tPOLICY\tAGE\tACTION\tREASON")
	}
	for _, it := range items {
		reason := it.Reason
		if it.Error != "" {
			reason = it.Error
		}
		if !it.DeleteAt.IsZero() {
			reason += "; deletes after " + it.DeleteAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t", printable(it.Account), printable(it.CustomerID), printable(it.Domain), printable(dash(it.Policy)),
			formatAge(it.Age), it.Action)
		if outcomes {
			fmt.Fprintf(tw, "%s\t", dash(it.Outcome))
		}
		fmt.Fprintf(tw, "%s\n", oneLine(reason))
	}
	tw.Flush()
}

func (p *reportPrinter) summary(r *engine.Report) {
	c := r.Counts
	fmt.Fprintf(p.w, "run %s  mode %s  status %s  (%s)\n", r.RunID, r.Mode, r.Status,
		r.Finished.Sub(r.Started).Round(time.Millisecond))
	fmt.Fprintf(p.w, "listed %d  selected %d  deleted %d  already gone %d  marked %d  skipped %d  failed %d  blocked %d\n",
		c.Listed, c.Selected, c.Deleted, c.AlreadyGone, c.Marked, c.Skipped, c.Failed, c.Blocked)
	for _, a := range r.Accounts {
		if a.Stopped {
			fmt.Fprintf(p.w, "account %s stopped before any change: %s\n", printable(a.Name), oneLine(a.Reason))
		}
	}
	if r.PlanID != uuid.Nil {
		fmt.Fprintf(p.w, "plan %s saved: carry it out with\n  reaper apply %s --config %s\n", r.PlanID, r.PlanID, p.configPath)
	}
}

// formatAge prints an age the way policies are written (7d, 12h), "-" when unknown.
func formatAge(d time.Duration) string {
	switch {
	case d <= 0:
		return "-"
	case d >= 24*time.Hour:
		return policy.Duration(d.Truncate(time.Hour)).String()
	case d >= time.Hour:
		return policy.Duration(d.Truncate(time.Minute)).String()
	default:
		return policy.Duration(d.Truncate(time.Second)).String()
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
