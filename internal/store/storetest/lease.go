package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/tipreaper/tipreaper/internal/store"
)

// leaseTTL is long enough that no test sees it expire unless it waits for that.
const leaseTTL = time.Minute

// shortTTL is a lease the tests let expire; they wait for it with require.Eventually, never assume it.
const shortTTL = 20 * time.Millisecond

func acquire(t *testing.T, st store.Store, account string, ttl time.Duration) store.Lease {
	t.Helper()
	l, ok, err := st.AcquireLease(t.Context(), account, ttl)
	require.NoError(t, err)
	require.True(t, ok, "the account %s is free", account)
	require.Equal(t, account, l.Account)
	require.NotEqual(t, uuid.Nil, l.Holder)
	return l
}

// takeOver acquires account once the lease someone holds on it (with shortTTL) has expired.
func takeOver(t *testing.T, st store.Store, account string) store.Lease {
	t.Helper()
	var l store.Lease
	require.Eventually(t, func() bool {
		var ok bool
		var err error
		l, ok, err = st.AcquireLease(t.Context(), account, leaseTTL)
		require.NoError(t, err)
		return ok
	}, 30*time.Second, 5*time.Millisecond, "the expired lease is taken over")
	return l
}

func (s suite) leaseExcludes(t *testing.T) {
	st := s.open(t)
	ctx := t.Context()
	first := acquire(t, st, "contoso", leaseTTL)
	require.True(t, first.ExpiresAt.After(time.Now().Add(-time.Minute)), "expires about a ttl from now")

	_, ok, err := st.AcquireLease(ctx, "contoso", leaseTTL)
	require.NoError(t, err)
	require.False(t, ok, "the account is held")
	other := acquire(t, st, "fabrikam", leaseTTL)
	require.NoError(t, st.ReleaseLease(ctx, other))

	require.NoError(t, st.ReleaseLease(ctx, first))
	require.NoError(t, st.ReleaseLease(ctx, first), "releasing twice is harmless")
	second := acquire(t, st, "contoso", leaseTTL)
	require.Greater(t, second.Token, first.Token, "a new acquisition has a larger fencing token")
	require.NotEqual(t, first.Holder, second.Holder, "and a holder of its own")
	require.NoError(t, st.ReleaseLease(ctx, first), "releasing a lease already taken over leaves the new holder alone")
	_, ok, err = st.AcquireLease(ctx, "contoso", leaseTTL)
	require.NoError(t, err)
	require.False(t, ok, "the new holder still holds it")
}

func (s suite) leaseRenew(t *testing.T) {
	st := s.open(t)
	ctx := t.Context()
	l := acquire(t, st, "contoso", time.Second)
	renewed, err := st.RenewLease(ctx, l, time.Hour)
	require.NoError(t, err)
	require.True(t, renewed.ExpiresAt.After(l.ExpiresAt), "renewal moves the expiry")
	require.Equal(t, l.Token, renewed.Token, "renewal keeps the token")
	require.Equal(t, l.Holder, renewed.Holder)

	forged := renewed
	forged.Token++
	_, err = st.RenewLease(ctx, forged, time.Hour)
	require.ErrorIs(t, err, store.ErrLeaseLost, "another token is another lease")
	forged = renewed
	forged.Holder = uuid.New()
	_, err = st.RenewLease(ctx, forged, time.Hour)
	require.ErrorIs(t, err, store.ErrLeaseLost, "another holder is another lease")

	require.NoError(t, st.ReleaseLease(ctx, renewed))
	_, err = st.RenewLease(ctx, renewed, time.Hour)
	require.ErrorIs(t, err, store.ErrLeaseLost, "a released lease is gone")

	_, _, err = st.AcquireLease(ctx, "contoso", 0)
	require.Error(t, err, "a lease needs a ttl")
	_, _, err = st.AcquireLease(ctx, "", time.Minute)
	require.Error(t, err, "a lease needs an account")
}

func (s suite) leaseExpiry(t *testing.T) {
	st := s.open(t)
	ctx := t.Context()
	old := acquire(t, st, "contoso", shortTTL)
	next := takeOver(t, st, "contoso")
	require.Greater(t, next.Token, old.Token)

	_, err := st.RenewLease(ctx, old, leaseTTL)
	require.ErrorIs(t, err, store.ErrLeaseLost, "the old holder cannot renew")
	cs := store.CustomerState{Account: "contoso", CustomerID: "c1", State: store.StateDeleting,
		PendingAction: store.ActionDelete, PendingRequestID: "r1"}
	intent := store.Event{Account: "contoso", CustomerID: "c1", Action: store.ActionDelete, Outcome: store.OutcomeIntent, MSRequestID: "r1"}
	err = st.TransitionIf(ctx, store.Guard{Lease: &old, Unprotected: true}, cs, intent)
	require.ErrorIs(t, err, store.ErrLeaseLost, "the old holder cannot write an intent")
	_, found, err := st.Customer(ctx, "contoso", "c1")
	require.NoError(t, err)
	require.False(t, found, "nothing of the refused transition was written")
	evs, err := st.CustomerEvents(ctx, "c1")
	require.NoError(t, err)
	require.Empty(t, evs)

	require.NoError(t, st.TransitionIf(ctx, store.Guard{Lease: &next, Unprotected: true}, cs, intent), "the new holder can")
}

func (s suite) leaseRace(t *testing.T) {
	stores := []store.Store{s.open(t)}
	if s.multiInstance {
		stores = append(stores, s.open(t), s.open(t))
	}
	const racers = 8
	var wg sync.WaitGroup
	won := make(chan store.Lease, racers)
	errs := make(chan error, racers)
	for i := range racers {
		st := stores[i%len(stores)]
		wg.Go(func() {
			l, ok, err := st.AcquireLease(t.Context(), "contoso", leaseTTL)
			if err != nil {
				errs <- err
			}
			if ok {
				won <- l
			}
		})
	}
	wg.Wait()
	close(won)
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Len(t, won, 1, "exactly one holder")
}

func (s suite) leaseAcrossInstances(t *testing.T) {
	if !s.multiInstance {
		t.Skip("one Store per database at a time: there is no other instance")
	}
	ctx := t.Context()
	a, b := s.open(t), s.open(t)
	la := acquire(t, a, "contoso", shortTTL)
	lb := takeOver(t, b, "contoso")
	require.Greater(t, lb.Token, la.Token)
	_, err := a.RenewLease(ctx, la, leaseTTL)
	require.ErrorIs(t, err, store.ErrLeaseLost)
	ev := store.Event{Account: "contoso", Action: store.ActionGuard, Outcome: store.OutcomeError, Error: "x"}
	require.ErrorIs(t, a.AppendEventsIf(ctx, store.Guard{Lease: &la}, ev), store.ErrLeaseLost)
	require.NoError(t, b.AppendEventsIf(ctx, store.Guard{Lease: &lb}, ev))

	_, ok, err := a.AcquireLease(ctx, "contoso", leaseTTL)
	require.NoError(t, err)
	require.False(t, ok, "a live instance keeps its unexpired lease")
}

func (s suite) leaseOfDeadInstance(t *testing.T) {
	ctx := t.Context()
	dead := s.open(t)
	old := acquire(t, dead, "contoso", time.Hour)
	require.NoError(t, dead.Close(), "its holder's process ends without releasing")

	st := s.open(t)
	l, ok, err := st.AcquireLease(ctx, "contoso", leaseTTL)
	require.NoError(t, err)
	require.True(t, ok, "the lease of a process that is gone is taken over before it expires")
	require.Greater(t, l.Token, old.Token)
	_, ok, err = st.AcquireLease(ctx, "contoso", leaseTTL)
	require.NoError(t, err)
	require.False(t, ok, "and then held by its new holder")
}

func (s suite) transitionIfLease(t *testing.T) {
	st := s.open(t)
	ctx := t.Context()
	l := acquire(t, st, "contoso", leaseTTL)
	cs := store.CustomerState{Account: "contoso", CustomerID: "c1", State: store.StateSelected}
	ev := store.Event{Account: "contoso", CustomerID: "c1", Action: store.ActionPlan, Outcome: store.OutcomeOK}
	require.NoError(t, st.TransitionIf(ctx, store.Guard{Lease: &l}, cs, ev))
	got, _, err := st.Customer(ctx, "contoso", "c1")
	require.NoError(t, err)
	require.Equal(t, store.StateSelected, got.State)

	require.NoError(t, st.ReleaseLease(ctx, l))
	cs.State = store.StateCancelling
	err = st.TransitionIf(ctx, store.Guard{Lease: &l}, cs, ev)
	require.ErrorIs(t, err, store.ErrLeaseLost)
	require.Contains(t, err.Error(), "c1", "the error names the customer")
	got, _, err = st.Customer(ctx, "contoso", "c1")
	require.NoError(t, err)
	require.Equal(t, store.StateSelected, got.State, "the refused transition changed nothing")
	evs, err := st.CustomerEvents(ctx, "c1")
	require.NoError(t, err)
	require.Len(t, evs, 1, "and wrote no event")
}

func (s suite) transitionIfKeep(t *testing.T) {
	st := s.open(t)
	ctx := t.Context()
	l := acquire(t, st, "contoso", leaseTTL)
	g := store.Guard{Lease: &l, Unprotected: true}
	intent := func(id string) (store.CustomerState, store.Event) {
		return store.CustomerState{Account: "contoso", CustomerID: id, State: store.StateDeleting, PendingAction: store.ActionDelete},
			store.Event{Account: "contoso", CustomerID: id, Action: store.ActionDelete, Outcome: store.OutcomeIntent}
	}
	const kept = "8f3e0a52-6c1b-4f7e-9d2a-1b2c3d4e5f60"
	require.NoError(t, st.AddKeep(ctx, store.Keep{CustomerID: kept, Reason: "golden tenant", AddedBy: "ops"}))
	require.NoError(t, st.AddKeep(ctx, store.Keep{CustomerID: "lapsed", Reason: "was debugging", Until: time.Now().Add(-time.Hour)}))
	require.NoError(t, st.AddKeep(ctx, store.Keep{CustomerID: "later", Reason: "until tomorrow", Until: time.Now().Add(24 * time.Hour)}))

	for _, tc := range []struct {
		name, id, reason string
	}{
		{"a keep for ever", kept, "golden tenant"},
		{"a keep written in other letter case", "8F3E0A52-6C1B-4F7E-9D2A-1B2C3D4E5F60", "golden tenant"},
		{"a keep that lapses later", "later", "until tomorrow"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs, ev := intent(tc.id)
			err := st.TransitionIf(ctx, g, cs, ev)
			require.ErrorIs(t, err, store.ErrProtected)
			require.Contains(t, err.Error(), "reaper_keep: "+tc.reason, "the error names the keep's reason")
			_, found, err := st.Customer(ctx, "contoso", tc.id)
			require.NoError(t, err)
			require.False(t, found, "nothing was written")
		})
	}
	for _, id := range []string{"lapsed", "unkept"} {
		cs, ev := intent(id)
		require.NoError(t, st.TransitionIf(ctx, g, cs, ev), "customer %s is not protected", id)
	}
	cs, ev := intent(kept)
	require.NoError(t, st.TransitionIf(ctx, store.Guard{Lease: &l}, cs, ev), "without Unprotected a keep does not stop the write (a result row)")
	removed, err := st.RemoveKeep(ctx, "later")
	require.NoError(t, err)
	require.True(t, removed)
	cs, ev = intent("later")
	require.NoError(t, st.TransitionIf(ctx, g, cs, ev), "a removed keep protects nothing")
}

func (s suite) appendEventsIf(t *testing.T) {
	st := s.open(t)
	ctx := t.Context()
	l := acquire(t, st, "contoso", leaseTTL)
	ev := store.Event{Account: "contoso", CustomerID: "c1", Action: store.ActionPoll, Outcome: store.OutcomeOK}
	require.NoError(t, st.AppendEventsIf(ctx, store.Guard{Lease: &l}, ev, ev))
	require.NoError(t, st.ReleaseLease(ctx, l))
	require.ErrorIs(t, st.AppendEventsIf(ctx, store.Guard{Lease: &l}, ev), store.ErrLeaseLost)
	evs, err := st.CustomerEvents(ctx, "c1")
	require.NoError(t, err)
	require.Len(t, evs, 2, "the refused append wrote nothing")
	require.NoError(t, st.AppendEventsIf(ctx, store.Guard{}, ev), "an empty guard checks nothing")
}

func (s suite) guardMisuse(t *testing.T) {
	st := s.open(t)
	ctx := t.Context()
	l := acquire(t, st, "contoso", leaseTTL)
	cs := store.CustomerState{Account: "fabrikam", CustomerID: "c1", State: store.StateSelected}
	require.Error(t, st.TransitionIf(ctx, store.Guard{Lease: &l}, cs), "a lease of another account")
	ev := store.Event{Account: "fabrikam", Action: store.ActionGuard, Outcome: store.OutcomeError}
	require.Error(t, st.AppendEventsIf(ctx, store.Guard{Lease: &l}, ev), "events of another account")
	ev.Account = "contoso"
	require.Error(t, st.AppendEventsIf(ctx, store.Guard{Lease: &l, Unprotected: true}, ev), "events name no single customer")
	_, found, err := st.Customer(ctx, "fabrikam", "c1")
	require.NoError(t, err)
	require.False(t, found)
}
