package cli

import (
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/tipreaper/tipreaper/internal/engine"
	"github.com/tipreaper/tipreaper/internal/store"
)

// The --json contract (README "JSON output"): snake_case keys, times in
// RFC 3339 UTC, durations as seconds (a number), ids as strings, and a value
// that is unknown or does not apply left out rather than written as a zero
// time, an empty string or a nil id. Counts and booleans are always written:
// their zero is a fact. These types are the contract; the engine's and the
// store's Go types may change without changing it, and a golden-file test
// pins it.

// jsonTime is t in RFC 3339 UTC, "" (left out) when zero.
func jsonTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// jsonID is id as a string, "" (left out) when nil.
func jsonID(id uuid.UUID) string {
	if id == uuid.Nil {
		return ""
	}
	return id.String()
}

// jsonSeconds is d in seconds, nil (left out) when d is not positive.
func jsonSeconds(d time.Duration) *float64 {
	if d <= 0 {
		return nil
	}
	s := d.Seconds()
	return &s
}

type reportOut struct {
	RunID           string       `json:"run_id"`
	PlanID          string       `json:"plan_id,omitempty"` // a dry run that saved a plan; the plan apply carried out
	Mode            string       `json:"mode"`              // live | dry_run
	Status          string       `json:"status"`            // succeeded | partial | failed | interrupted
	StartedAt       string       `json:"started_at"`
	FinishedAt      string       `json:"finished_at,omitempty"`
	DurationSeconds float64      `json:"duration_seconds"`
	Counts          countsOut    `json:"counts"`
	Accounts        []accountOut `json:"accounts"`
	Items           []itemOut    `json:"items"`
}

type countsOut struct {
	Listed      int `json:"listed"`
	Selected    int `json:"selected"`
	Deleted     int `json:"deleted"`
	AlreadyGone int `json:"already_gone"`
	Marked      int `json:"marked"`
	Skipped     int `json:"skipped"`
	Failed      int `json:"failed"`
	Blocked     int `json:"blocked"`
}

type accountOut struct {
	Name    string `json:"name"`
	Listed  int    `json:"listed"`
	Stopped bool   `json:"stopped"`
	Guard   string `json:"guard,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

type itemOut struct {
	Account     string   `json:"account"`
	CustomerID  string   `json:"customer_id"`
	Domain      string   `json:"domain,omitempty"`
	CompanyName string   `json:"company_name,omitempty"`
	Policy      string   `json:"policy,omitempty"`
	Action      string   `json:"action"` // delete | mark | wait | skip
	Reason      string   `json:"reason,omitempty"`
	AgeSeconds  *float64 `json:"age_seconds,omitempty"`
	DeleteAt    string   `json:"delete_at,omitempty"`
	Orders      []string `json:"orders,omitempty"`
	Outcome     string   `json:"outcome,omitempty"`
	Error       string   `json:"error,omitempty"`
}

// reportJSONOf is the --json form of a pass's report. planID is the plan an
// apply carried out (uuid.Nil for once).
func reportJSONOf(r *engine.Report, planID uuid.UUID) reportOut {
	out := reportOut{
		RunID: jsonID(r.RunID), PlanID: jsonID(r.PlanID), Mode: r.Mode, Status: string(r.Status),
		StartedAt: jsonTime(r.Started), FinishedAt: jsonTime(r.Finished),
		Counts: countsOut{Listed: r.Counts.Listed, Selected: r.Counts.Selected, Deleted: r.Counts.Deleted,
			AlreadyGone: r.Counts.AlreadyGone, Marked: r.Counts.Marked, Skipped: r.Counts.Skipped,
			Failed: r.Counts.Failed, Blocked: r.Counts.Blocked},
		Accounts: []accountOut{},
		Items:    []itemOut{},
	}
	if out.PlanID == "" {
		out.PlanID = jsonID(planID)
	}
	if !r.Finished.IsZero() && r.Finished.After(r.Started) {
		out.DurationSeconds = r.Finished.Sub(r.Started).Seconds()
	}
	for _, a := range r.Accounts {
		out.Accounts = append(out.Accounts, accountOut{Name: a.Name, Listed: a.Listed, Stopped: a.Stopped, Guard: a.Guard, Reason: a.Reason})
	}
	for _, it := range r.Items {
		out.Items = append(out.Items, itemOut{Account: it.Account, CustomerID: it.CustomerID, Domain: it.Domain,
			CompanyName: it.CompanyName, Policy: it.Policy, Action: it.Action, Reason: it.Reason,
			AgeSeconds: jsonSeconds(it.Age), DeleteAt: jsonTime(it.DeleteAt), Orders: it.Orders,
			Outcome: it.Outcome, Error: it.Error})
	}
	return out
}

type explanationOut struct {
	CustomerID string       `json:"customer_id"`
	Found      bool         `json:"found"`
	Account    string       `json:"account,omitempty"`
	Customer   *customerOut `json:"customer,omitempty"` // the store's row; left out when no pass has seen it
	AgeKnown   bool         `json:"age_known"`
	AgeSeconds *float64     `json:"age_seconds,omitempty"`
	AgeSource  string       `json:"age_source,omitempty"`
	Decision   decisionOut  `json:"decision"`
	NextPass   string       `json:"next_pass"`
	Recent     []eventOut   `json:"recent_events"`
}

type customerOut struct {
	Domain      string `json:"domain,omitempty"`
	CompanyName string `json:"company_name,omitempty"`
	State       string `json:"state"`
	Reason      string `json:"reason,omitempty"`
	Policy      string `json:"policy,omitempty"`
	StateAt     string `json:"state_at,omitempty"`
	FirstSeen   string `json:"first_seen,omitempty"`
	LastSeen    string `json:"last_seen,omitempty"`
	MarkedAt    string `json:"marked_at,omitempty"`
	DeleteAfter string `json:"delete_after,omitempty"`
	DeletedAt   string `json:"deleted_at,omitempty"`
}

type decisionOut struct {
	Verdict    string   `json:"verdict"` // not_selected | protected | too_young | age_unknown | mark | pending | expired
	Policy     string   `json:"policy,omitempty"`
	Selected   []string `json:"selected_by"`
	Protection string   `json:"protection,omitempty"`
	DeleteAt   string   `json:"delete_at,omitempty"`
	Reason     string   `json:"reason,omitempty"`
}

type eventOut struct {
	ID            string `json:"id"`
	RunID         string `json:"run_id,omitempty"`
	At            string `json:"at"`
	Account       string `json:"account,omitempty"`
	CustomerID    string `json:"customer_id,omitempty"`
	Domain        string `json:"domain,omitempty"`
	Policy        string `json:"policy,omitempty"`
	Action        string `json:"action"`
	OrderID       string `json:"order_id,omitempty"`
	Outcome       string `json:"outcome"`
	HTTPStatus    int    `json:"http_status,omitempty"`
	MSRequestID   string `json:"ms_request_id,omitempty"`
	CorrelationID string `json:"ms_correlation_id,omitempty"`
	Error         string `json:"error,omitempty"`
	Detail        string `json:"detail,omitempty"`
}

func explanationJSONOf(x *engine.Explanation) explanationOut {
	d := x.Decision
	out := explanationOut{
		CustomerID: x.CustomerID, Found: x.Found, Account: x.Account, AgeKnown: x.AgeKnown, AgeSource: x.AgeSource,
		Decision: decisionOut{Verdict: d.Verdict.String(), Policy: d.Policy, Selected: append([]string{}, d.Selected...),
			Protection: d.Protection, DeleteAt: jsonTime(d.DeleteAt), Reason: d.Reason},
		NextPass: x.NextPass,
		Recent:   []eventOut{},
	}
	if x.AgeKnown {
		out.AgeSeconds = jsonSeconds(x.Age)
	}
	if c := x.Customer; c.State != "" {
		out.Customer = &customerOut{Domain: c.Domain, CompanyName: c.CompanyName, State: c.State, Reason: c.Reason,
			Policy: c.Policy, StateAt: jsonTime(c.StateAt), FirstSeen: jsonTime(c.FirstSeen), LastSeen: jsonTime(c.LastSeen),
			MarkedAt: jsonTime(c.MarkedAt), DeleteAfter: jsonTime(c.DeleteAfter), DeletedAt: jsonTime(c.DeletedAt)}
	}
	for _, ev := range x.Recent {
		out.Recent = append(out.Recent, eventJSONOf(ev))
	}
	return out
}

func eventJSONOf(ev store.Event) eventOut {
	id := ""
	if ev.ID != 0 {
		id = strconv.FormatInt(ev.ID, 10)
	}
	return eventOut{ID: id, RunID: jsonID(ev.RunID), At: jsonTime(ev.At), Account: ev.Account, CustomerID: ev.CustomerID,
		Domain: ev.Domain, Policy: ev.Policy, Action: ev.Action, OrderID: ev.OrderID, Outcome: ev.Outcome,
		HTTPStatus: ev.HTTPStatus, MSRequestID: ev.MSRequestID, CorrelationID: ev.MSCorrelationID, Error: ev.Error, Detail: ev.Detail}
}

type keepOut struct {
	CustomerID string `json:"customer_id"`
	Reason     string `json:"reason,omitempty"`
	AddedBy    string `json:"added_by,omitempty"`
	AddedAt    string `json:"added_at"`
	Until      string `json:"until,omitempty"` // the keep lapses at this instant; left out: until removed
	Expired    bool   `json:"expired"`
}

func keepsJSONOf(keeps []store.Keep, now time.Time) []keepOut {
	out := []keepOut{}
	for _, k := range keeps {
		out = append(out, keepOut{CustomerID: k.CustomerID, Reason: k.Reason, AddedBy: k.AddedBy, AddedAt: jsonTime(k.AddedAt),
			Until: jsonTime(k.Until), Expired: !k.Until.IsZero() && !k.Until.After(now)})
	}
	return out
}
