package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

// ErrNotFound is returned (wrapped) when a run or plan asked for does not exist.
var ErrNotFound = errors.New("not found")

// ErrLeaseLost is returned (wrapped) by RenewLease, TransitionIf and AppendEventsIf when the lease is no
// longer its holder's: it expired, was released, or another holder took the account over.
var ErrLeaseLost = errors.New("account lease lost")

// ErrProtected is returned (wrapped) by TransitionIf with Guard.Unprotected when an unexpired
// reaper_keep row protects the customer; the message names the keep's reason:
// "customer protected: reaper_keep: <reason>".
var ErrProtected = errors.New("customer protected")

// Lease is one holder's leadership of an account (a row of reaper_leases). A holder may work the account
// while now < ExpiresAt; the database's clock decides. Token (the fencing token) grows with every new
// acquisition of the account, so an older holder's Token is always smaller than a newer one's.
type Lease struct {
	Account   string
	Holder    uuid.UUID // unique per acquisition
	Token     int64
	ExpiresAt time.Time
}

// Guard is what a write must find true in its own transaction before it writes anything.
type Guard struct {
	// Lease, if set: it must still be held (same holder and token, not expired); else ErrLeaseLost.
	Lease *Lease
	// Unprotected: no unexpired reaper_keep row may protect the customer; else ErrProtected.
	Unprotected bool
}

// Store is tipreaper's audit and state persistence. Implementations are safe for concurrent use.
type Store interface {
	// Migrate brings the schema up to date. Open does not migrate; callers do, once, at start.
	Migrate(ctx context.Context) error
	// Close releases the database and the instance's liveness lock: its runs and leases then count as dead.
	Close() error

	// AcquireLease makes a new holder the leader of account for ttl if no one else holds an unexpired
	// lease; ok is false (and l zero) while another holder does. Every acquisition gets a new Holder and
	// a Token larger than any before it for this account.
	AcquireLease(ctx context.Context, account string, ttl time.Duration) (l Lease, ok bool, err error)
	// RenewLease extends a held lease to ttl from now. An error wrapping ErrLeaseLost says the lease
	// expired or was taken over: its holder must stop working the account.
	RenewLease(ctx context.Context, l Lease, ttl time.Duration) (Lease, error)
	// ReleaseLease ends a held lease at once so that another holder need not wait for its expiry. A lease
	// already lost is not an error.
	ReleaseLease(ctx context.Context, l Lease) error
	// TransitionIf is Transition, done only if g holds when checked in the same transaction: the lease
	// (else an error wrapping ErrLeaseLost) and, with g.Unprotected, no unexpired reaper_keep row for the
	// customer (else an error wrapping ErrProtected, naming the keep's reason). On either error nothing
	// is written.
	TransitionIf(ctx context.Context, g Guard, cs CustomerState, evs ...Event) error
	// AppendEventsIf is AppendEvents, done only if g.Lease (if set) is still held; else an error wrapping
	// ErrLeaseLost and nothing is written. g.Unprotected is not allowed: events name no single customer.
	AppendEventsIf(ctx context.Context, g Guard, evs ...Event) error

	// StartRun records r as running, owned by this Store's instance. Status, FinishedAt, Counts,
	// Error and Instance of r are ignored; a zero StartedAt means now.
	StartRun(ctx context.Context, r Run) error
	// FinishRun records how run id ended: status (not running), its counts and error text.
	FinishRun(ctx context.Context, id uuid.UUID, status RunStatus, c Counts, errText string) error
	// CloseDeadRuns marks running runs whose owning instance is gone as interrupted at now and says how
	// many it marked. It never touches this Store's own runs.
	CloseDeadRuns(ctx context.Context, now time.Time) (int, error)
	// Runs returns the latest runs, newest first; limit <= 0 means all.
	Runs(ctx context.Context, limit int) ([]Run, error)

	// AppendEvents writes evs in one transaction. A zero At means now.
	AppendEvents(ctx context.Context, evs ...Event) error
	// Transition writes the customer's new state and the events recording the step in one transaction:
	// either all of it is stored or none. The customer row is replaced by cs, except that FirstSeen
	// stays what it was and LastSeen only moves forward.
	Transition(ctx context.Context, cs CustomerState, evs ...Event) error

	// Sight records that account lists these customers at time at: new ones get state seen and
	// first_seen = at; known ones keep first_seen (and their state) and get last_seen, domain and
	// company name updated. A known customer absent from the account's previous listing (its last_seen
	// is older than the account's latest, and at is newer than that) is listed again: its first_seen
	// restarts at at and its row comes back with Resighted set. Callers sight only complete listings.
	// It returns the rows, in the order of seen (duplicates dropped). A zero at means now.
	Sight(ctx context.Context, account string, seen []Sighting, at time.Time) ([]CustomerState, error)
	// Customer returns the customer's row in account; ok is false when there is none.
	Customer(ctx context.Context, account, customerID string) (cs CustomerState, ok bool, err error)
	// FindCustomer returns the customer's rows in every account, by account name.
	FindCustomer(ctx context.Context, customerID string) ([]CustomerState, error)
	// CustomerEvents returns every event of the customer, oldest first.
	CustomerEvents(ctx context.Context, customerID string) ([]Event, error)
	// InFlight returns account's customers that a pass left between selected and deleted
	// (selected, cancelling, awaiting_cancel, deleting), by customer id.
	InFlight(ctx context.Context, account string) ([]CustomerState, error)
	// CustomersIn returns account's customers whose state is one of states, by customer id; no states
	// returns none. The engine's reconcile reads ReconcileStates with it.
	CustomersIn(ctx context.Context, account string, states ...string) ([]CustomerState, error)
	// CustomerCounts returns how many customers each account has in each state, by account then
	// state; states without customers are absent. The daemon's metrics read it at every scrape.
	CustomerCounts(ctx context.Context) ([]StateCount, error)

	// AddKeep protects a customer, replacing any protection it had. A zero AddedAt means now.
	AddKeep(ctx context.Context, k Keep) error
	// RemoveKeep removes a protection and says whether there was one.
	RemoveKeep(ctx context.Context, customerID string) (bool, error)
	// Keeps returns every protection, lapsed ones too (Until in the past), by customer id.
	Keeps(ctx context.Context) ([]Keep, error)

	// CancelTiming returns the account's learned cancellation timing; ok is false when none was saved.
	CancelTiming(ctx context.Context, account string) (ct CancelTiming, ok bool, err error)
	// SaveCancelTiming stores the account's cancellation timing, replacing what was saved. A zero
	// UpdatedAt means now.
	SaveCancelTiming(ctx context.Context, ct CancelTiming) error

	// RefreshToken returns the account's newest kept refresh token, sealed; ok is false when none was kept.
	RefreshToken(ctx context.Context, account string) (t SealedToken, ok bool, err error)
	// SaveRefreshToken keeps the account's newest refresh token, sealed, replacing the kept one unless that
	// was stored later (a slower process never puts back an older token). A zero StoredAt means now.
	SaveRefreshToken(ctx context.Context, t SealedToken) error

	// SavePlan stores a new plan. A zero CreatedAt means now.
	SavePlan(ctx context.Context, p Plan) error
	// Plan returns the plan id, or an error wrapping ErrNotFound.
	Plan(ctx context.Context, id uuid.UUID) (Plan, error)
}

// Open opens the store a configuration names. url "" is the zero-set-up default: the SQLite file
// reaper.db in stateDir (created 0700 if missing), which other processes may open at the same time
// (passes exclude each other per account by lease, not per process). A postgres:// or postgresql://
// url opens a pgx pool. Open does not migrate, and no error it returns shows a password.
func Open(ctx context.Context, url, stateDir string) (Store, error) {
	scheme, _, _ := strings.Cut(url, "://")
	switch {
	case url == "":
		return openSQLite(ctx, stateDir)
	case strings.EqualFold(scheme, "postgres") || strings.EqualFold(scheme, "postgresql"):
		return openPostgres(ctx, url)
	default:
		return nil, fmt.Errorf("open store %s: unsupported database url: want postgres://… or postgresql://…, or none for SQLite in the state dir", redactURL(url))
	}
}

// RunStatus is how a run stands: running, or how it ended.
type RunStatus string

// Run statuses.
const (
	RunRunning     RunStatus = "running"
	RunSucceeded   RunStatus = "succeeded" // every selected customer handled
	RunPartial     RunStatus = "partial"   // some customers failed, were blocked or skipped
	RunFailed      RunStatus = "failed"    // the run could not do its work
	RunInterrupted RunStatus = "interrupted"
)

// Run modes.
const (
	ModeLive   = "live"
	ModeDryRun = "dry_run"
)

// Customer states (reaper_customers.state).
const (
	StateSeen           = "seen"
	StateMarked         = "marked"
	StateSelected       = "selected"
	StateCancelling     = "cancelling"
	StateAwaitingCancel = "awaiting_cancel"
	StateDeleting       = "deleting"
	StateDeleted        = "deleted"
	StateFailed         = "failed"
	StateBlocked        = "blocked"
	StateReappeared     = "reappeared"
)

// InFlightStates are the states a pass leaves a customer in between selected and deleted: a later pass
// resumes it from there. Both stores' "in flight" SQL and the engine's IsInFlight are built from this one list.
var InFlightStates = []string{StateSelected, StateCancelling, StateAwaitingCancel, StateDeleting}

// IsInFlight says whether state is one of InFlightStates.
func IsInFlight(state string) bool { return slices.Contains(InFlightStates, state) }

// ReconcileStates are the states of a customer that may have had a mutating call whose effect is not
// recorded: InFlightStates, and failed (a DELETE whose answer was lost and whose retry then failed for good
// leaves a customer failed that Partner Center deleted). A pass reads those its complete listing lacks.
var ReconcileStates = append(slices.Clip(InFlightStates), StateFailed)

// statesIn is "state IN ($first, …)" for states, with its arguments; "FALSE" when states is empty.
func statesIn(states []string, first int) (string, []any) {
	if len(states) == 0 {
		return "1 = 0", nil
	}
	ph := make([]string, len(states))
	args := make([]any, len(states))
	for i, st := range states {
		ph[i] = fmt.Sprintf("$%d", first+i)
		args[i] = st
	}
	return "state IN (" + strings.Join(ph, ", ") + ")", args
}

// inFlightSQL is InFlightStates as an SQL list, for "state IN (…)" in both stores.
var inFlightSQL = func() string {
	q := make([]string, len(InFlightStates))
	for i, st := range InFlightStates {
		q[i] = "'" + st + "'"
	}
	return "(" + strings.Join(q, ", ") + ")"
}()

// Event actions (reaper_events.action, reaper_customers.pending_action).
const (
	ActionPlan           = "plan"
	ActionSkip           = "skip"
	ActionMark           = "mark"
	ActionUnmark         = "unmark"
	ActionCancelOrder    = "cancel_order"
	ActionOrderCancelled = "order_cancelled"
	ActionPoll           = "poll"
	ActionDelete         = "delete"
	ActionFail           = "fail"
	ActionBlock          = "block"
	ActionResume         = "resume"
	ActionReappeared     = "reappeared"
	ActionGuard          = "guard"
	ActionStop           = "stop"
)

// Event outcomes (reaper_events.outcome).
const (
	OutcomeIntent      = "intent" // written before a Partner Center call
	OutcomeOK          = "ok"
	OutcomeError       = "error"
	OutcomeDryRun      = "dry_run"
	OutcomeSkipped     = "skipped"
	OutcomeAlreadyGone = "already_gone"
)

// Run is one pass (or apply). Zero times and ids, empty strings and a zero PID are NULL in the database.
type Run struct {
	ID            uuid.UUID // a UUIDv7, so runs sort by start
	StartedAt     time.Time
	FinishedAt    time.Time
	Mode          string // ModeLive or ModeDryRun
	Status        RunStatus
	Policy        string    // the only policy applied; "" = all
	PlanID        uuid.UUID // apply: the plan carried out (a dry run's plan names its run in Plan.RunID)
	Instance      uuid.UUID // the Store instance that owns the run (set by StartRun)
	Host          string
	PID           int
	Counts        Counts
	Error         string
	InterruptedAt time.Time // when CloseDeadRuns (or FinishRun with RunInterrupted) ended it
}

// Counts are a run's customer tallies.
type Counts struct {
	Listed, Selected, Deleted, AlreadyGone, Failed, Blocked, Skipped, Marked int
}

// Event is one audit row. ID is assigned by the database (ignored on write).
type Event struct {
	ID              int64
	RunID           uuid.UUID // uuid.Nil: written outside a run
	At              time.Time
	Account         string
	CustomerID      string
	Domain          string
	Policy          string
	Action          string // Action… constants
	OrderID         string
	Outcome         string // Outcome… constants
	HTTPStatus      int    // 0: no call made
	MSRequestID     string
	MSCorrelationID string
	Error           string
	Detail          string
}

// CustomerState is a customer's row in reaper_customers. Zero times and empty strings are NULL.
type CustomerState struct {
	Account, CustomerID string
	Domain, CompanyName string
	FirstSeen, LastSeen time.Time // never NULL; zero on a new row written by Transition means now
	State               string    // State… constants
	Reason, Policy      string
	StateAt             time.Time // never NULL; zero means now
	MarkedAt            time.Time
	DeleteAfter         time.Time
	DeletedAt           time.Time
	CorrelationID       string
	PendingAction       string // Action… constant of a call written as intent, its result not yet recorded
	PendingOrderID      string
	PendingRequestID    string
	// Resighted is not a column: Sight sets it on a customer absent from the account's previous
	// listing and listed again, whose first_seen it restarted.
	Resighted bool
}

// Sighting is a customer as a listing shows it.
type Sighting struct {
	CustomerID, Domain, CompanyName string
}

// Keep protects a customer from deletion until Until (zero: for ever).
type Keep struct {
	CustomerID, Reason, AddedBy string
	AddedAt, Until              time.Time
}

// CancelTiming is what the engine learned of an account's cancellations (internal/engine/poll.go): how long
// after a customer's last cancel its orders all read cancelled. It is kept so that the next process — a
// `reaper once` from cron is a fresh one every time — polls as well as a long-running daemon.
type CancelTiming struct {
	Account   string
	Expect    time.Duration // > 0; stored to the microsecond
	Early     bool          // some first poll found an order still pending
	Late      bool          // some first poll found every order cancelled
	UpdatedAt time.Time
}

// SealedToken is an App+User account's newest refresh token as the store keeps it: encrypted by the caller
// (internal/cli: AES-256-GCM with the config's token_key). The store never sees the key or the token.
type SealedToken struct {
	Account  string
	Sealed   []byte // not empty
	StoredAt time.Time
}

// Plan is what a dry run would do, stored for `reaper apply`.
type Plan struct {
	ID        uuid.UUID
	CreatedAt time.Time
	RunID     uuid.UUID // uuid.Nil: made outside a run
	Policy    string
	Items     []PlanItem
}

// PlanItem is one customer of a plan. The JSON names are the keys of reaper_plans.items.
type PlanItem struct {
	Account     string   `json:"account"`
	CustomerID  string   `json:"customer_id"`
	Domain      string   `json:"domain,omitempty"`
	CompanyName string   `json:"company_name,omitempty"`
	Policy      string   `json:"policy,omitempty"`
	Action      string   `json:"action"`
	Orders      []string `json:"orders,omitempty"`
}

// markResighted sets Resighted on the rows whose id Sight restarted.
func markResighted(rows []CustomerState, ids []string) {
	if len(ids) == 0 {
		return
	}
	set := make(map[string]bool, len(ids))
	for _, id := range ids {
		set[id] = true
	}
	for i := range rows {
		rows[i].Resighted = set[rows[i].CustomerID]
	}
}
