package deploy

import (
	"context"
	"database/sql"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver, to run the same SQL on both stores
	"github.com/stretchr/testify/require"

	"github.com/tipreaper/tipreaper/internal/store/storetest"
)

// auditedStores runs a live pass of the sandbox on a fresh PostgreSQL schema and a fresh SQLite file, and
// returns both databases holding that known audit: idOld1 and idOld2 deleted, idAncient blocked.
func auditedStores(t *testing.T) map[string]*sql.DB {
	t.Helper()
	pgURL := storetest.PostgresURL(t)
	dbs := map[string]*sql.DB{}
	for _, name := range []string{"postgres", "sqlite"} {
		sb := newSandbox(t)
		url := ""
		if name == "postgres" {
			url = pgURL
		}
		path := sb.writeConfig(t, url)
		r := reaper(t.Context(), "once", "--config", path)
		require.Contains(t, []int{0, 1}, r.code, "%s: %s", name, r)
		require.False(t, sb.present()[idOld1])

		var db *sql.DB
		var err error
		if name == "postgres" {
			db, err = sql.Open("pgx", pgURL)
		} else {
			db, err = sql.Open("sqlite", filepath.Join(filepath.Dir(path), "state", "reaper.db"))
		}
		require.NoError(t, err)
		t.Cleanup(func() { _ = db.Close() })
		dbs[name] = db
	}
	return dbs
}

// query runs one statement and returns its column names and rows, every value as text.
func query(ctx context.Context, db *sql.DB, stmt string) ([]string, [][]string, error) {
	rows, err := db.QueryContext(ctx, stmt)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, nil, err
	}
	var out [][]string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, nil, err
		}
		row := make([]string, len(cols))
		for i, v := range vals {
			row[i] = v.String
		}
		out = append(out, row)
	}
	return cols, out, rows.Err()
}

// statements splits a block into its statements (each ends with ";" at the end of a line).
func statements(block string) []string {
	var out []string
	for _, s := range regexp.MustCompile(`;\s*\n`).Split(block, -1) {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// auditSection returns the README's "Audit queries" section.
func auditSection(t *testing.T) string {
	t.Helper()
	readme := readmeText(t)
	a := strings.Index(readme, "\n## Audit queries\n")
	require.GreaterOrEqual(t, a, 0, "README.md has an Audit queries section")
	rest := readme[a+1:]
	if b := strings.Index(rest[3:], "\n## "); b >= 0 {
		rest = rest[:b+3]
	}
	return rest
}

func TestReadmeSQLRunsOnBothStores(t *testing.T) {
	section := auditSection(t)
	var blocks []sqlBlock
	for _, b := range readmeSQL(t) {
		switch {
		case strings.Contains(section, "```sql\n"+b.text+"```"):
			blocks = append(blocks, b)
		case strings.HasPrefix(b.text, "-- roles:"), strings.HasPrefix(b.text, "-- grants:"):
			// PostgreSQL only, as the README says; TestLeastPrivilegeRoles runs them.
		default:
			t.Fatalf("README.md:%d: an SQL example no test runs; put it under Audit queries or give it a test", b.line)
		}
	}
	require.GreaterOrEqual(t, len(blocks), 5)

	dbs := auditedStores(t)
	results := map[string]map[string][][]string{} // store → statement → rows
	for name, db := range dbs {
		results[name] = map[string][][]string{}
		for _, b := range blocks {
			for _, stmt := range statements(b.text) {
				_, rows, err := query(t.Context(), db, stmt)
				require.NoError(t, err, "README.md:%d on %s:\n%s", b.line, name, stmt)
				results[name][stmt] = rows
			}
		}
	}

	// The answers match the known audit, in both stores.
	column := func(rows [][]string, i int) []string {
		var out []string
		for _, r := range rows {
			out = append(out, r[i])
		}
		slices.Sort(out)
		return out
	}
	for name, res := range results {
		for stmt, rows := range res {
			switch {
			case strings.Contains(stmt, "FROM reaper_deletions"):
				require.Equal(t, []string{idOld1, idOld2}, column(rows, 2), "%s: %s", name, stmt)
			case strings.Contains(stmt, "FROM reaper_blocked"):
				require.Equal(t, []string{idAncient}, column(rows, 1), "%s: %s", name, stmt)
			case strings.Contains(stmt, "FROM reaper_run_summary"):
				require.Len(t, rows, 1, "%s: %s", name, stmt)
			case strings.Contains(stmt, "WHERE customer_id = '"+idOld1+"'"):
				require.Contains(t, column(rows, 3), "ok", "%s: %s", name, stmt)
				require.Equal(t, "delete", rows[len(rows)-1][2], "%s: the history ends with the delete", name)
			case strings.Contains(stmt, "FROM reaper_customers"):
				require.Equal(t, [][]string{{"blocked", rows[0][1], "1"}}, rows, "%s: %s", name, stmt)
			}
		}
	}
}

// The views have the same columns, in the same order, in both stores and in the README's table.
func TestReportViewsHaveTheDocumentedColumns(t *testing.T) {
	documented := map[string][]string{}
	for _, m := range regexp.MustCompile("(?m)^\\| `(reaper_[a-z_]+)` \\| [^|]+ \\| `([^`]+)` \\|$").FindAllStringSubmatch(auditSection(t), -1) {
		documented[m[1]] = strings.Split(m[2], ", ")
	}
	require.ElementsMatch(t, []string{"reaper_deletions", "reaper_failures", "reaper_blocked", "reaper_run_summary"}, keys(documented))
	for name, db := range auditedStores(t) {
		for view, want := range documented {
			cols, _, err := query(t.Context(), db, "SELECT * FROM "+view)
			require.NoError(t, err, "%s: %s", name, view)
			require.Equal(t, want, cols, "%s: %s", name, view)
		}
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
