package store_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tipreaper/tipreaper/internal/store"
	"github.com/tipreaper/tipreaper/internal/store/storetest"
)

var backends = []struct {
	name string
	open func(testing.TB) store.Store
}{
	{"postgres", storetest.Postgres},
	{"sqlite", storetest.SQLite},
}

// BenchmarkSight measures one pass's sighting of 1,000 customers, all known after the first round.
func BenchmarkSight(b *testing.B) {
	seen := make([]store.Sighting, 1000)
	for i := range seen {
		seen[i] = store.Sighting{CustomerID: uuid.NewString(), Domain: fmt.Sprintf("c%d.onmicrosoft.com", i), CompanyName: fmt.Sprintf("Customer %d", i)}
	}
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			s := be.open(b)
			at := time.Now()
			for b.Loop() {
				at = at.Add(time.Second)
				if _, err := s.Sight(b.Context(), "contoso", seen, at); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkTransition measures one step of the state machine: the customer row and two events, atomically.
func BenchmarkTransition(b *testing.B) {
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			s := be.open(b)
			run := store.Run{ID: uuid.Must(uuid.NewV7()), Mode: store.ModeLive}
			if err := s.StartRun(b.Context(), run); err != nil {
				b.Fatal(err)
			}
			cs := store.CustomerState{Account: "contoso", CustomerID: uuid.NewString(), Domain: "c.onmicrosoft.com",
				State: store.StateCancelling, PendingAction: store.ActionCancelOrder, PendingOrderID: "o-1"}
			ev := store.Event{RunID: run.ID, Account: cs.Account, CustomerID: cs.CustomerID, Action: store.ActionCancelOrder,
				OrderID: "o-1", Outcome: store.OutcomeIntent, MSRequestID: uuid.NewString()}
			for b.Loop() {
				if err := s.Transition(b.Context(), cs, ev, ev); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
