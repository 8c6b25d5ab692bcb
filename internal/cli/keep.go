package cli

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tipreaper/tipreaper/internal/store"
)

// guidPattern is the only shape a Partner Center customer id takes. Checking
// it catches a domain or a typo pasted where an id belongs, which would
// otherwise be stored as a keep that protects nothing.
var guidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// customerID validates and normalises a customer id argument.
func customerID(s string) (string, error) {
	if !guidPattern.MatchString(s) {
		return "", fmt.Errorf("%q is not a customer id (a GUID like 0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0)", s)
	}
	return strings.ToLower(s), nil
}

const dateLayout = "2006-01-02"

// maxUntilYear is the last year a --until may name.
const maxUntilYear = 9998

func init() { register(newKeepCmd) }

// newKeepCmd is `keep add|list|rm`: the protections people add by hand.
func newKeepCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keep add|list|rm",
		Short: "protect customers from deletion",
		// Without a subcommand, or with an unknown one: usage error.
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 && args[0] == "help" {
				return cmd.Help()
			}
			if len(args) > 0 {
				fmt.Fprintf(e.stderr, "reaper keep: unknown subcommand %q\n", args[0])
			}
			fmt.Fprint(e.stderr, cmd.UsageString())
			return exitCode(exitUsage)
		},
	}
	cmd.AddCommand(newKeepAddCmd(e), newKeepListCmd(e), newKeepRemoveCmd(e))
	return cmd
}

func newKeepAddCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "add <customer-id> --reason TEXT [flags]",
		Short: "keep a customer: no policy deletes it while the keep lasts",
		Args:  exactArgs(1),
	}
	reason := cmd.Flags().String("reason", "", "`TEXT`: why the customer must stay (required)")
	until := cmd.Flags().String("until", "", "keep through this `date` (YYYY-MM-DD, UTC); empty = until removed")
	by := cmd.Flags().String("by", "", "`NAME` of who asks for the keep (default $USER)")
	cmd.RunE = e.run(func(ctx context.Context, args []string) int {
		if *by == "" {
			*by = e.currentUser()
		}
		return keepAdd(ctx, e, args[0], *reason, *until, *by)
	})
	return cmd
}

func keepAdd(ctx context.Context, e *env, arg, reason, until, by string) int {
	id, err := customerID(arg)
	if err != nil {
		fmt.Fprintf(e.stderr, "reaper keep add: %v\n", err)
		return exitUsage
	}
	if strings.TrimSpace(reason) == "" {
		fmt.Fprintln(e.stderr, "reaper keep add: --reason is required: the next person to read the keep list needs it")
		return exitUsage
	}
	now := e.now().UTC()
	k := store.Keep{CustomerID: id, Reason: reason, AddedBy: by, AddedAt: now}
	if until != "" {
		d, err := time.Parse(dateLayout, until)
		if err != nil {
			fmt.Fprintf(e.stderr, "reaper keep add: --until %q is not a date like 2027-01-31\n", until)
			return exitUsage
		}
		if d.Year() > maxUntilYear {
			// The store keeps four-digit years, and the keep ends the next day.
			fmt.Fprintf(e.stderr, "reaper keep add: --until %s is past %d-12-31, the latest a keep may last; leave --until out for a keep without end\n", until, maxUntilYear)
			return exitUsage
		}
		// The keep covers the whole named day: it ends at the next midnight UTC.
		k.Until = d.AddDate(0, 0, 1)
		if !k.Until.After(now) {
			fmt.Fprintf(e.stderr, "reaper keep add: --until %s is in the past\n", until)
			return exitUsage
		}
	}
	_, st, code, ok := e.configStore(ctx, e.config)
	if !ok {
		return code
	}
	defer st.Close()
	if err := st.AddKeep(ctx, k); err != nil {
		fmt.Fprintf(e.stderr, "reaper keep add: %v\n", err)
		return exitPartial
	}
	fmt.Fprintf(e.stdout, "keeping %s %s: %s\n", id, untilText(k.Until), oneLine(k.Reason))
	return exitOK
}

func newKeepListCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "list [flags]",
		Aliases: []string{"ls"},
		Short:   "list the keeps, with who added them and why",
		Args:    noArgs,
	}
	jsonOut := cmd.Flags().Bool("json", false, "print the keeps as a JSON array")
	cmd.RunE = e.run(func(ctx context.Context, _ []string) int { return keepList(ctx, e, *jsonOut) })
	return cmd
}

func keepList(ctx context.Context, e *env, jsonOut bool) int {
	_, st, code, ok := e.configStore(ctx, e.config)
	if !ok {
		return code
	}
	defer st.Close()
	keeps, err := st.Keeps(ctx)
	if err != nil {
		fmt.Fprintf(e.stderr, "reaper keep list: %v\n", err)
		return exitPartial
	}
	if jsonOut {
		if err := writeJSON(e.stdout, keepsJSONOf(keeps, e.now())); err != nil {
			fmt.Fprintf(e.stderr, "reaper keep list: %v\n", err)
			return exitPartial
		}
		return exitOK
	}
	if len(keeps) == 0 {
		fmt.Fprintln(e.stdout, "no keeps")
		return exitOK
	}
	now := e.now()
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CUSTOMER\tUNTIL\tBY\tADDED\tREASON")
	for _, k := range keeps {
		until := "-"
		if !k.Until.IsZero() {
			until = k.Until.Add(-time.Second).UTC().Format(dateLayout)
			if !k.Until.After(now) {
				until += " (expired)"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", printable(k.CustomerID), until, printable(dash(k.AddedBy)),
			k.AddedAt.UTC().Format(dateLayout), oneLine(k.Reason))
	}
	tw.Flush()
	return exitOK
}

func newKeepRemoveCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "rm <customer-id> [flags]",
		Aliases: []string{"remove"},
		Short:   "remove the keep of a customer",
		Args:    exactArgs(1),
	}
	cmd.RunE = e.run(func(ctx context.Context, args []string) int { return keepRemove(ctx, e, args[0]) })
	return cmd
}

func keepRemove(ctx context.Context, e *env, arg string) int {
	id, _, st, code, ok := e.customerCommand(ctx, "keep rm", arg)
	if !ok {
		return code
	}
	defer st.Close()
	removed, err := st.RemoveKeep(ctx, id)
	if err != nil {
		fmt.Fprintf(e.stderr, "reaper keep rm: %v\n", err)
		return exitPartial
	}
	if !removed {
		fmt.Fprintf(e.stderr, "reaper keep rm: no keep for %s\n", id)
		return exitPartial
	}
	fmt.Fprintf(e.stdout, "removed the keep of %s\n", id)
	return exitOK
}

func untilText(until time.Time) string {
	if until.IsZero() {
		return "until the keep is removed"
	}
	return "through " + until.Add(-time.Second).UTC().Format(dateLayout)
}
