package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"

	"github.com/tipreaper/tipreaper/internal/pc"
	"github.com/tipreaper/tipreaper/internal/policy"
	"github.com/tipreaper/tipreaper/internal/store"
)

// PartnerCenter is what a pass needs of Partner Center; *pc.Client implements it.
type PartnerCenter interface {
	ListCustomers(ctx context.Context) ([]pc.Customer, error)
	ListOrders(ctx context.Context, customerID string) ([]pc.Order, error)
	CancelOrder(ctx context.Context, customerID, orderID string) (pc.Order, error)
	DeleteCustomer(ctx context.Context, customerID string) error
	ListActivity(ctx context.Context, start, end time.Time) ([]pc.ActivityRecord, error)
	TokenTenantID(ctx context.Context) (string, error)
	// ClockSkew is the answer with the largest skew between its Date header
	// and the local clock since the previous call; ok is false when none had
	// a Date.
	ClockSkew() (r pc.ClockReading, ok bool)
}

// Options configure an Engine. Config, Store and Connect are required.
type Options struct {
	Config *policy.Config
	Store  store.Store
	// Connect returns the Partner Center client of an account. The engine
	// calls it once per account and keeps the client across passes, so its
	// token cache and rate limiter outlive a single pass.
	Connect func(policy.Account) (PartnerCenter, error)
	DryRun  bool
	Policy  string // only this policy ("" = all)
	Logger  *slog.Logger
	OnEvent func(store.Event) // every audit row, as it is written
	// OnPlan receives each account's plan once it is decided, before the
	// account's first mutating call. It may be called from several goroutines.
	OnPlan func(account string, plan []Item)
	Now    func() time.Time
	// LeaseTTL is how long an account's lease lasts unless renewed
	// (DefaultLeaseTTL when zero). The pass renews it every quarter of it.
	LeaseTTL time.Duration
}

// DefaultLeaseTTL is how long an account's lease lasts without renewal. A
// pass renews it every 15 s and stops working the account 45 s after the
// start of its last successful renewal; a stand-by takes the account over
// once it has expired (at once when the holder's process is gone).
const DefaultLeaseTTL = time.Minute

// Engine runs passes. It is safe to call Pass from one goroutine at a time;
// the daemon never overlaps two passes.
type Engine struct {
	o   Options
	log *slog.Logger

	mu      sync.Mutex
	clients map[string]PartnerCenter
	models  map[string]*cancelModel // per account: when orders read cancelled (poll.go)
	added   map[string]*addedLog    // per account: the activity log read so far (activity.go)
}

// New returns an Engine for the options.
func New(o Options) *Engine {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = DefaultLeaseTTL
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Engine{o: o, log: log, clients: map[string]PartnerCenter{}}
}

// Report is what a pass did.
type Report struct {
	RunID    uuid.UUID
	PlanID   uuid.UUID // set by a dry run: the stored plan that `reaper apply` takes
	Mode     string    // live | dry_run
	Status   store.RunStatus
	Counts   store.Counts
	Accounts []AccountReport
	Items    []Item
	Started  time.Time
	Finished time.Time
}

// AccountReport says how one account's pass went.
type AccountReport struct {
	Name        string
	Listed      int    // distinct customers listed
	Stopped     bool   // a listing error or a guard stopped it (before any mutation, except an order id defect: before any further one)
	Guard       string // which guard stopped it (Guard… constants); "" when not stopped
	Held        bool   // another tipreaper held the account: nothing was done
	Reason      string // why it stopped or was held
	AuditErrors int    // audit writes that failed after their retries: the audit lacks rows the next pass reconciles
}

// Guards that stop an account's pass before any mutating call. They name the
// guard in AccountReport.Guard and in the daemon's reaper_guard_stops_total,
// so an alert can tell a listing outage from a policy that selects too much.
const (
	GuardLease    = "lease"                 // the account's lease could not be taken, or was lost mid-pass
	GuardConnect  = "connect"               // no Partner Center client for the account
	GuardListing  = "listing"               // the customer listing failed or was partial
	GuardStore    = "store"                 // the store could not record or read what the decision needs
	GuardFraction = "max_selected_fraction" // a policy selects more than its max_selected_fraction
	GuardTenant   = "tenant"                // the token's tenant is not the account's partner_tenant_id
	// GuardListingDefect: a customer id that is not a GUID, one id listed with two profiles, or an order
	// id not of the contract's form (that one stops the account before any further mutation).
	GuardListingDefect = "listing_defect"
	GuardClock         = "clock" // the local clock is more than 5 minutes from Partner Center's Date header
)

// Item is one customer of the plan and what happened to it.
type Item struct {
	Account     string
	CustomerID  string
	Domain      string
	CompanyName string
	Policy      string
	Action      string // delete | mark | wait | skip
	Reason      string
	Age         time.Duration
	DeleteAt    time.Time
	Orders      []string
	Outcome     string
	Error       string
	RequestID   string // MS-RequestId of the customer's DELETE, once sent
	// Standing says the customer was already blocked (or reappeared) before
	// this pass and still is: reported, but not a new problem of this pass.
	Standing bool

	selected bool // a delete candidate of this pass (Counts.Selected)
}

// Plan actions.
const (
	ActionDelete = "delete"
	ActionMark   = "mark"
	ActionWait   = "wait"
	ActionSkip   = "skip"
)

// Item outcomes.
const (
	OutcomeDeleted     = "deleted"
	OutcomeAlreadyGone = "already_gone"
	OutcomeFailed      = "failed"
	OutcomeBlocked     = "blocked"
	OutcomeMarked      = "marked"
	OutcomeSkipped     = "skipped"
	OutcomeWouldDelete = "would_delete"
	OutcomeWouldMark   = "would_mark"
	OutcomeInterrupted = "interrupted"
	OutcomePending     = "pending"
	OutcomeReappeared  = "reappeared"
)

// ExitCode is the process exit code for the report: 0 when every selected
// customer was handled, 1 otherwise. A dry run's status says whether it
// planned every account (see statusOf).
func (r *Report) ExitCode() int {
	if r.Status == store.RunSucceeded {
		return 0
	}
	return 1
}

// Pass runs one pass over every configured account (or the account of
// Options.Policy). Cancelling ctx stops it gracefully: no customer is started
// after that, and in-flight steps get limits.drain_timeout to finish.
func (e *Engine) Pass(ctx context.Context) (*Report, error) {
	return e.run(ctx, nil)
}

// Apply carries out a plan stored by a dry run, and nothing else. Each
// customer is re-checked just before its first mutating call.
func (e *Engine) Apply(ctx context.Context, planID uuid.UUID) (*Report, error) {
	plan, err := e.o.Store.Plan(ctx, planID)
	if err != nil {
		// The store's error names the plan: "plan <id>: not found".
		return nil, fmt.Errorf("apply: %w", err)
	}
	maxAge := time.Duration(e.o.Config.Limits.PlanMaxAge)
	if age := e.o.Now().Sub(plan.CreatedAt); maxAge > 0 && age > maxAge {
		return nil, fmt.Errorf("plan %s is %s old, older than limits.plan_max_age %s: make a new one with `reaper once --dry-run`",
			planID, age.Round(time.Second), maxAge)
	}
	return e.run(ctx, &plan)
}

// accountParallelism bounds how many accounts are worked at once. Each
// account has its own rate limit, so accounts are independent; the bound only
// keeps a large fleet from opening thousands of connections at once.
const accountParallelism = 16

func (e *Engine) run(ctx context.Context, plan *store.Plan) (*Report, error) {
	accounts, err := e.accounts(plan)
	if err != nil {
		return nil, err
	}
	now := e.o.Now()
	dry := e.o.DryRun && plan == nil
	mode := store.ModeLive
	if dry {
		mode = store.ModeDryRun
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, fmt.Errorf("new run id: %w", err)
	}
	r := &Report{RunID: id, Mode: mode, Started: now}
	if _, err := e.o.Store.CloseDeadRuns(ctx, now); err != nil {
		return nil, fmt.Errorf("close runs of dead processes: %w", err)
	}
	run := store.Run{ID: id, StartedAt: now, Mode: mode, Status: store.RunRunning, Policy: e.o.Policy}
	if plan != nil {
		run.PlanID = plan.ID
	}
	if err := e.o.Store.StartRun(ctx, run); err != nil {
		return nil, fmt.Errorf("start run: %w", err)
	}
	log := e.log.With("run_id", id.String(), "mode", mode)
	log.Info("pass started", "accounts", len(accounts))

	results := make([]*accountPass, len(accounts))
	var g errgroup.Group
	g.SetLimit(accountParallelism)
	for i, a := range accounts {
		p := &accountPass{e: e, runID: id, acct: a, dry: dry, plan: plan, log: log.With("account", a.Name)}
		results[i] = p
		g.Go(func() error {
			p.run(ctx)
			return nil
		})
	}
	_ = g.Wait()

	for _, p := range results {
		r.Accounts = append(r.Accounts, p.report)
		r.Items = append(r.Items, p.items...)
	}
	r.Counts = countItems(r)
	r.Status = statusOf(ctx, r, dry, plan != nil)
	r.Finished = e.o.Now()

	// The run row must be closed even when the pass was cancelled.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if dry {
		if err := e.savePlan(fctx, r); err != nil {
			r.Status = store.RunFailed
			_ = e.o.Store.FinishRun(fctx, id, r.Status, r.Counts, err.Error())
			return r, err
		}
	}
	if err := e.o.Store.FinishRun(fctx, id, r.Status, r.Counts, stopReasons(r)); err != nil {
		return r, fmt.Errorf("finish run %s: %w", id, err)
	}
	log.Info("pass finished", "status", r.Status, "deleted", r.Counts.Deleted, "failed", r.Counts.Failed,
		"blocked", r.Counts.Blocked, "duration_s", r.Finished.Sub(r.Started).Seconds())
	return r, nil
}

// statusOf is how the pass ended. A customer already blocked or reappeared
// before the pass and still so is reported but is no new problem: only one
// that became blocked or failed in this pass, or an audit write that failed,
// makes the pass partial. A dry run succeeded when it planned every account:
// what it found about customers is its plan, not a failure.
func statusOf(ctx context.Context, r *Report, dry, apply bool) store.RunStatus {
	for _, a := range r.Accounts {
		if a.Stopped {
			return store.RunFailed
		}
	}
	for _, it := range r.Items {
		if it.Outcome == OutcomeInterrupted {
			return store.RunInterrupted
		}
	}
	if ctx.Err() != nil {
		return store.RunInterrupted
	}
	for _, a := range r.Accounts {
		// A stand-by's pass over an account the leader works is normal; an
		// apply or a dry run that could not work an account did not do its job.
		if a.AuditErrors > 0 || a.Held && (dry || apply) {
			return store.RunPartial
		}
	}
	if dry {
		return store.RunSucceeded
	}
	for _, it := range r.Items {
		switch it.Outcome {
		case OutcomeFailed:
			return store.RunPartial
		case OutcomeBlocked, OutcomeReappeared:
			if !it.Standing {
				return store.RunPartial
			}
		}
	}
	return store.RunSucceeded
}

// countItems derives the run's counts from the report: nothing is counted by
// hand along the way.
func countItems(r *Report) store.Counts {
	var c store.Counts
	for _, a := range r.Accounts {
		c.Listed += a.Listed
	}
	for _, it := range r.Items {
		if it.selected {
			c.Selected++
		}
		switch it.Outcome {
		case OutcomeDeleted:
			c.Deleted++
		case OutcomeAlreadyGone:
			c.AlreadyGone++
		case OutcomeFailed:
			c.Failed++
		case OutcomeBlocked, OutcomeReappeared:
			c.Blocked++
		case OutcomeSkipped:
			c.Skipped++
		case OutcomeMarked, OutcomeWouldMark:
			c.Marked++
		}
	}
	return c
}

func stopReasons(r *Report) string {
	var errs []error
	for _, a := range r.Accounts {
		if a.Stopped {
			errs = append(errs, fmt.Errorf("account %s: %s", a.Name, a.Reason))
		}
		if a.AuditErrors > 0 {
			errs = append(errs, fmt.Errorf("account %s: %d audit writes failed; the next pass reconciles the customers they concern", a.Name, a.AuditErrors))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err.Error()
	}
	return ""
}

// accounts returns the accounts a pass works: all, those of the --policy, or
// those named by the plan.
func (e *Engine) accounts(plan *store.Plan) ([]policy.Account, error) {
	want := map[string]bool{}
	switch {
	case plan != nil:
		for _, it := range plan.Items {
			want[it.Account] = true
		}
	case e.o.Policy != "":
		for _, p := range e.o.Config.Policies {
			if p.Name == e.o.Policy {
				want[p.Account] = true
			}
		}
		if len(want) == 0 {
			return nil, fmt.Errorf("no policy named %q in %s", e.o.Policy, e.o.Config.File)
		}
	default:
		for _, a := range e.o.Config.Accounts {
			want[a.Name] = true
		}
	}
	var out []policy.Account
	for _, a := range e.o.Config.Accounts {
		if want[a.Name] {
			out = append(out, a)
			delete(want, a.Name)
		}
	}
	if len(want) > 0 {
		missing := make([]string, 0, len(want))
		for name := range want {
			missing = append(missing, name)
		}
		slices.Sort(missing)
		return nil, fmt.Errorf("accounts %v are not configured in %s", missing, e.o.Config.File)
	}
	return out, nil
}

func (e *Engine) client(a policy.Account) (PartnerCenter, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if c, ok := e.clients[a.Name]; ok {
		return c, nil
	}
	c, err := e.o.Connect(a)
	if err != nil {
		return nil, fmt.Errorf("connect account %s: %w", a.Name, err)
	}
	e.clients[a.Name] = c
	return c, nil
}

func (e *Engine) savePlan(ctx context.Context, r *Report) error {
	id, err := uuid.NewV7()
	if err != nil {
		return fmt.Errorf("new plan id: %w", err)
	}
	p := store.Plan{ID: id, CreatedAt: r.Started, RunID: r.RunID, Policy: e.o.Policy}
	for _, it := range r.Items {
		if it.Action != ActionDelete && it.Action != ActionMark {
			continue
		}
		if it.Outcome != OutcomeWouldDelete && it.Outcome != OutcomeWouldMark {
			continue
		}
		p.Items = append(p.Items, store.PlanItem{Account: it.Account, CustomerID: it.CustomerID, Domain: it.Domain,
			CompanyName: it.CompanyName, Policy: it.Policy, Action: it.Action, Orders: it.Orders})
	}
	if len(p.Items) == 0 {
		// Nothing to carry out (nothing selected, or every account
		// stopped): no plan, so `apply` is never offered one that does nothing.
		return nil
	}
	if err := e.o.Store.SavePlan(ctx, p); err != nil {
		return fmt.Errorf("save plan: %w", err)
	}
	r.PlanID = id
	return nil
}
