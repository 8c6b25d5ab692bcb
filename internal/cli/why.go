package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tipreaper/tipreaper/internal/engine"
	"github.com/tipreaper/tipreaper/internal/store"
)

func init() {
	register(newWhyCmd)
	register(newUnblockCmd)
}

// newWhyCmd explains one customer: what the store knows, what the policies
// say, and what the next pass would do.
func newWhyCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "why <customer-id> [flags]",
		Short: "explain what reaper knows and would do about a customer",
		Args:  exactArgs(1),
	}
	jsonOut := cmd.Flags().Bool("json", false, "print the explanation as JSON")
	cmd.RunE = e.run(func(ctx context.Context, args []string) int { return runWhy(ctx, e, args[0], *jsonOut) })
	return cmd
}

func runWhy(ctx context.Context, e *env, arg string, jsonOut bool) int {
	id, cfg, st, code, ok := e.customerCommand(ctx, "why", arg)
	if !ok {
		return code
	}
	defer st.Close()
	logger := e.logger(slog.LevelWarn)
	eng := engine.New(engine.Options{Config: cfg, Store: st, Connect: connect(cfg, st, logger), Logger: logger, Now: e.now})
	x, err := eng.Why(ctx, id)
	if err != nil {
		fmt.Fprintf(e.stderr, "reaper why: %s\n", oneLine(err.Error()))
		return exitPartial
	}
	if jsonOut {
		if err := writeJSON(e.stdout, explanationJSONOf(x)); err != nil {
			fmt.Fprintf(e.stderr, "reaper why: %v\n", err)
			return exitPartial
		}
		return exitOK
	}
	printExplanation(e.stdout, x)
	return exitOK
}

func printExplanation(w io.Writer, x *engine.Explanation) {
	line := func(label, format string, a ...any) {
		fmt.Fprintf(w, "%-10s %s\n", label, fmt.Sprintf(format, a...))
	}
	line("customer", "%s", printable(x.CustomerID))
	if !x.Found {
		line("found", "no: no account lists it and the store has never seen it")
		line("next pass", "%s", oneLine(x.NextPass))
		return
	}
	c := x.Customer
	line("account", "%s", printable(dash(x.Account)))
	line("domain", "%s", printable(dash(c.Domain)))
	line("company", "%s", printable(dash(c.CompanyName)))
	if c.State != "" {
		state := c.State
		if !c.StateAt.IsZero() {
			state += " since " + stamp(c.StateAt)
		}
		if c.Reason != "" {
			state += ": " + oneLine(c.Reason)
		}
		line("state", "%s", state)
		if !c.FirstSeen.IsZero() {
			line("seen", "first %s, last %s", stamp(c.FirstSeen), stamp(c.LastSeen))
		}
	} else {
		line("state", "not in the store yet (no pass has seen it)")
	}
	if x.AgeKnown {
		line("age", "%s, %s", formatAge(x.Age), oneLine(dash(x.AgeSource)))
	} else {
		line("age", "unknown (%s): an unknown age is never expired", oneLine(dash(x.AgeSource)))
	}
	d := x.Decision
	if len(d.Selected) > 0 {
		line("policies", "selected by %s", printable(strings.Join(d.Selected, ", ")))
	} else {
		line("policies", "no policy selects it")
	}
	if d.Protection != "" {
		line("protected", "%s", oneLine(d.Protection))
	} else {
		line("protected", "no")
	}
	if d.Reason != "" {
		line("decision", "%s", oneLine(d.Reason))
	}
	if !d.DeleteAt.IsZero() {
		line("delete at", "%s", stamp(d.DeleteAt))
	}
	line("next pass", "%s", oneLine(x.NextPass))
	if len(x.Recent) == 0 {
		return
	}
	fmt.Fprintln(w, "recent events:")
	for _, ev := range x.Recent {
		var b strings.Builder
		fmt.Fprintf(&b, "  %s  %-15s %-12s", stamp(ev.At), ev.Action, ev.Outcome)
		if ev.OrderID != "" {
			fmt.Fprintf(&b, " order %s", printable(ev.OrderID))
		}
		if ev.Error != "" {
			fmt.Fprintf(&b, " error: %s", oneLine(ev.Error))
		} else if ev.Detail != "" {
			fmt.Fprintf(&b, " %s", oneLine(ev.Detail))
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") }

// newUnblockCmd puts a blocked customer back to `seen`: a person resolved
// what blocked it (an order too old to cancel, a subscription), so the next
// pass may try again. Only a blocked customer is touched: unblocking anything
// else would skip a step of the state machine.
func newUnblockCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "unblock <customer-id> [flags]",
		Short: "a person resolved a blocked customer: let passes retry it",
		Args:  exactArgs(1),
	}
	cmd.RunE = e.run(func(ctx context.Context, args []string) int { return runUnblock(ctx, e, args[0]) })
	return cmd
}

func runUnblock(ctx context.Context, e *env, arg string) int {
	id, _, st, code, ok := e.customerCommand(ctx, "unblock", arg)
	if !ok {
		return code
	}
	defer st.Close()
	states, err := st.FindCustomer(ctx, id)
	if err != nil {
		fmt.Fprintf(e.stderr, "reaper unblock: %v\n", err)
		return exitPartial
	}
	if len(states) == 0 {
		fmt.Fprintf(e.stderr, "reaper unblock: %s is not known to the store\n", id)
		return exitPartial
	}
	user := e.currentUser()
	unblocked := 0
	for _, cs := range states {
		if cs.State != store.StateBlocked {
			fmt.Fprintf(e.stderr, "reaper unblock: %s in account %s is %s, not blocked: nothing to do\n", id, printable(cs.Account), cs.State)
			continue
		}
		now := e.now().UTC()
		was := cs.Reason
		cs.State = store.StateSeen
		cs.Reason = ""
		cs.StateAt = now
		cs.PendingAction, cs.PendingOrderID, cs.PendingRequestID = "", "", ""
		// A resolved customer needs a new mark and a full grace, like a failed one.
		cs.MarkedAt, cs.DeleteAfter = time.Time{}, time.Time{}
		ev := store.Event{At: now, Account: cs.Account, CustomerID: cs.CustomerID, Domain: cs.Domain, Policy: cs.Policy,
			Action: store.ActionResume, Outcome: store.OutcomeOK, Detail: "unblocked by " + user}
		if err := st.Transition(ctx, cs, ev); err != nil {
			fmt.Fprintf(e.stderr, "reaper unblock: %v\n", err)
			return exitPartial
		}
		unblocked++
		fmt.Fprintf(e.stdout, "unblocked %s (%s) in account %s; it was blocked: %s\n", id, printable(dash(cs.Domain)), printable(cs.Account), dash(oneLine(was)))
	}
	if unblocked == 0 {
		return exitPartial
	}
	fmt.Fprintln(e.stdout, "the next pass re-evaluates it from the start")
	return exitOK
}
