package cli

import (
	"context"
	"encoding/json"
	"errors"
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
		return e.pass(ctx, *jsonOut, uuid.Nil, func(o engine.Options) engine.Options {
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
		return e.pass(ctx, *jsonOut, planID, nil, func(ctx context.Context, eng *engine.Engine) (*engine.Report, error) {
			return eng.Apply(ctx, planID)
		})
	})
	return cmd
}

// pass is the body of once and apply (planID is the plan apply carries out,
// uuid.Nil for once): config, store, engine, output, exit code.
func (e *env) pass(ctx context.Context, jsonOut bool, planID uuid.UUID, opts func(engine.Options) engine.Options,
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
	out.applied = planID
	if !jsonOut {
		o.OnEvent = out.event
		o.OnPlan = out.plan
	}
	rep, err := do(ctx, engine.New(o))
	if err != nil && rep == nil {
		if planID != uuid.Nil && errors.Is(err, store.ErrNotFound) {
			// Only loading the plan finds nothing before a report exists.
			fmt.Fprintf(e.stderr, "reaper apply: no plan %s in %s; `reaper once --dry-run` prints the id of the plan it saves\n",
				planID, describeStore(cfg))
			return exitUsage
		}
		fmt.Fprintf(e.stderr, "reaper: %s\n", oneLine(err.Error()))
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
		fmt.Fprintf(e.stderr, "reaper: %s\n", oneLine(err.Error()))
		return exitPartial
	}
	if planID != uuid.Nil && len(unfinished(rep)) > 0 {
		// apply is one shot: a customer it did not finish is not handled,
		// even when the engine leaves it for the next pass to continue.
		return exitPartial
	}
	return rep.ExitCode()
}

// unfinished lists the items of a report that a pass started but did not
// finish: waiting for their orders to cancel, or interrupted.
func unfinished(r *engine.Report) []engine.Item {
	var out []engine.Item
	for _, it := range r.Items {
		if it.Outcome == engine.OutcomePending || it.Outcome == engine.OutcomeInterrupted {
			out = append(out, it)
		}
	}
	return out
}

// nothingLeft says whether an apply found nothing to do: every item of the
// plan was skipped (gone, protected or no longer selected since).
func nothingLeft(r *engine.Report) bool {
	for _, it := range r.Items {
		if it.Outcome != engine.OutcomeSkipped {
			return false
		}
	}
	return true
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
	applied    uuid.UUID // the plan an apply carries out; uuid.Nil for once
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
	dry := r.Mode == store.ModeDryRun
	stopped := 0
	for _, a := range r.Accounts {
		if a.Stopped {
			stopped++
			fmt.Fprintf(p.w, "account %s stopped before any change: %s\n", printable(a.Name), oneLine(a.Reason))
			if dry {
				fmt.Fprintf(p.w, "  no plan for account %s: once the cause is fixed, run `reaper once --dry-run` again\n", printable(a.Name))
			}
		}
	}
	switch {
	case dry && r.PlanID != uuid.Nil:
		n := 0
		for _, it := range r.Items {
			if it.Outcome == engine.OutcomeWouldDelete || it.Outcome == engine.OutcomeWouldMark {
				n++
			}
		}
		fmt.Fprintf(p.w, "plan %s saved (%d customers): carry it out with\n  reaper apply %s --config %s\n",
			r.PlanID, n, r.PlanID, p.configPath)
	case dry && stopped == len(r.Accounts) && stopped > 0:
		fmt.Fprintln(p.w, "no plan saved: every account stopped")
	case dry:
		fmt.Fprintln(p.w, "no plan saved: no customer would be deleted or marked")
	case p.applied != uuid.Nil && stopped == 0 && nothingLeft(r):
		fmt.Fprintf(p.w, "nothing left to do: no customer of plan %s is still to be deleted or marked (see REASON)\n", p.applied)
	}
	if p.applied != uuid.Nil {
		if left := unfinished(r); len(left) > 0 {
			fmt.Fprintf(p.w, "%d customers of plan %s are not finished (%s); the next pass continues them\n",
				len(left), p.applied, left[0].Outcome)
		}
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
