package bench

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/tipreaper/tipreaper/internal/store"
)

// memStore is a store.Store held in memory for the fleet scenario, where
// the question is what the engine costs per customer, not what a database
// costs. It keeps customer rows (one per customer, as a database would) and
// only counts audit rows, runs and plans: a database keeps those on disk,
// not in the process's heap, so keeping them here would measure the wrong
// thing as "growth across passes".
type memStore struct {
	mu        sync.Mutex
	customers map[string]map[string]store.CustomerState // account → customer id → row
	locked    map[string]bool
	events    int
	runs      int
}

func newMemStore() *memStore {
	return &memStore{customers: map[string]map[string]store.CustomerState{}, locked: map[string]bool{}}
}

var _ store.Store = (*memStore)(nil)

func (m *memStore) Migrate(context.Context) error { return nil }
func (m *memStore) Close() error                  { return nil }

func (m *memStore) StartRun(context.Context, store.Run) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.runs++
	return nil
}

func (m *memStore) FinishRun(context.Context, uuid.UUID, store.RunStatus, store.Counts, string) error {
	return nil
}

func (m *memStore) CloseDeadRuns(context.Context, time.Time) (int, error) { return 0, nil }
func (m *memStore) Runs(context.Context, int) ([]store.Run, error)        { return nil, nil }

func (m *memStore) AppendEvents(_ context.Context, evs ...store.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events += len(evs)
	return nil
}

func (m *memStore) Transition(_ context.Context, cs store.CustomerState, evs ...store.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	rows := m.account(cs.Account)
	now := time.Now()
	if old, ok := rows[cs.CustomerID]; ok {
		cs.FirstSeen = old.FirstSeen
		if cs.LastSeen.Before(old.LastSeen) {
			cs.LastSeen = old.LastSeen
		}
	}
	if cs.FirstSeen.IsZero() {
		cs.FirstSeen = now
	}
	if cs.LastSeen.IsZero() {
		cs.LastSeen = cs.FirstSeen
	}
	if cs.StateAt.IsZero() {
		cs.StateAt = now
	}
	rows[cs.CustomerID] = cs
	m.events += len(evs)
	return nil
}

func (m *memStore) account(name string) map[string]store.CustomerState {
	rows := m.customers[name]
	if rows == nil {
		rows = map[string]store.CustomerState{}
		m.customers[name] = rows
	}
	return rows
}

func (m *memStore) Sight(_ context.Context, account string, seen []store.Sighting, at time.Time) ([]store.CustomerState, error) {
	if at.IsZero() {
		at = time.Now()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	rows := m.account(account)
	out := make([]store.CustomerState, 0, len(seen))
	dup := make(map[string]bool, len(seen))
	for _, s := range seen {
		if dup[s.CustomerID] {
			continue
		}
		dup[s.CustomerID] = true
		cs, ok := rows[s.CustomerID]
		if !ok {
			cs = store.CustomerState{Account: account, CustomerID: s.CustomerID, FirstSeen: at, State: store.StateSeen, StateAt: at}
		}
		cs.Domain, cs.CompanyName = s.Domain, s.CompanyName
		if at.After(cs.LastSeen) {
			cs.LastSeen = at
		}
		rows[s.CustomerID] = cs
		out = append(out, cs)
	}
	return out, nil
}

func (m *memStore) Customer(_ context.Context, account, customerID string) (store.CustomerState, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cs, ok := m.customers[account][customerID]
	return cs, ok, nil
}

func (m *memStore) FindCustomer(_ context.Context, customerID string) ([]store.CustomerState, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []store.CustomerState
	for _, rows := range m.customers {
		if cs, ok := rows[customerID]; ok {
			out = append(out, cs)
		}
	}
	slices.SortFunc(out, func(a, b store.CustomerState) int { return strings.Compare(a.Account, b.Account) })
	return out, nil
}

// CustomerEvents has nothing to return: audit rows are only counted. The
// fleet never resumes a customer, the one reader of this.
func (m *memStore) CustomerEvents(context.Context, string) ([]store.Event, error) { return nil, nil }

func (m *memStore) InFlight(ctx context.Context, account string) ([]store.CustomerState, error) {
	return m.CustomersIn(ctx, account, store.InFlightStates...)
}

func (m *memStore) CustomersIn(_ context.Context, account string, states ...string) ([]store.CustomerState, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []store.CustomerState
	for _, cs := range m.customers[account] {
		if slices.Contains(states, cs.State) {
			out = append(out, cs)
		}
	}
	slices.SortFunc(out, func(a, b store.CustomerState) int { return strings.Compare(a.CustomerID, b.CustomerID) })
	return out, nil
}

func (m *memStore) CustomerCounts(context.Context) ([]store.StateCount, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := map[[2]string]int{}
	for account, rows := range m.customers {
		for _, cs := range rows {
			n[[2]string{account, cs.State}]++
		}
	}
	out := make([]store.StateCount, 0, len(n))
	for k, c := range n {
		out = append(out, store.StateCount{Account: k[0], State: k[1], Count: c})
	}
	slices.SortFunc(out, func(a, b store.StateCount) int {
		return strings.Compare(a.Account+"\x00"+a.State, b.Account+"\x00"+b.State)
	})
	return out, nil
}

func (m *memStore) AddKeep(context.Context, store.Keep) error {
	return fmt.Errorf("memory store: keeps are not supported")
}
func (m *memStore) RemoveKeep(context.Context, string) (bool, error) { return false, nil }
func (m *memStore) Keeps(context.Context) ([]store.Keep, error)      { return nil, nil }

func (m *memStore) SavePlan(context.Context, store.Plan) error { return nil }
func (m *memStore) Plan(_ context.Context, id uuid.UUID) (store.Plan, error) {
	return store.Plan{}, fmt.Errorf("plan %s: %w", id, store.ErrNotFound)
}

// audited is how many audit rows were written.
func (m *memStore) audited() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.events
}

// Leases: one holder per account, as in the real stores; the fleet runs one
// pass at a time, so a lease is never lost here and keeps do not exist.
func (m *memStore) AcquireLease(_ context.Context, account string, ttl time.Duration) (store.Lease, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.locked[account] {
		return store.Lease{}, false, nil
	}
	m.locked[account] = true
	return store.Lease{Account: account, Holder: uuid.New(), Token: 1, ExpiresAt: time.Now().Add(ttl)}, true, nil
}

func (m *memStore) RenewLease(_ context.Context, l store.Lease, ttl time.Duration) (store.Lease, error) {
	l.ExpiresAt = time.Now().Add(ttl)
	return l, nil
}

func (m *memStore) ReleaseLease(_ context.Context, l store.Lease) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.locked, l.Account)
	return nil
}

func (m *memStore) TransitionIf(ctx context.Context, _ store.Guard, cs store.CustomerState, evs ...store.Event) error {
	return m.Transition(ctx, cs, evs...)
}

func (m *memStore) AppendEventsIf(ctx context.Context, _ store.Guard, evs ...store.Event) error {
	return m.AppendEvents(ctx, evs...)
}

// The fleet plans only, so the cancellation model is never learned.
func (m *memStore) CancelTiming(context.Context, string) (store.CancelTiming, bool, error) {
	return store.CancelTiming{}, false, nil
}

func (m *memStore) SaveCancelTiming(context.Context, store.CancelTiming) error { return nil }

// The fleet's accounts use client secrets: no refresh token is ever kept.
func (m *memStore) RefreshToken(context.Context, string) (store.SealedToken, bool, error) {
	return store.SealedToken{}, false, nil
}

func (m *memStore) SaveRefreshToken(context.Context, store.SealedToken) error { return nil }
