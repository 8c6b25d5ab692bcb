package cli

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tipreaper/tipreaper/internal/policy"
	"github.com/tipreaper/tipreaper/internal/store"
)

func init() { register(newReportCmd) }

// reporter is what `reaper report` needs of a store: both stores answer from the views of migration 0004.
type reporter interface {
	Report(ctx context.Context, q store.ReportQuery) (store.ReportTable, error)
}

// newReportCmd is `report runs|deletions|blocked|customer`: the audit's common questions without SQL.
func newReportCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "report runs|deletions|blocked|customer",
		Short: "answer the audit's common questions: runs, deletions, blocked customers, a customer's history",
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 && args[0] == "help" {
				return cmd.Help()
			}
			if len(args) > 0 {
				fmt.Fprintf(e.stderr, "reaper report: unknown report %q\n", args[0])
			}
			fmt.Fprint(e.stderr, cmd.UsageString())
			return exitCode(exitUsage)
		},
	}
	cmd.AddCommand(
		newReportSubCmd(e, store.ReportRuns, "runs [flags]", "runs (passes and applies) with their counts, newest first", true, false),
		newReportSubCmd(e, store.ReportDeletions, "deletions [flags]", "confirmed deletions with the request id for Microsoft support, newest first", true, true),
		newReportSubCmd(e, store.ReportBlocked, "blocked [flags]", "customers that wait for a person, and why", false, true),
		newReportSubCmd(e, store.ReportCustomer, "customer <customer-id> [flags]", "one customer's whole history, in order", false, true),
	)
	return cmd
}

func newReportSubCmd(e *env, report, use, short string, since, account bool) *cobra.Command {
	cmd := &cobra.Command{Use: use, Short: short, Args: noArgs}
	if report == store.ReportCustomer {
		cmd.Args = exactArgs(1)
	}
	var sinceFlag, accountFlag *string
	if since {
		sinceFlag = cmd.Flags().String("since", "7d", "only the last `DURATION` (7d, 12h, 2w); 0 = all")
	}
	if account {
		accountFlag = cmd.Flags().String("account", "", "only this `ACCOUNT` (its name in the config)")
	}
	jsonOut := cmd.Flags().Bool("json", false, "print a JSON array of objects instead of a table")
	csvOut := cmd.Flags().Bool("csv", false, "print CSV with a header line instead of a table")
	cmd.RunE = e.run(func(ctx context.Context, args []string) int {
		name := "reaper report " + report
		q := store.ReportQuery{Report: report}
		if *jsonOut && *csvOut {
			fmt.Fprintf(e.stderr, "%s: --json and --csv exclude each other\n", name)
			return exitUsage
		}
		if sinceFlag != nil {
			d, err := policy.ParseDuration(*sinceFlag)
			if err != nil {
				fmt.Fprintf(e.stderr, "%s: --since: %v\n", name, err)
				return exitUsage
			}
			if d > 0 {
				q.Since = e.now().Add(-time.Duration(d))
			}
		}
		if accountFlag != nil {
			q.Account = *accountFlag
		}
		if report == store.ReportCustomer {
			id, err := customerID(args[0])
			if err != nil {
				fmt.Fprintf(e.stderr, "%s: %v\n", name, err)
				return exitUsage
			}
			q.CustomerID = id
		}
		_, st, code, ok := e.configStore(ctx, e.config)
		if !ok {
			return code
		}
		defer st.Close()
		r, ok := st.(reporter)
		if !ok {
			fmt.Fprintf(e.stderr, "%s: this store has no reports\n", name)
			return exitPartial
		}
		t, err := r.Report(ctx, q)
		if err != nil {
			fmt.Fprintf(e.stderr, "%s: %v\n", name, err)
			return exitPartial
		}
		switch {
		case *jsonOut:
			err = writeJSON(e.stdout, reportJSON(t))
		case *csvOut:
			err = writeReportCSV(e.stdout, t)
		default:
			err = writeReportTable(e.stdout, t)
		}
		if err != nil {
			fmt.Fprintf(e.stderr, "%s: %v\n", name, err)
			return exitPartial
		}
		return exitOK
	})
	return cmd
}

// reportText is a cell as text: times in RFC 3339 (UTC), NULL as "".
func reportText(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case string:
		return x
	}
	return fmt.Sprint(v)
}

// writeReportTable prints an aligned table; every value goes through oneLine, since domains, names, reasons
// and errors come from Partner Center or a person.
func writeReportTable(w io.Writer, t store.ReportTable) error {
	if len(t.Rows) == 0 {
		_, err := fmt.Fprintln(w, "(no rows)")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	var head []string
	for _, c := range t.Columns {
		head = append(head, strings.ToUpper(c.Name))
	}
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, row := range t.Rows {
		cells := make([]string, len(row))
		for i, v := range row {
			switch x := v.(type) {
			case nil:
				cells[i] = "-"
			case time.Time:
				cells[i] = x.UTC().Format("2006-01-02 15:04:05Z")
			case float64:
				cells[i] = strconv.FormatFloat(x, 'f', 1, 64)
			default:
				cells[i] = oneLine(reportText(v))
			}
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

// writeReportCSV prints a header line of the column names and a record per row.
func writeReportCSV(w io.Writer, t store.ReportTable) error {
	cw := csv.NewWriter(w)
	var head []string
	for _, c := range t.Columns {
		head = append(head, c.Name)
	}
	if err := cw.Write(head); err != nil {
		return fmt.Errorf("write CSV: %w", err)
	}
	for _, row := range t.Rows {
		rec := make([]string, len(row))
		for i, v := range row {
			rec[i] = reportText(v)
		}
		if err := cw.Write(rec); err != nil {
			return fmt.Errorf("write CSV: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write CSV: %w", err)
	}
	return nil
}

// reportRow is one row as a JSON object: the columns in the table's order, NULLs left out.
type reportRow struct {
	cols []store.ReportColumn
	vals []any
}

func (r reportRow) MarshalJSON() ([]byte, error) {
	var b strings.Builder
	b.WriteByte('{')
	first := true
	for i, c := range r.cols {
		v := r.vals[i]
		if v == nil {
			continue
		}
		if t, ok := v.(time.Time); ok {
			v = t.UTC().Format(time.RFC3339Nano)
		}
		k, err := json.Marshal(c.Name)
		if err != nil {
			return nil, err
		}
		val, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		b.Write(k)
		b.WriteByte(':')
		b.Write(val)
	}
	b.WriteByte('}')
	return []byte(b.String()), nil
}

// reportJSON is the table as a JSON array ([] when empty, never null).
func reportJSON(t store.ReportTable) []reportRow {
	out := make([]reportRow, 0, len(t.Rows))
	for _, row := range t.Rows {
		out = append(out, reportRow{t.Columns, row})
	}
	return out
}
