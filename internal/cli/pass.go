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
	yes := cmd.Flags().Bool("yes", false, "on a terminal, do not ask to type the account name before a live pass")
	verbose := cmd.Flags().BoolP("verbose", "v", false, "print every audit row as it is written instead of one live progress line")
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
		opts := func(o engine.Options) engine.Options {
			o.DryRun = *dryRun
			o.Policy = *only
			return o
		}
		out := outputOpts{json: *jsonOut, verbose: *verbose}
		if !*dryRun && !*yes && !*jsonOut && e.term.input {
			return e.confirmedPass(ctx, out, *only)
		}
		return e.pass(ctx, out, opts, func(ctx context.Context, eng *engine.Engine) (*engine.Report, error) {
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
	verbose := cmd.Flags().BoolP("verbose", "v", false, "print every audit row as it is written instead of one live progress line")
	cmd.RunE = e.run(func(ctx context.Context, args []string) int {
		planID, err := uuid.Parse(args[0])
		if err != nil {
			fmt.Fprintf(e.stderr, "reaper apply: %q is not a plan id (a UUID printed by `reaper once --dry-run`)\n", args[0])
			return exitUsage
		}
		return e.pass(ctx, outputOpts{json: *jsonOut, verbose: *verbose, planID: planID}, nil, func(ctx context.Context, eng *engine.Engine) (*engine.Report, error) {
			return eng.Apply(ctx, planID)
		})
	})
	return cmd
}

// outputOpts say how a pass is shown.
type outputOpts struct {
	json    bool      // the report as JSON, nothing else on stdout
	verbose bool      // every audit row (always so when stdout is not a terminal)
	noPlan  bool      // the plan was shown already (confirmedPass)
	planID  uuid.UUID // the plan apply carries out; uuid.Nil for once
}

// pass is the body of once and apply: config, store, engine, output, exit code.
func (e *env) pass(ctx context.Context, oo outputOpts, opts func(engine.Options) engine.Options,
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
	return e.passWith(ctx, cfg, st, logger, oo, opts, do)
}

// passWith runs do on an engine of cfg and st and prints what it did.
func (e *env) passWith(ctx context.Context, cfg *policy.Config, st store.Store, logger *slog.Logger, oo outputOpts,
	opts func(engine.Options) engine.Options, do func(context.Context, *engine.Engine) (*engine.Report, error)) int {
	jsonOut, planID := oo.json, oo.planID
	o := engine.Options{Config: cfg, Store: st, Connect: connect(cfg, st, logger), Logger: logger, Now: e.now}
	if opts != nil {
		o = opts(o)
	}
	out := newReportPrinter(e.stdout, e.config)
	out.applied = planID
	if !jsonOut {
		o.OnEvent = out.event
		if !oo.noPlan {
			o.OnPlan = out.plan
		} else if e.term.isTTY() && !oo.verbose {
			o.OnPlan = func(_ string, items []engine.Item) { out.live.plan(items) }
		}
		if e.term.isTTY() {
			out.fitTo(e.term.width())
			if !oo.verbose {
				out.live = newProgress(e.stdout, out.width, time.Now)
				out.live.startTicker()
			}
		}
	}
	rep, err := do(ctx, engine.New(o))
	if out.live != nil {
		out.live.stop()
	}
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
		if err := writeJSON(e.stdout, reportJSONOf(rep, planID)); err != nil {
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
	width      int       // > 0 on a terminal: every line is cut to it (fitTo)
	live       *progress // on a terminal without -v: one live line instead of a line per audit row
	mu         sync.Mutex
}

func newReportPrinter(w io.Writer, configPath string) *reportPrinter {
	return &reportPrinter{w: w, configPath: configPath}
}

// fitTo cuts every line the printer writes to width columns, for a terminal.
func (p *reportPrinter) fitTo(width int) {
	p.width = width
	p.w = &fitWriter{w: p.w, width: width}
}

// plan prints one account's plan.
func (p *reportPrinter) plan(account string, items []engine.Item) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.live != nil {
		p.live.mu.Lock()
		if p.live.shown {
			io.WriteString(p.live.w, "\r\x1b[K") // the table goes where the live line was; it is redrawn below
		}
		p.live.mu.Unlock()
	}
	fmt.Fprintf(p.w, "plan of account %s:\n", printable(account))
	p.table(items, false)
	fmt.Fprintln(p.w)
	if p.live != nil {
		p.live.plan(items)
	}
}

// event prints one audit row.
func (p *reportPrinter) event(ev store.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.live != nil {
		p.live.event(ev)
		return
	}
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
	// Plain output keeps its column order for scripts; a terminal cuts lines
	// at its width, so there what a person decides on comes first.
	order := []int{colAccount, colCustomer, colDomain, colPolicy, colAge, colAction, colOutcome, colReason}
	if p.width > 0 {
		order = []int{colAction, colOutcome, colDomain, colAge, colPolicy, colCustomer, colAccount, colReason}
	}
	row := func(cells [colCount]string) {
		var fields []string
		for _, c := range order {
			if c == colOutcome && !outcomes {
				continue
			}
			fields = append(fields, cells[c])
		}
		fmt.Fprintln(tw, strings.Join(fields, "\t"))
	}
	row([colCount]string{"ACCOUNT", "CUSTOMER", "DOMAIN", "POLICY", "AGE", "ACTION", "OUTCOME", "REASON"})
	for _, it := range items {
		reason := it.Reason
		if it.Error != "" {
			reason = it.Error
		}
		if !it.DeleteAt.IsZero() {
			reason += "; deletes after " + it.DeleteAt.UTC().Format(time.RFC3339)
		}
		row([colCount]string{printable(it.Account), printable(it.CustomerID), printable(it.Domain), printable(dash(it.Policy)),
			formatAge(it.Age), it.Action, dash(it.Outcome), oneLine(reason)})
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

// Columns of the plan and outcome tables.
const (
	colAccount = iota
	colCustomer
	colDomain
	colPolicy
	colAge
	colAction
	colOutcome
	colReason
	colCount
)

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

// confirmedPass is a live `once` on a terminal: a dry run shows the plan,
// a person types each account name it would change, and only then is that
// plan carried out (as `reaper apply` does, each customer re-checked). Any
// other answer changes nothing.
func (e *env) confirmedPass(ctx context.Context, oo outputOpts, only string) int {
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

	printer := newReportPrinter(e.stdout, e.config)
	printer.fitTo(e.term.width())
	dry := engine.New(engine.Options{Config: cfg, Store: st, Connect: connect(cfg, st, logger), Logger: logger, Now: e.now,
		DryRun: true, Policy: only, OnPlan: printer.plan})
	rep, err := dry.Pass(ctx)
	if err != nil {
		fmt.Fprintf(e.stderr, "reaper: %s\n", printable(err.Error()))
		return exitPartial
	}
	var accounts []string
	seen := map[string]bool{}
	for _, it := range rep.Items {
		if (it.Action == engine.ActionDelete || it.Action == engine.ActionMark) && !seen[it.Account] {
			seen[it.Account] = true
			accounts = append(accounts, it.Account)
		}
	}
	for _, a := range rep.Accounts {
		if a.Stopped {
			fmt.Fprintf(e.stdout, "account %s stopped before any change: %s\n", printable(a.Name), oneLine(a.Reason))
		}
	}
	if len(accounts) == 0 || rep.PlanID == uuid.Nil {
		fmt.Fprintln(e.stdout, "nothing to delete or mark: no change made")
		return rep.ExitCode()
	}
	if !confirm(ctx, e.stdin, e.stdout, accounts) {
		fmt.Fprintln(e.stdout, "not confirmed: no change made")
		return exitPartial
	}
	oo.noPlan, oo.planID = true, rep.PlanID
	return e.passWith(ctx, cfg, st, logger, oo, nil, func(ctx context.Context, eng *engine.Engine) (*engine.Report, error) {
		return eng.Apply(ctx, rep.PlanID)
	})
}
