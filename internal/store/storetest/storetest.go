// Package storetest is the conformance suite every store.Store implementation must pass, and helpers that
// give other packages' tests a real, migrated, throw-away Store (Postgres and SQLite).
//
//	storetest.Run(t, storetest.SQLite, storetest.MultiInstance())    // internal/store's own tests
//	storetest.Run(t, storetest.Postgres, storetest.MultiInstance())
//	s := storetest.Postgres(t)                                       // any test needing a store
package storetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/tipreaper/tipreaper/internal/store"
)

// Option changes what Run checks.
type Option func(*options)

type options struct{ multiInstance bool }

// MultiInstance says that several Stores may be open on one database at once (both stores do). Run then
// also checks leases and run ownership across live instances.
func MultiInstance() Option { return func(o *options) { o.multiInstance = true } }

// Run checks that the Stores open returns behave as store.Store says. open must return a migrated Store
// on a database of the calling test's own, the same database for every call within one test, and close
// it when the test ends (Postgres and SQLite do).
func Run(t *testing.T, open func(testing.TB) store.Store, opts ...Option) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	s := suite{open: open, multiInstance: o.multiInstance}
	for _, tc := range []struct {
		name string
		test func(t *testing.T)
	}{
		{"migrating again changes nothing", s.migrateAgain},
		{"a run is recorded as running, then as it ended", s.runLifecycle},
		{"finishing a run as interrupted records when", s.runInterrupted},
		{"finishing an unknown run says not found", s.finishUnknownRun},
		{"runs are listed newest first up to the limit", s.runsNewestFirst},
		{"a running run of a dead instance is closed as interrupted, this instance's is not", s.closeDeadRuns},
		{"a running run of a live instance is left alone", s.liveInstanceRuns},
		{"events round-trip every field, empty ones as NULL", s.eventsRoundTrip},
		{"every action and outcome is accepted, others are refused", s.eventVocabulary},
		{"events come back in time order, to the microsecond", s.eventsInTimeOrder},
		{"a transition writes the customer row and its events", s.transitionWrites},
		{"a transition with an invalid event changes nothing", s.transitionAtomic},
		{"a transition keeps first_seen and never moves last_seen back", s.transitionSightings},
		{"every customer state is accepted, others are refused", s.customerStates},
		{"a sighting adds new customers as seen", s.sightNew},
		{"a sighting keeps first_seen and state and moves last_seen", s.sightAgain},
		{"a customer absent from the previous listing and listed again restarts its age", s.sightRestartsAbsent},
		{"a sighting belongs to one account", s.sightPerAccount},
		{"an unknown customer is reported absent", s.customerAbsent},
		{"customers in flight are those between selected and deleted, per account", s.inFlight},
		{"customers are read by a list of states, per account", s.customersIn},
		{"customers are counted by account and state", s.customerCounts},
		{"keeps are added, replaced, listed and removed", s.keeps},
		{"a plan round-trips, an unknown plan is not found", s.plans},
		{"an account's cancel timing round-trips and is replaced, per account", s.cancelTiming},
		{"a cancel timing that is not positive is refused", s.cancelTimingInvalid},
		{"an account's sealed refresh token round-trips byte for byte and is replaced, per account", s.refreshToken},
		{"an older refresh token never replaces a newer one", s.refreshTokenNewest},
		{"an empty sealed refresh token or one without an account is refused", s.refreshTokenInvalid},
		{"a lease excludes a second holder until released, and every acquisition raises the token", s.leaseExcludes},
		{"a renewed lease lasts longer; a released or forged one cannot be renewed", s.leaseRenew},
		{"an expired lease is taken over and its old holder can neither renew nor write", s.leaseExpiry},
		{"of holders racing for an account exactly one wins", s.leaseRace},
		{"a lease excludes another instance, and its expiry lets that instance take over", s.leaseAcrossInstances},
		{"the lease of a process that is gone is taken over at once", s.leaseOfDeadInstance},
		{"a guarded transition writes while its lease holds and nothing once it is lost", s.transitionIfLease},
		{"an unprotected transition is refused, writing nothing, while a keep protects the customer", s.transitionIfKeep},
		{"guarded events are written while the lease holds and refused after", s.appendEventsIf},
		{"a guard that cannot apply to the write is refused", s.guardMisuse},
		{"times round-trip equal: UTC, microseconds", s.timesRoundTrip},
		{"concurrent writers all succeed", s.concurrentWriters},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.test(t)
		})
	}
}

type suite struct {
	open          func(testing.TB) store.Store
	multiInstance bool
}

// at is a fixed instant with nanoseconds and a zone, so that writes must normalise it.
var at = time.Date(2026, 3, 1, 12, 30, 15, 123456789, time.FixedZone("CET", 3600))

// norm is what a store gives back for t.
func norm(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func newRun(startedAt time.Time) store.Run {
	return store.Run{ID: uuid.Must(uuid.NewV7()), StartedAt: startedAt, Mode: store.ModeLive}
}

func findRun(t *testing.T, s store.Store, id uuid.UUID) store.Run {
	t.Helper()
	runs, err := s.Runs(t.Context(), 0)
	require.NoError(t, err)
	for _, r := range runs {
		if r.ID == id {
			return r
		}
	}
	t.Fatalf("run %s not listed", id)
	return store.Run{}
}

func (s suite) migrateAgain(t *testing.T) {
	st := s.open(t) // migrated once already
	ctx := t.Context()
	require.NoError(t, st.AddKeep(ctx, store.Keep{CustomerID: "c-1", Reason: "golden"}))
	require.NoError(t, st.Migrate(ctx))
	require.NoError(t, st.Migrate(ctx))
	keeps, err := st.Keeps(ctx)
	require.NoError(t, err)
	require.Len(t, keeps, 1, "migrating again must not drop or recreate tables")
}

func (s suite) runLifecycle(t *testing.T) {
	st := s.open(t)
	ctx := t.Context()
	r := store.Run{ID: uuid.Must(uuid.NewV7()), StartedAt: at, Mode: store.ModeDryRun, Policy: "ci-leftovers",
		PlanID: uuid.New(), Host: "host-1", PID: 4242,
		// Ignored by StartRun: a run starts running, with nothing counted.
		Status: store.RunSucceeded, Counts: store.Counts{Listed: 9}, Error: "ignored"}
	require.NoError(t, st.StartRun(ctx, r))

	got := findRun(t, st, r.ID)
	require.NotEqual(t, uuid.Nil, got.Instance, "StartRun records the owning instance")
	require.Equal(t, store.Run{ID: r.ID, StartedAt: norm(at), Mode: store.ModeDryRun, Status: store.RunRunning,
		Policy: "ci-leftovers", PlanID: r.PlanID, Instance: got.Instance, Host: "host-1", PID: 4242}, got)

	counts := store.Counts{Listed: 10, Selected: 8, Deleted: 3, AlreadyGone: 1, Failed: 1, Blocked: 1, Skipped: 1, Marked: 1}
	require.NoError(t, st.FinishRun(ctx, r.ID, store.RunPartial, counts, "1 customer failed"))
	got = findRun(t, st, r.ID)
	require.Equal(t, store.RunPartial, got.Status)
	require.Equal(t, counts, got.Counts)
	require.Equal(t, "1 customer failed", got.Error)
	require.False(t, got.FinishedAt.IsZero(), "a finished run has a finish time")
	require.True(t, got.InterruptedAt.IsZero())

	require.Error(t, st.FinishRun(ctx, r.ID, store.RunRunning, counts, ""), "running is not how a run ends")
}

func (s suite) runInterrupted(t *testing.T) {
	st := s.open(t)
	ctx := t.Context()
	r := newRun(at)
	require.NoError(t, st.StartRun(ctx, r))
	require.NoError(t, st.FinishRun(ctx, r.ID, store.RunInterrupted, store.Counts{}, "stopped"))
	got := findRun(t, st, r.ID)
	require.Equal(t, store.RunInterrupted, got.Status)
	require.False(t, got.InterruptedAt.IsZero())
	require.Equal(t, got.FinishedAt, got.InterruptedAt)
}

func (s suite) finishUnknownRun(t *testing.T) {
	st := s.open(t)
	err := st.FinishRun(t.Context(), uuid.New(), store.RunSucceeded, store.Counts{}, "")
	require.ErrorIs(t, err, store.ErrNotFound)
}

func (s suite) runsNewestFirst(t *testing.T) {
	st := s.open(t)
	ctx := t.Context()
	var ids []uuid.UUID
	for i := range 3 {
		r := newRun(at.Add(time.Duration(i) * time.Hour))
		require.NoError(t, st.StartRun(ctx, r))
		ids = append(ids, r.ID)
	}
	runs, err := st.Runs(ctx, 2)
	require.NoError(t, err)
	require.Len(t, runs, 2)
	require.Equal(t, []uuid.UUID{ids[2], ids[1]}, []uuid.UUID{runs[0].ID, runs[1].ID})
	all, err := st.Runs(ctx, 0)
	require.NoError(t, err)
	require.Len(t, all, 3)
}

func (s suite) closeDeadRuns(t *testing.T) {
	ctx := t.Context()
	dead := s.open(t)
	deadRunning, deadFinished := newRun(at), newRun(at)
	require.NoError(t, dead.StartRun(ctx, deadRunning))
	require.NoError(t, dead.StartRun(ctx, deadFinished))
	require.NoError(t, dead.FinishRun(ctx, deadFinished.ID, store.RunSucceeded, store.Counts{}, ""))
	require.NoError(t, dead.Close()) // its process is gone

	st := s.open(t)
	mine := newRun(at)
	require.NoError(t, st.StartRun(ctx, mine))

	now := at.Add(time.Hour)
	n, err := st.CloseDeadRuns(ctx, now)
	require.NoError(t, err)
	require.Equal(t, 1, n)

	got := findRun(t, st, deadRunning.ID)
	require.Equal(t, store.RunInterrupted, got.Status)
	require.Equal(t, norm(now), got.InterruptedAt)
	require.Equal(t, norm(now), got.FinishedAt)
	require.Equal(t, store.RunSucceeded, findRun(t, st, deadFinished.ID).Status, "finished runs stay as they ended")
	require.Equal(t, store.RunRunning, findRun(t, st, mine.ID).Status, "this instance's own run is alive")

	n, err = st.CloseDeadRuns(ctx, now)
	require.NoError(t, err)
	require.Zero(t, n, "nothing left to close")
}

func (s suite) liveInstanceRuns(t *testing.T) {
	if !s.multiInstance {
		t.Skip("one Store per database at a time: there is no other live instance")
	}
	ctx := t.Context()
	other, st := s.open(t), s.open(t)
	r := newRun(at)
	require.NoError(t, other.StartRun(ctx, r))

	n, err := st.CloseDeadRuns(ctx, at.Add(time.Hour))
	require.NoError(t, err)
	require.Zero(t, n)
	require.Equal(t, store.RunRunning, findRun(t, st, r.ID).Status, "its instance is alive")

	require.NoError(t, other.Close())
	n, err = st.CloseDeadRuns(ctx, at.Add(time.Hour))
	require.NoError(t, err)
	require.Equal(t, 1, n, "once its instance is gone the run is dead")
}

func (s suite) eventsRoundTrip(t *testing.T) {
	st := s.open(t)
	ctx := t.Context()
	r := newRun(at)
	require.NoError(t, st.StartRun(ctx, r))
	full := store.Event{RunID: r.ID, At: at, Account: "contoso", CustomerID: "c-1", Domain: "c1.onmicrosoft.com",
		Policy: "ci-leftovers", Action: store.ActionCancelOrder, OrderID: "o-1", Outcome: store.OutcomeError,
		HTTPStatus: 409, MSRequestID: "req-1", MSCorrelationID: "corr-1", Error: "order is in progress",
		Detail: "code 800060"}
	bare := store.Event{At: at.Add(time.Second), CustomerID: "c-1", Action: store.ActionPlan, Outcome: store.OutcomeDryRun}
	require.NoError(t, st.AppendEvents(ctx, full, bare))

	got, err := st.CustomerEvents(ctx, "c-1")
	require.NoError(t, err)
	require.Len(t, got, 2)
	require.Positive(t, got[0].ID)
	require.Greater(t, got[1].ID, got[0].ID, "ids follow the order of writing")
	full.ID, full.At = got[0].ID, norm(full.At)
	bare.ID, bare.At = got[1].ID, norm(bare.At)
	require.Equal(t, []store.Event{full, bare}, got)

	// A zero time means now.
	require.NoError(t, st.AppendEvents(ctx, store.Event{CustomerID: "c-2", Action: store.ActionStop, Outcome: store.OutcomeOK}))
	got, err = st.CustomerEvents(ctx, "c-2")
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.False(t, got[0].At.IsZero())

	require.NoError(t, st.AppendEvents(ctx), "no events is nothing to do")
}

func (s suite) eventVocabulary(t *testing.T) {
	st := s.open(t)
	ctx := t.Context()
	actions := []string{store.ActionPlan, store.ActionSkip, store.ActionMark, store.ActionUnmark,
		store.ActionCancelOrder, store.ActionOrderCancelled, store.ActionPoll, store.ActionDelete, store.ActionFail,
		store.ActionBlock, store.ActionResume, store.ActionReappeared, store.ActionGuard, store.ActionStop}
	outcomes := []string{store.OutcomeIntent, store.OutcomeOK, store.OutcomeError, store.OutcomeDryRun,
		store.OutcomeSkipped, store.OutcomeAlreadyGone}
	var evs []store.Event
	for _, a := range actions {
		evs = append(evs, store.Event{At: at, CustomerID: "c-1", Action: a, Outcome: store.OutcomeOK})
	}
	for _, o := range outcomes {
		evs = append(evs, store.Event{At: at, CustomerID: "c-1", Action: store.ActionDelete, Outcome: o})
	}
	require.NoError(t, st.AppendEvents(ctx, evs...))

	for _, tc := range []struct {
		name string
		ev   store.Event
	}{
		{"an unknown action", store.Event{At: at, CustomerID: "c-2", Action: "explode", Outcome: store.OutcomeOK}},
		{"an unknown outcome", store.Event{At: at, CustomerID: "c-2", Action: store.ActionDelete, Outcome: "maybe"}},
		{"no action", store.Event{At: at, CustomerID: "c-2", Outcome: store.OutcomeOK}},
		{"an HTTP status that is not one", store.Event{At: at, CustomerID: "c-2", Action: store.ActionDelete, Outcome: store.OutcomeOK, HTTPStatus: 42}},
		{"a run that does not exist", store.Event{At: at, RunID: uuid.New(), CustomerID: "c-2", Action: store.ActionDelete, Outcome: store.OutcomeOK}},
	} {
		require.Error(t, st.AppendEvents(ctx, tc.ev), tc.name)
	}
	got, err := st.CustomerEvents(ctx, "c-2")
	require.NoError(t, err)
	require.Empty(t, got)
}

func (s suite) eventsInTimeOrder(t *testing.T) {
	st := s.open(t)
	ctx := t.Context()
	whole := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	// Written newest first; the fractions differ in width, which text-compared times get wrong.
	times := []time.Time{whole.Add(time.Second), whole.Add(500 * time.Millisecond), whole.Add(time.Microsecond), whole,
		whole.Add(-time.Microsecond)}
	for _, tm := range times {
		require.NoError(t, st.AppendEvents(ctx, store.Event{At: tm, CustomerID: "c-1", Action: store.ActionPoll, Outcome: store.OutcomeOK}))
	}
	got, err := st.CustomerEvents(ctx, "c-1")
	require.NoError(t, err)
	var order []time.Time
	for _, e := range got {
		order = append(order, e.At)
	}
	require.Equal(t, []time.Time{times[4], times[3], times[2], times[1], times[0]}, order)
}

func fullCustomer() store.CustomerState {
	return store.CustomerState{Account: "contoso", CustomerID: "c-1", Domain: "c1.onmicrosoft.com",
		CompanyName: "C One", FirstSeen: norm(at), LastSeen: norm(at.Add(time.Hour)), State: store.StateCancelling,
		Reason: "expired", Policy: "ci-leftovers", StateAt: norm(at.Add(2 * time.Hour)),
		MarkedAt: norm(at.Add(-72 * time.Hour)), DeleteAfter: norm(at.Add(-time.Hour)), CorrelationID: "corr-1",
		PendingAction: store.ActionCancelOrder, PendingOrderID: "o-1", PendingRequestID: "req-1"}
}

func (s suite) transitionWrites(t *testing.T) {
	st := s.open(t)
	ctx := t.Context()
	cs := fullCustomer()
	intent := store.Event{At: at, Account: cs.Account, CustomerID: cs.CustomerID, Action: store.ActionCancelOrder,
		OrderID: "o-1", Outcome: store.OutcomeIntent, MSRequestID: "req-1"}
	require.NoError(t, st.Transition(ctx, cs, intent))
	got, ok, err := st.Customer(ctx, cs.Account, cs.CustomerID)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, cs, got)

	// The result: the pending call is cleared (NULL) and the customer moves on.
	done := cs
	done.State, done.StateAt = store.StateDeleted, norm(at.Add(3*time.Hour))
	done.DeletedAt = done.StateAt
	done.PendingAction, done.PendingOrderID, done.PendingRequestID = "", "", ""
	result := store.Event{At: at.Add(time.Minute), Account: cs.Account, CustomerID: cs.CustomerID,
		Action: store.ActionDelete, Outcome: store.OutcomeOK, HTTPStatus: 204}
	require.NoError(t, st.Transition(ctx, done, result))
	got, ok, err = st.Customer(ctx, cs.Account, cs.CustomerID)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, done, got)

	evs, err := st.CustomerEvents(ctx, cs.CustomerID)
	require.NoError(t, err)
	require.Len(t, evs, 2)
	require.Equal(t, []string{store.OutcomeIntent, store.OutcomeOK}, []string{evs[0].Outcome, evs[1].Outcome})
}

func (s suite) transitionAtomic(t *testing.T) {
	st := s.open(t)
	ctx := t.Context()
	before := fullCustomer()
	require.NoError(t, st.Transition(ctx, before))

	after := before
	after.State, after.PendingAction = store.StateDeleting, store.ActionDelete
	valid := store.Event{At: at, CustomerID: before.CustomerID, Action: store.ActionDelete, Outcome: store.OutcomeIntent}
	invalid := store.Event{At: at, CustomerID: before.CustomerID, Action: "explode", Outcome: store.OutcomeIntent}
	require.Error(t, st.Transition(ctx, after, valid, invalid))

	got, ok, err := st.Customer(ctx, before.Account, before.CustomerID)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, before, got, "the customer row must not change when an event fails")
	evs, err := st.CustomerEvents(ctx, before.CustomerID)
	require.NoError(t, err)
	require.Empty(t, evs, "no event of a failed transition is kept")
}

func (s suite) transitionSightings(t *testing.T) {
	st := s.open(t)
	ctx := t.Context()
	cs := fullCustomer()
	require.NoError(t, st.Transition(ctx, cs))

	stale := cs
	stale.FirstSeen = norm(at.Add(24 * time.Hour))
	stale.LastSeen = norm(at.Add(-24 * time.Hour))
	stale.State = store.StateFailed
	require.NoError(t, st.Transition(ctx, stale))
	got, _, err := st.Customer(ctx, cs.Account, cs.CustomerID)
	require.NoError(t, err)
	require.Equal(t, cs.FirstSeen, got.FirstSeen, "first_seen is the first sighting, for ever")
	require.Equal(t, cs.LastSeen, got.LastSeen, "last_seen never moves back")
	require.Equal(t, store.StateFailed, got.State)

	unknown := cs
	unknown.LastSeen = time.Time{}
	require.NoError(t, st.Transition(ctx, unknown))
	got, _, err = st.Customer(ctx, cs.Account, cs.CustomerID)
	require.NoError(t, err)
	require.Equal(t, cs.LastSeen, got.LastSeen, "an unknown last_seen keeps the known one")

	// A customer first written by a transition, without sighting times, still gets them.
	fresh := store.CustomerState{Account: "contoso", CustomerID: "c-new", State: store.StateSelected}
	require.NoError(t, st.Transition(ctx, fresh))
	got, ok, err := st.Customer(ctx, fresh.Account, fresh.CustomerID)
	require.NoError(t, err)
	require.True(t, ok)
	require.False(t, got.FirstSeen.IsZero())
	require.Equal(t, got.FirstSeen, got.LastSeen)
	require.False(t, got.StateAt.IsZero())
}

func (s suite) customerStates(t *testing.T) {
	st := s.open(t)
	ctx := t.Context()
	for _, state := range []string{store.StateSeen, store.StateMarked, store.StateSelected, store.StateCancelling,
		store.StateAwaitingCancel, store.StateDeleting, store.StateDeleted, store.StateFailed, store.StateBlocked,
		store.StateReappeared} {
		cs := store.CustomerState{Account: "contoso", CustomerID: "c-" + state, State: state, StateAt: at, FirstSeen: at}
		require.NoError(t, st.Transition(ctx, cs), state)
	}
	for _, tc := range []struct {
		name string
		cs   store.CustomerState
	}{
		{"an unknown state", store.CustomerState{Account: "contoso", CustomerID: "c-x", State: "vanished"}},
		{"no state", store.CustomerState{Account: "contoso", CustomerID: "c-x"}},
		{"no customer id", store.CustomerState{Account: "contoso", State: store.StateSeen}},
		{"no account", store.CustomerState{CustomerID: "c-x", State: store.StateSeen}},
		{"an unknown pending action", store.CustomerState{Account: "contoso", CustomerID: "c-x", State: store.StateDeleting, PendingAction: "nuke"}},
	} {
		require.Error(t, st.Transition(ctx, tc.cs), tc.name)
	}
	_, ok, err := st.Customer(ctx, "contoso", "c-x")
	require.NoError(t, err)
	require.False(t, ok)
}

func (s suite) sightNew(t *testing.T) {
	st := s.open(t)
	ctx := t.Context()
	seen := []store.Sighting{
		{CustomerID: "c-2", Domain: "c2.onmicrosoft.com", CompanyName: "C Two"},
		{CustomerID: "c-1", Domain: "c1.onmicrosoft.com"},
		{CustomerID: "c-2", Domain: "c2-renamed.onmicrosoft.com", CompanyName: "C Two"}, // listed twice: last wins
	}
	got, err := st.Sight(ctx, "contoso", seen, at)
	require.NoError(t, err)
	want := []store.CustomerState{
		{Account: "contoso", CustomerID: "c-2", Domain: "c2-renamed.onmicrosoft.com", CompanyName: "C Two",
			FirstSeen: norm(at), LastSeen: norm(at), State: store.StateSeen, StateAt: norm(at)},
		{Account: "contoso", CustomerID: "c-1", Domain: "c1.onmicrosoft.com",
			FirstSeen: norm(at), LastSeen: norm(at), State: store.StateSeen, StateAt: norm(at)},
	}
	require.Equal(t, want, got)
	stored, ok, err := st.Customer(ctx, "contoso", "c-1")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, want[1], stored)

	got, err = st.Sight(ctx, "contoso", nil, at)
	require.NoError(t, err)
	require.Empty(t, got)
}

func (s suite) sightAgain(t *testing.T) {
	st := s.open(t)
	ctx := t.Context()
	_, err := st.Sight(ctx, "contoso", []store.Sighting{{CustomerID: "c-1", Domain: "old.onmicrosoft.com", CompanyName: "Old"}}, at)
	require.NoError(t, err)
	cs, _, err := st.Customer(ctx, "contoso", "c-1")
	require.NoError(t, err)
	cs.State, cs.StateAt, cs.MarkedAt = store.StateMarked, norm(at.Add(time.Minute)), norm(at.Add(time.Minute))
	require.NoError(t, st.Transition(ctx, cs))

	later := at.Add(48 * time.Hour)
	got, err := st.Sight(ctx, "contoso", []store.Sighting{{CustomerID: "c-1", Domain: "new.onmicrosoft.com", CompanyName: "New"}}, later)
	require.NoError(t, err)
	require.Len(t, got, 1)
	want := cs
	want.LastSeen, want.Domain, want.CompanyName = norm(later), "new.onmicrosoft.com", "New"
	require.Equal(t, want, got[0], "first_seen and the state stay; last_seen, domain and name move")

	// A sighting older than the last one (another host's slow pass) does not move last_seen back.
	got, err = st.Sight(ctx, "contoso", []store.Sighting{{CustomerID: "c-1", Domain: "new.onmicrosoft.com", CompanyName: "New"}}, at.Add(time.Hour))
	require.NoError(t, err)
	require.Equal(t, norm(later), got[0].LastSeen)
}

func (s suite) sightRestartsAbsent(t *testing.T) {
	st := s.open(t)
	ctx := t.Context()
	both := []store.Sighting{{CustomerID: "c-1"}, {CustomerID: "c-2"}}
	_, err := st.Sight(ctx, "contoso", both, at)
	require.NoError(t, err)
	_, err = st.Sight(ctx, "fabrikam", []store.Sighting{{CustomerID: "c-9"}}, at.Add(5*time.Hour)) // another account's listing
	require.NoError(t, err)
	got, err := st.Sight(ctx, "contoso", both[:1], at.Add(time.Hour)) // c-2 is absent
	require.NoError(t, err)
	require.False(t, got[0].Resighted)

	got, err = st.Sight(ctx, "contoso", both, at.Add(2*time.Hour))
	require.NoError(t, err)
	require.Len(t, got, 2)
	require.False(t, got[0].Resighted, "c-1 was in every listing")
	require.Equal(t, norm(at), got[0].FirstSeen)
	require.True(t, got[1].Resighted, "c-2 was absent and is listed again")
	require.Equal(t, norm(at.Add(2*time.Hour)), got[1].FirstSeen, "its age restarts")
	stored, _, err := st.Customer(ctx, "contoso", "c-2")
	require.NoError(t, err)
	require.Equal(t, norm(at.Add(2*time.Hour)), stored.FirstSeen)
	require.False(t, stored.Resighted, "not a column")

	got, err = st.Sight(ctx, "contoso", both, at.Add(3*time.Hour))
	require.NoError(t, err)
	require.False(t, got[1].Resighted, "listed in the previous listing: no new restart")
	require.Equal(t, norm(at.Add(2*time.Hour)), got[1].FirstSeen)
}

func (s suite) sightPerAccount(t *testing.T) {
	st := s.open(t)
	ctx := t.Context()
	_, err := st.Sight(ctx, "contoso", []store.Sighting{{CustomerID: "c-1"}}, at)
	require.NoError(t, err)
	_, err = st.Sight(ctx, "fabrikam", []store.Sighting{{CustomerID: "c-1"}}, at.Add(time.Hour))
	require.NoError(t, err)

	both, err := st.FindCustomer(ctx, "c-1")
	require.NoError(t, err)
	require.Len(t, both, 2)
	require.Equal(t, []string{"contoso", "fabrikam"}, []string{both[0].Account, both[1].Account})
	require.Equal(t, norm(at), both[0].LastSeen, "fabrikam's sighting is not contoso's")
}

func (s suite) customerAbsent(t *testing.T) {
	st := s.open(t)
	ctx := t.Context()
	_, ok, err := st.Customer(ctx, "contoso", "nobody")
	require.NoError(t, err)
	require.False(t, ok)
	found, err := st.FindCustomer(ctx, "nobody")
	require.NoError(t, err)
	require.Empty(t, found)
	evs, err := st.CustomerEvents(ctx, "nobody")
	require.NoError(t, err)
	require.Empty(t, evs)
}

func (s suite) inFlight(t *testing.T) {
	st := s.open(t)
	ctx := t.Context()
	states := []string{store.StateSeen, store.StateMarked, store.StateSelected, store.StateCancelling,
		store.StateAwaitingCancel, store.StateDeleting, store.StateDeleted, store.StateFailed, store.StateBlocked}
	for i, state := range states {
		cs := store.CustomerState{Account: "contoso", CustomerID: fmt.Sprintf("c-%d", i), State: state, StateAt: at, FirstSeen: at, LastSeen: at}
		require.NoError(t, st.Transition(ctx, cs))
	}
	other := store.CustomerState{Account: "fabrikam", CustomerID: "f-1", State: store.StateDeleting, StateAt: at, FirstSeen: at, LastSeen: at}
	require.NoError(t, st.Transition(ctx, other))

	got, err := st.InFlight(ctx, "contoso")
	require.NoError(t, err)
	var ids []string
	for _, cs := range got {
		ids = append(ids, cs.CustomerID+":"+cs.State)
	}
	require.Equal(t, []string{"c-2:selected", "c-3:cancelling", "c-4:awaiting_cancel", "c-5:deleting"}, ids)
	for _, state := range states {
		require.Equal(t, slices.ContainsFunc(got, func(cs store.CustomerState) bool { return cs.State == state }),
			store.IsInFlight(state), "IsInFlight(%s) agrees with the store's SQL", state)
	}
}

func (s suite) customersIn(t *testing.T) {
	st := s.open(t)
	ctx := t.Context()
	states := []string{store.StateSeen, store.StateMarked, store.StateSelected, store.StateCancelling,
		store.StateAwaitingCancel, store.StateDeleting, store.StateDeleted, store.StateFailed, store.StateBlocked,
		store.StateReappeared}
	for i, state := range states {
		cs := store.CustomerState{Account: "contoso", CustomerID: fmt.Sprintf("c-%d", i), State: state, StateAt: at, FirstSeen: at, LastSeen: at}
		require.NoError(t, st.Transition(ctx, cs))
	}
	other := store.CustomerState{Account: "fabrikam", CustomerID: "f-1", State: store.StateFailed, StateAt: at, FirstSeen: at, LastSeen: at}
	require.NoError(t, st.Transition(ctx, other))

	ids := func(states ...string) []string {
		got, err := st.CustomersIn(ctx, "contoso", states...)
		require.NoError(t, err)
		var out []string
		for _, cs := range got {
			out = append(out, cs.CustomerID+":"+cs.State)
		}
		return out
	}
	require.Equal(t, []string{"c-2:selected", "c-3:cancelling", "c-4:awaiting_cancel", "c-5:deleting", "c-7:failed"},
		ids(store.ReconcileStates...), "reconcile reads the in-flight and failed customers, of this account only")
	require.Equal(t, []string{"c-7:failed", "c-8:blocked"}, ids(store.StateBlocked, store.StateFailed))
	require.Empty(t, ids(), "no states, no customers")
	require.Empty(t, ids("no such state"))
	require.NotContains(t, store.ReconcileStates, store.StateBlocked, "a blocked customer waits for a person")
	require.NotContains(t, store.ReconcileStates, store.StateDeleted)
}

func (s suite) customerCounts(t *testing.T) {
	st := s.open(t)
	ctx := t.Context()
	got, err := st.CustomerCounts(ctx)
	require.NoError(t, err)
	require.Empty(t, got, "an empty store counts nothing")

	rows := []struct{ account, id, state string }{
		{"contoso", "c-1", store.StateSeen},
		{"contoso", "c-2", store.StateSeen},
		{"contoso", "c-3", store.StateBlocked},
		{"contoso", "c-4", store.StateDeleted},
		{"fabrikam", "f-1", store.StateSeen},
		{"fabrikam", "f-2", store.StateMarked},
	}
	for _, r := range rows {
		cs := store.CustomerState{Account: r.account, CustomerID: r.id, State: r.state, StateAt: at, FirstSeen: at, LastSeen: at}
		require.NoError(t, st.Transition(ctx, cs))
	}
	got, err = st.CustomerCounts(ctx)
	require.NoError(t, err)
	require.Equal(t, []store.StateCount{
		{Account: "contoso", State: store.StateBlocked, Count: 1},
		{Account: "contoso", State: store.StateDeleted, Count: 1},
		{Account: "contoso", State: store.StateSeen, Count: 2},
		{Account: "fabrikam", State: store.StateMarked, Count: 1},
		{Account: "fabrikam", State: store.StateSeen, Count: 1},
	}, got)
}

func (s suite) keeps(t *testing.T) {
	st := s.open(t)
	ctx := t.Context()
	forever := store.Keep{CustomerID: "c-2", Reason: "golden tenant", AddedBy: "alice", AddedAt: at}
	lapsed := store.Keep{CustomerID: "c-1", Reason: "demo", AddedBy: "bob", AddedAt: at, Until: at.Add(-time.Hour)}
	require.NoError(t, st.AddKeep(ctx, forever))
	require.NoError(t, st.AddKeep(ctx, lapsed))

	got, err := st.Keeps(ctx)
	require.NoError(t, err)
	normKeep := func(k store.Keep) store.Keep {
		k.AddedAt, k.Until = normOrZero(k.AddedAt), normOrZero(k.Until)
		return k
	}
	require.Equal(t, []store.Keep{normKeep(lapsed), normKeep(forever)}, got, "lapsed keeps are listed too; policy ignores them")

	renewed := lapsed
	renewed.Reason, renewed.Until = "demo, extended", at.Add(24*time.Hour)
	require.NoError(t, st.AddKeep(ctx, renewed))
	got, err = st.Keeps(ctx)
	require.NoError(t, err)
	require.Equal(t, []store.Keep{normKeep(renewed), normKeep(forever)}, got)

	removed, err := st.RemoveKeep(ctx, "c-1")
	require.NoError(t, err)
	require.True(t, removed)
	removed, err = st.RemoveKeep(ctx, "c-1")
	require.NoError(t, err)
	require.False(t, removed, "nothing left to remove")
	got, err = st.Keeps(ctx)
	require.NoError(t, err)
	require.Equal(t, []store.Keep{normKeep(forever)}, got)

	require.NoError(t, st.AddKeep(ctx, store.Keep{CustomerID: "c-3"}))
	got, err = st.Keeps(ctx)
	require.NoError(t, err)
	require.False(t, got[1].AddedAt.IsZero(), "a zero AddedAt means now")
}

func normOrZero(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return norm(t)
}

func (s suite) plans(t *testing.T) {
	st := s.open(t)
	ctx := t.Context()
	r := newRun(at)
	require.NoError(t, st.StartRun(ctx, r))
	p := store.Plan{ID: uuid.Must(uuid.NewV7()), CreatedAt: at, RunID: r.ID, Policy: "ci-leftovers", Items: []store.PlanItem{
		{Account: "contoso", CustomerID: "c-1", Domain: "c1.onmicrosoft.com", CompanyName: "C One", Policy: "ci-leftovers",
			Action: "delete", Orders: []string{"o-1", "o-2"}},
		{Account: "contoso", CustomerID: "c-2", Action: "mark"},
	}}
	require.NoError(t, st.SavePlan(ctx, p))
	got, err := st.Plan(ctx, p.ID)
	require.NoError(t, err)
	p.CreatedAt = norm(p.CreatedAt)
	require.Equal(t, p, got)

	empty := store.Plan{ID: uuid.Must(uuid.NewV7()), CreatedAt: at}
	require.NoError(t, st.SavePlan(ctx, empty))
	got, err = st.Plan(ctx, empty.ID)
	require.NoError(t, err)
	empty.CreatedAt = norm(empty.CreatedAt)
	require.Equal(t, empty, got)

	require.Error(t, st.SavePlan(ctx, p), "a plan is stored once")
	_, err = st.Plan(ctx, uuid.New())
	require.ErrorIs(t, err, store.ErrNotFound)
}

func (s suite) cancelTiming(t *testing.T) {
	st := s.open(t)
	ctx := t.Context()
	_, ok, err := st.CancelTiming(ctx, "contoso")
	require.NoError(t, err)
	require.False(t, ok, "nothing saved yet")

	first := store.CancelTiming{Account: "contoso", Expect: 1234567 * time.Microsecond, Early: true, UpdatedAt: at}
	other := store.CancelTiming{Account: "fabrikam", Expect: 300 * time.Millisecond, Late: true, UpdatedAt: at}
	require.NoError(t, st.SaveCancelTiming(ctx, first))
	require.NoError(t, st.SaveCancelTiming(ctx, other))
	got, ok, err := st.CancelTiming(ctx, "contoso")
	require.NoError(t, err)
	require.True(t, ok)
	first.UpdatedAt = norm(first.UpdatedAt)
	require.Equal(t, first, got)

	later := store.CancelTiming{Account: "contoso", Expect: 2500 * time.Millisecond, Early: true, Late: true, UpdatedAt: at.Add(time.Hour)}
	require.NoError(t, st.SaveCancelTiming(ctx, later))
	got, ok, err = st.CancelTiming(ctx, "contoso")
	require.NoError(t, err)
	require.True(t, ok)
	later.UpdatedAt = norm(later.UpdatedAt)
	require.Equal(t, later, got, "a save replaces the account's timing")
	got, _, err = st.CancelTiming(ctx, "fabrikam")
	require.NoError(t, err)
	other.UpdatedAt = norm(other.UpdatedAt)
	require.Equal(t, other, got, "another account's timing is its own")

	require.NoError(t, st.SaveCancelTiming(ctx, store.CancelTiming{Account: "northwind", Expect: time.Second}))
	got, _, err = st.CancelTiming(ctx, "northwind")
	require.NoError(t, err)
	require.False(t, got.UpdatedAt.IsZero(), "a zero UpdatedAt means now")
}

func (s suite) cancelTimingInvalid(t *testing.T) {
	st := s.open(t)
	ctx := t.Context()
	for _, d := range []time.Duration{0, -time.Second, 500 * time.Nanosecond} {
		require.Error(t, st.SaveCancelTiming(ctx, store.CancelTiming{Account: "contoso", Expect: d}), "expectation %s", d)
	}
	_, ok, err := st.CancelTiming(ctx, "contoso")
	require.NoError(t, err)
	require.False(t, ok)
}

func (s suite) refreshToken(t *testing.T) {
	st := s.open(t)
	ctx := t.Context()
	_, ok, err := st.RefreshToken(ctx, "contoso")
	require.NoError(t, err)
	require.False(t, ok, "nothing kept yet")

	// Every byte value, a NUL first: the column is binary, not text.
	sealed := make([]byte, 256)
	for i := range sealed {
		sealed[i] = byte(i)
	}
	first := store.SealedToken{Account: "contoso", Sealed: sealed, StoredAt: at}
	other := store.SealedToken{Account: "fabrikam", Sealed: []byte{0xff, 0x00, 0x01}, StoredAt: at}
	require.NoError(t, st.SaveRefreshToken(ctx, first))
	require.NoError(t, st.SaveRefreshToken(ctx, other))
	got, ok, err := st.RefreshToken(ctx, "contoso")
	require.NoError(t, err)
	require.True(t, ok)
	first.StoredAt = norm(first.StoredAt)
	require.Equal(t, first, got)

	later := store.SealedToken{Account: "contoso", Sealed: []byte("newer ciphertext"), StoredAt: at.Add(time.Minute)}
	require.NoError(t, st.SaveRefreshToken(ctx, later))
	got, ok, err = st.RefreshToken(ctx, "contoso")
	require.NoError(t, err)
	require.True(t, ok)
	later.StoredAt = norm(later.StoredAt)
	require.Equal(t, later, got, "a save replaces the account's token")
	got, _, err = st.RefreshToken(ctx, "fabrikam")
	require.NoError(t, err)
	other.StoredAt = norm(other.StoredAt)
	require.Equal(t, other, got, "another account's token is its own")

	require.NoError(t, st.SaveRefreshToken(ctx, store.SealedToken{Account: "northwind", Sealed: []byte{1}}))
	got, ok, err = st.RefreshToken(ctx, "northwind")
	require.NoError(t, err)
	require.True(t, ok)
	require.False(t, got.StoredAt.IsZero(), "a zero StoredAt means now")
}

func (s suite) refreshTokenNewest(t *testing.T) {
	st := s.open(t)
	ctx := t.Context()
	newer := store.SealedToken{Account: "contoso", Sealed: []byte("newer"), StoredAt: at.Add(time.Second)}
	require.NoError(t, st.SaveRefreshToken(ctx, newer))
	require.NoError(t, st.SaveRefreshToken(ctx, store.SealedToken{Account: "contoso", Sealed: []byte("older"), StoredAt: at}))
	got, ok, err := st.RefreshToken(ctx, "contoso")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, []byte("newer"), got.Sealed, "a slower process does not put back an older token")
	require.Equal(t, norm(newer.StoredAt), got.StoredAt)
}

func (s suite) refreshTokenInvalid(t *testing.T) {
	st := s.open(t)
	ctx := t.Context()
	for _, tok := range []store.SealedToken{
		{Account: "contoso"},
		{Account: "contoso", Sealed: []byte{}},
		{Sealed: []byte("x")},
	} {
		require.Error(t, st.SaveRefreshToken(ctx, tok), "%+v", tok)
	}
	_, ok, err := st.RefreshToken(ctx, "contoso")
	require.NoError(t, err)
	require.False(t, ok)
}

func (s suite) timesRoundTrip(t *testing.T) {
	st := s.open(t)
	ctx := t.Context()
	zones := []*time.Location{time.UTC, time.FixedZone("CET", 3600), time.FixedZone("PST", -8*3600)}
	for _, loc := range zones {
		tm := time.Date(2026, 12, 31, 23, 59, 59, 999999999, loc)
		r := newRun(tm)
		require.NoError(t, st.StartRun(ctx, r))
		got := findRun(t, st, r.ID)
		require.Equal(t, norm(tm), got.StartedAt)
		require.Equal(t, time.UTC, got.StartedAt.Location())
		require.Equal(t, 999999000, got.StartedAt.Nanosecond(), "truncated, not rounded, to microseconds")

		cs := store.CustomerState{Account: "contoso", CustomerID: loc.String(), State: store.StateMarked,
			FirstSeen: tm, LastSeen: tm, StateAt: tm, MarkedAt: tm, DeleteAfter: tm, DeletedAt: tm}
		require.NoError(t, st.Transition(ctx, cs))
		back, _, err := st.Customer(ctx, cs.Account, cs.CustomerID)
		require.NoError(t, err)
		for _, pair := range [][2]time.Time{{back.FirstSeen, tm}, {back.LastSeen, tm}, {back.StateAt, tm},
			{back.MarkedAt, tm}, {back.DeleteAfter, tm}, {back.DeletedAt, tm}} {
			require.Equal(t, norm(pair[1]), pair[0])
		}
	}
}

func (s suite) concurrentWriters(t *testing.T) {
	st := s.open(t)
	ctx := t.Context()
	const writers, steps = 6, 15
	errs := make(chan error, writers*steps*2)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range steps {
				id := fmt.Sprintf("c-%d-%d", w, i)
				if _, err := st.Sight(ctx, "contoso", []store.Sighting{{CustomerID: id}}, at); err != nil {
					errs <- err
				}
				cs := store.CustomerState{Account: "contoso", CustomerID: id, State: store.StateSelected}
				ev := store.Event{CustomerID: id, Action: store.ActionPlan, Outcome: store.OutcomeOK}
				if err := st.Transition(ctx, cs, ev); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	for w := range writers {
		for i := range steps {
			evs, err := st.CustomerEvents(ctx, fmt.Sprintf("c-%d-%d", w, i))
			require.NoError(t, err)
			require.Len(t, evs, 1)
		}
	}
}
