package store

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Both stores keep microseconds (Postgres' precision) in UTC, so a value read back equals the one written.
func normTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}

// sqliteTimeLayout has a fixed width (six fractional digits, always "Z") so that SQLite, which compares
// text, orders and compares times correctly. time.RFC3339Nano drops trailing zeros and would not.
const sqliteTimeLayout = "2006-01-02T15:04:05.000000Z"

// timeCol scans a nullable time column of either store: time.Time from pgx, text from SQLite, NULL as zero.
type timeCol struct{ t *time.Time }

func (c timeCol) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*c.t = time.Time{}
	case time.Time:
		*c.t = normTime(v)
	case string:
		return c.parse(v)
	case []byte:
		return c.parse(string(v))
	default:
		return fmt.Errorf("scan time: unexpected %T", src)
	}
	return nil
}

func (c timeCol) parse(s string) error {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("scan time %q: %w", s, err)
	}
	*c.t = normTime(t)
	return nil
}

// textCol scans a nullable text column, NULL as "".
type textCol struct{ s *string }

func (c textCol) Scan(src any) error {
	var n sql.NullString
	if err := n.Scan(src); err != nil {
		return err
	}
	*c.s = n.String
	return nil
}

// intCol scans a nullable integer column, NULL as 0.
type intCol struct{ n *int }

func (c intCol) Scan(src any) error {
	var n sql.NullInt64
	if err := n.Scan(src); err != nil {
		return err
	}
	*c.n = int(n.Int64)
	return nil
}

// uuidCol scans a nullable uuid column, NULL as uuid.Nil.
type uuidCol struct{ u *uuid.UUID }

func (c uuidCol) Scan(src any) error {
	var n uuid.NullUUID
	if err := n.Scan(src); err != nil {
		return err
	}
	*c.u = n.UUID
	return nil
}

// Arguments: the zero value of an optional field is NULL, so plain SQL can say "IS NULL".
func textArg(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func intArg(n int) any {
	if n == 0 {
		return nil
	}
	return n
}

func uuidArg(u uuid.UUID) any {
	if u == uuid.Nil {
		return nil
	}
	return u.String()
}

// scanner is a row of either store (pgx.Row, pgx.Rows, *sql.Row, *sql.Rows).
type scanner interface{ Scan(dest ...any) error }

// Column lists shared by both stores' queries and the scan functions below; keep them in step.
const (
	runColumns = `id, started_at, finished_at, mode, status, policy, plan_id, instance_id, host, pid,
		listed, selected, deleted, already_gone, failed, blocked, skipped, marked, error, interrupted_at`
	eventColumns = `id, run_id, at, account, customer_id, domain, policy, action, order_id, outcome,
		http_status, ms_request_id, ms_correlation_id, error, detail`
	customerColumns = `account, customer_id, domain, company_name, first_seen, last_seen, state, reason,
		policy, state_at, marked_at, delete_after, deleted_at, correlation_id, pending_action,
		pending_order_id, pending_request_id`
	keepColumns = `customer_id, reason, added_by, added_at, until`
	planColumns = `id, created_at, run_id, policy, items`
)

func scanRun(r scanner) (Run, error) {
	var x Run
	var status string
	err := r.Scan(uuidCol{&x.ID}, timeCol{&x.StartedAt}, timeCol{&x.FinishedAt}, &x.Mode, &status,
		textCol{&x.Policy}, uuidCol{&x.PlanID}, uuidCol{&x.Instance}, textCol{&x.Host}, intCol{&x.PID},
		&x.Counts.Listed, &x.Counts.Selected, &x.Counts.Deleted, &x.Counts.AlreadyGone, &x.Counts.Failed,
		&x.Counts.Blocked, &x.Counts.Skipped, &x.Counts.Marked, textCol{&x.Error}, timeCol{&x.InterruptedAt})
	x.Status = RunStatus(status)
	return x, err
}

func scanEvent(r scanner) (Event, error) {
	var e Event
	err := r.Scan(&e.ID, uuidCol{&e.RunID}, timeCol{&e.At}, textCol{&e.Account}, textCol{&e.CustomerID},
		textCol{&e.Domain}, textCol{&e.Policy}, &e.Action, textCol{&e.OrderID}, &e.Outcome,
		intCol{&e.HTTPStatus}, textCol{&e.MSRequestID}, textCol{&e.MSCorrelationID}, textCol{&e.Error},
		textCol{&e.Detail})
	return e, err
}

func scanCustomer(r scanner) (CustomerState, error) {
	var c CustomerState
	err := r.Scan(&c.Account, &c.CustomerID, textCol{&c.Domain}, textCol{&c.CompanyName},
		timeCol{&c.FirstSeen}, timeCol{&c.LastSeen}, &c.State, textCol{&c.Reason}, textCol{&c.Policy},
		timeCol{&c.StateAt}, timeCol{&c.MarkedAt}, timeCol{&c.DeleteAfter}, timeCol{&c.DeletedAt},
		textCol{&c.CorrelationID}, textCol{&c.PendingAction}, textCol{&c.PendingOrderID},
		textCol{&c.PendingRequestID})
	return c, err
}

func scanKeep(r scanner) (Keep, error) {
	var k Keep
	err := r.Scan(&k.CustomerID, textCol{&k.Reason}, textCol{&k.AddedBy}, timeCol{&k.AddedAt}, timeCol{&k.Until})
	return k, err
}

func scanPlan(r scanner) (Plan, error) {
	var p Plan
	var items []byte
	if err := r.Scan(uuidCol{&p.ID}, timeCol{&p.CreatedAt}, uuidCol{&p.RunID}, textCol{&p.Policy}, &items); err != nil {
		return Plan{}, err
	}
	if err := json.Unmarshal(items, &p.Items); err != nil {
		return Plan{}, fmt.Errorf("decode items of plan %s: %w", p.ID, err)
	}
	if len(p.Items) == 0 {
		p.Items = nil // "[]" reads back as nil, as it was most likely written
	}
	return p, nil
}

func encodeItems(items []PlanItem) ([]byte, error) {
	if items == nil {
		items = []PlanItem{} // the column holds an array, never null
	}
	return json.Marshal(items)
}

// dedupeSightings keeps the last sighting of each customer, in first-seen order: one INSERT … ON CONFLICT
// cannot touch the same row twice.
func dedupeSightings(seen []Sighting) []Sighting {
	index := make(map[string]int, len(seen))
	out := make([]Sighting, 0, len(seen))
	for _, s := range seen {
		if i, ok := index[s.CustomerID]; ok {
			out[i] = s
			continue
		}
		index[s.CustomerID] = len(out)
		out = append(out, s)
	}
	return out
}

// orderCustomers returns rows in the order of seen (RETURNING gives no order guarantee).
func orderCustomers(seen []Sighting, rows []CustomerState) []CustomerState {
	byID := make(map[string]CustomerState, len(rows))
	for _, r := range rows {
		byID[r.CustomerID] = r
	}
	out := make([]CustomerState, 0, len(seen))
	for _, s := range seen {
		if r, ok := byID[s.CustomerID]; ok {
			out = append(out, r)
		}
	}
	return out
}

// lockKey is the advisory lock key of name: a stable 64-bit FNV-1a hash, so every tipreaper binary (any
// version, any host) computes the same key for the same account or instance.
func lockKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return int64(h.Sum64())
}

// redactURL shows a database url with its password (user info or password= parameter) replaced.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Parse errors quote the whole url; show only what cannot be secret.
		scheme, _, _ := strings.Cut(raw, "://")
		return scheme + "://(unparsable url)"
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// urlSecrets returns the password of a database url in every spelling an error message might quote.
func urlSecrets(raw string) []string {
	var out []string
	add := func(s string) {
		if s != "" {
			out = append(out, s, url.QueryEscape(s), url.PathEscape(s))
		}
	}
	if u, err := url.Parse(raw); err == nil {
		if u.User != nil {
			p, _ := u.User.Password()
			add(p)
		}
		add(u.Query().Get("password"))
	} else if _, rest, ok := strings.Cut(raw, "://"); ok {
		// Unparsable: take the user info by hand, so a driver message quoting it cannot leak it.
		if userinfo, _, ok := strings.Cut(rest, "@"); ok {
			if _, p, ok := strings.Cut(userinfo, ":"); ok {
				add(p)
			}
		}
	}
	return out
}

// redactedError hides secrets from the message of an error it still wraps (errors.Is keeps working).
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

func redactErr(err error, secrets []string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	for _, s := range secrets {
		msg = strings.ReplaceAll(msg, s, "xxxxx")
	}
	return &redactedError{msg: msg, err: err}
}

// Shared by both stores: SQLite reads $N as the N-th argument too.
const insertEventSQL = `INSERT INTO reaper_events (run_id, at, account, customer_id, domain, policy, action, order_id, outcome,
		http_status, ms_request_id, ms_correlation_id, error, detail)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`

func eventArgs(e Event, now time.Time, ts func(time.Time) any) []any {
	at := e.At
	if at.IsZero() {
		at = now
	}
	return []any{uuidArg(e.RunID), ts(at), textArg(e.Account), textArg(e.CustomerID), textArg(e.Domain),
		textArg(e.Policy), e.Action, textArg(e.OrderID), e.Outcome, intArg(e.HTTPStatus), textArg(e.MSRequestID),
		textArg(e.MSCorrelationID), textArg(e.Error), textArg(e.Detail)}
}

// customerArgs are the 17 values of customerColumns, with first_seen and state_at defaulting to now.
func customerArgs(cs CustomerState, now time.Time, ts func(time.Time) any) []any {
	if cs.FirstSeen.IsZero() {
		cs.FirstSeen = now
	}
	if cs.StateAt.IsZero() {
		cs.StateAt = now
	}
	return []any{cs.Account, cs.CustomerID, textArg(cs.Domain), textArg(cs.CompanyName), ts(cs.FirstSeen),
		ts(cs.LastSeen), cs.State, textArg(cs.Reason), textArg(cs.Policy), ts(cs.StateAt), ts(cs.MarkedAt),
		ts(cs.DeleteAfter), ts(cs.DeletedAt), textArg(cs.CorrelationID), textArg(cs.PendingAction),
		textArg(cs.PendingOrderID), textArg(cs.PendingRequestID)}
}
