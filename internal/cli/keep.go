package cli

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"

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

func runKeep(ctx context.Context, e *env, args []string) int {
	const synopsis = "add <customer-id> --reason TEXT [--until YYYY-MM-DD] [--by NAME] | list | rm <customer-id>; each takes [--config FILE]"
	if len(args) == 0 {
		fmt.Fprintf(e.stderr, "usage: reaper keep %s\n", synopsis)
		return exitUsage
	}
	switch args[0] {
	case "add":
		return keepAdd(ctx, e, args[1:])
	case "list", "ls":
		return keepList(ctx, e, args[1:])
	case "rm", "remove":
		return keepRemove(ctx, e, args[1:])
	case "-h", "-help", "--help", "help":
		fmt.Fprintf(e.stdout, "usage: reaper keep %s\n", synopsis)
		return exitOK
	default:
		fmt.Fprintf(e.stderr, "reaper keep: unknown subcommand %q\nusage: reaper keep %s\n", args[0], synopsis)
		return exitUsage
	}
}

func keepAdd(ctx context.Context, e *env, args []string) int {
	fs := e.newFlagSet("keep add")
	cfgPath := e.configFlag(fs)
	reason := fs.String("reason", "", "why the customer must stay (required)")
	until := fs.String("until", "", "keep through this `date` (YYYY-MM-DD, UTC); empty = until removed")
	by := fs.String("by", e.currentUser(), "who asks for the keep (default $USER)")
	pos, code, ok := e.parse(fs, args, "<customer-id> --reason TEXT [--until YYYY-MM-DD] [--by NAME] [--config FILE]", 1)
	if !ok {
		return code
	}
	id, err := customerID(pos[0])
	if err != nil {
		fmt.Fprintf(e.stderr, "reaper keep add: %v\n", err)
		return exitUsage
	}
	if strings.TrimSpace(*reason) == "" {
		fmt.Fprintln(e.stderr, "reaper keep add: --reason is required: the next person to read the keep list needs it")
		return exitUsage
	}
	now := e.now().UTC()
	k := store.Keep{CustomerID: id, Reason: *reason, AddedBy: *by, AddedAt: now}
	if *until != "" {
		d, err := time.Parse(dateLayout, *until)
		if err != nil {
			fmt.Fprintf(e.stderr, "reaper keep add: --until %q is not a date like 2027-01-31\n", *until)
			return exitUsage
		}
		// The keep covers the whole named day: it ends at the next midnight UTC.
		k.Until = d.AddDate(0, 0, 1)
		if !k.Until.After(now) {
			fmt.Fprintf(e.stderr, "reaper keep add: --until %s is in the past\n", *until)
			return exitUsage
		}
	}
	_, st, code, ok := e.configStore(ctx, *cfgPath)
	if !ok {
		return code
	}
	defer st.Close()
	if err := st.AddKeep(ctx, k); err != nil {
		fmt.Fprintf(e.stderr, "reaper keep add: %v\n", err)
		return exitPartial
	}
	fmt.Fprintf(e.stdout, "keeping %s %s: %s\n", id, untilText(k.Until), k.Reason)
	return exitOK
}

func keepList(ctx context.Context, e *env, args []string) int {
	fs := e.newFlagSet("keep list")
	cfgPath := e.configFlag(fs)
	if _, code, ok := e.parse(fs, args, "[--config FILE]", 0); !ok {
		return code
	}
	_, st, code, ok := e.configStore(ctx, *cfgPath)
	if !ok {
		return code
	}
	defer st.Close()
	keeps, err := st.Keeps(ctx)
	if err != nil {
		fmt.Fprintf(e.stderr, "reaper keep list: %v\n", err)
		return exitPartial
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
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.CustomerID, until, dash(k.AddedBy),
			k.AddedAt.UTC().Format(dateLayout), oneLine(k.Reason))
	}
	tw.Flush()
	return exitOK
}

func keepRemove(ctx context.Context, e *env, args []string) int {
	id, _, st, code, ok := e.customerCommand(ctx, "keep rm", args)
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
