package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// Reports are read from the views of migration 0004 (and, for one customer, from reaper_events), which
// have the same names and columns in both stores; a ReportTable holds the same Go values whichever store
// answered, so the cli prints, encodes and tests one shape.

// The reports a ReportQuery can ask for.
const (
	ReportRuns      = "runs"      // reaper_run_summary, newest first
	ReportDeletions = "deletions" // reaper_deletions, newest first
	ReportBlocked   = "blocked"   // reaper_blocked, longest blocked first
	ReportCustomer  = "customer"  // one customer's events, in the order written
)

// ReportQuery selects the rows of one report.
type ReportQuery struct {
	Report     string    // ReportRuns, ReportDeletions, ReportBlocked or ReportCustomer
	Since      time.Time // runs, deletions: only rows at or after it; zero = all
	Account    string    // deletions, blocked, customer: only this account; "" = all
	CustomerID string    // customer: required
}

// ColumnKind says which Go type a column's non-NULL values have in a ReportTable.
type ColumnKind int

// Column kinds.
const (
	KindText  ColumnKind = iota // string
	KindTime                    // time.Time, UTC
	KindInt                     // int64
	KindFloat                   // float64
)

// ReportColumn is one column of a report.
type ReportColumn struct {
	Name string // the view's column name (snake_case)
	Kind ColumnKind
}

// ReportTable is a report's answer: each row has one value per column, nil for NULL.
type ReportTable struct {
	Columns []ReportColumn
	Rows    [][]any
}

// reportSpec is how one report reads its view.
type reportSpec struct {
	from      string
	columns   []ReportColumn
	exprs     map[string]string // column → SQL expression, where it is not the column itself
	timeCol   string            // what Since bounds; "" = Since not allowed
	accounts  bool              // Account filter allowed
	customer  bool              // CustomerID required
	orderBy   string
	pgUUIDCol map[string]bool // uuid columns, read as text in PostgreSQL
}

var reportSpecs = map[string]reportSpec{
	ReportRuns: {
		from: "reaper_run_summary",
		columns: []ReportColumn{{"run_id", KindText}, {"started_at", KindTime}, {"duration_seconds", KindFloat},
			{"mode", KindText}, {"status", KindText}, {"policy", KindText}, {"listed", KindInt}, {"selected", KindInt},
			{"deleted", KindInt}, {"already_gone", KindInt}, {"failed", KindInt}, {"blocked", KindInt},
			{"skipped", KindInt}, {"marked", KindInt}, {"error", KindText}},
		timeCol: "started_at", orderBy: "started_at DESC, run_id DESC",
		pgUUIDCol: map[string]bool{"run_id": true},
	},
	ReportDeletions: {
		from: "reaper_deletions",
		columns: []ReportColumn{{"at", KindTime}, {"account", KindText}, {"customer_id", KindText},
			{"domain", KindText}, {"company_name", KindText}, {"policy", KindText}, {"outcome", KindText},
			{"ms_request_id", KindText}, {"run_id", KindText}},
		timeCol: "at", accounts: true, orderBy: "at DESC, customer_id",
		pgUUIDCol: map[string]bool{"run_id": true},
	},
	ReportBlocked: {
		from: "reaper_blocked",
		columns: []ReportColumn{{"account", KindText}, {"customer_id", KindText}, {"domain", KindText},
			{"company_name", KindText}, {"policy", KindText}, {"blocked_since", KindTime}, {"reason", KindText}},
		accounts: true, orderBy: "blocked_since, account, customer_id",
	},
	ReportCustomer: {
		from: "reaper_events",
		columns: []ReportColumn{{"at", KindTime}, {"account", KindText}, {"action", KindText}, {"outcome", KindText},
			{"order_id", KindText}, {"http_status", KindInt}, {"ms_request_id", KindText}, {"what", KindText},
			{"run_id", KindText}},
		exprs:    map[string]string{"what": "coalesce(error, detail)"},
		accounts: true, customer: true, orderBy: "id",
		pgUUIDCol: map[string]bool{"run_id": true},
	},
}

// reportSQL builds the query of q; ts turns a time into the store's argument.
func reportSQL(q ReportQuery, postgres bool, ts func(time.Time) any) (reportSpec, string, []any, error) {
	spec, ok := reportSpecs[q.Report]
	if !ok {
		return spec, "", nil, fmt.Errorf("report %q: no such report", q.Report)
	}
	var sel []string
	for _, c := range spec.columns {
		expr := c.Name
		if e, ok := spec.exprs[c.Name]; ok {
			expr = e
		}
		if postgres && spec.pgUUIDCol[c.Name] {
			expr += "::text"
		}
		if expr != c.Name {
			expr += " AS " + c.Name
		}
		sel = append(sel, expr)
	}
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if !q.Since.IsZero() {
		if spec.timeCol == "" {
			return spec, "", nil, fmt.Errorf("report %s: no time to bound with since", q.Report)
		}
		where = append(where, spec.timeCol+" >= "+arg(ts(q.Since)))
	}
	if q.Account != "" {
		if !spec.accounts {
			return spec, "", nil, fmt.Errorf("report %s: not per account", q.Report)
		}
		where = append(where, "account = "+arg(q.Account))
	}
	if spec.customer {
		if q.CustomerID == "" {
			return spec, "", nil, fmt.Errorf("report %s: which customer?", q.Report)
		}
		where = append(where, "customer_id = "+arg(q.CustomerID))
	}
	stmt := "SELECT " + strings.Join(sel, ", ") + " FROM " + spec.from
	if len(where) > 0 {
		stmt += " WHERE " + strings.Join(where, " AND ")
	}
	return spec, stmt + " ORDER BY " + spec.orderBy, args, nil
}

// reportCell scans one column of a report into the Go type of its kind, NULL as nil.
type reportCell struct {
	kind ColumnKind
	v    any
}

func (c *reportCell) Scan(src any) error {
	if src == nil {
		c.v = nil
		return nil
	}
	switch c.kind {
	case KindTime:
		var t time.Time
		if err := (timeCol{&t}).Scan(src); err != nil {
			return err
		}
		c.v = t
	case KindInt:
		var n sql.NullInt64
		if err := n.Scan(src); err != nil {
			return err
		}
		c.v = n.Int64
	case KindFloat:
		var f sql.NullFloat64
		if err := f.Scan(src); err != nil {
			return err
		}
		c.v = f.Float64
	default:
		var s sql.NullString
		if err := s.Scan(src); err != nil {
			return err
		}
		c.v = s.String
	}
	return nil
}

// scanReport reads every row of rows (either store's) into a table of spec's columns.
func scanReport(spec reportSpec, next func() bool, scan func(...any) error) (ReportTable, error) {
	t := ReportTable{Columns: spec.columns}
	for next() {
		cells := make([]reportCell, len(spec.columns))
		dest := make([]any, len(cells))
		for i, c := range spec.columns {
			cells[i].kind = c.Kind
			dest[i] = &cells[i]
		}
		if err := scan(dest...); err != nil {
			return t, err
		}
		row := make([]any, len(cells))
		for i := range cells {
			row[i] = cells[i].v
		}
		t.Rows = append(t.Rows, row)
	}
	return t, nil
}

// Report answers a report from the PostgreSQL store.
func (s *postgresStore) Report(ctx context.Context, q ReportQuery) (ReportTable, error) {
	spec, stmt, args, err := reportSQL(q, true, pgTime)
	if err != nil {
		return ReportTable{}, err
	}
	rows, err := s.pool.Query(ctx, stmt, args...)
	if err != nil {
		return ReportTable{}, fmt.Errorf("report %s: %w", q.Report, err)
	}
	defer rows.Close()
	t, err := scanReport(spec, rows.Next, rows.Scan)
	if err == nil {
		err = rows.Err()
	}
	if err != nil {
		return ReportTable{}, fmt.Errorf("report %s: %w", q.Report, err)
	}
	return t, nil
}

// Report answers a report from the SQLite store.
func (s *sqliteStore) Report(ctx context.Context, q ReportQuery) (ReportTable, error) {
	spec, stmt, args, err := reportSQL(q, false, sqliteTime)
	if err != nil {
		return ReportTable{}, err
	}
	rows, err := s.db.QueryContext(ctx, stmt, args...)
	if err != nil {
		return ReportTable{}, fmt.Errorf("report %s: %w", q.Report, err)
	}
	defer rows.Close()
	t, err := scanReport(spec, rows.Next, rows.Scan)
	if err == nil {
		err = rows.Err()
	}
	if err != nil {
		return ReportTable{}, fmt.Errorf("report %s: %w", q.Report, err)
	}
	return t, nil
}
