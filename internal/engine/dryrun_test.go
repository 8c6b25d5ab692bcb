package engine_test

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tipreaper/tipreaper/internal/engine"
	"github.com/tipreaper/tipreaper/internal/pcsim"
	"github.com/tipreaper/tipreaper/internal/store"
)

func TestADryRunChangesNothingAndStoresThePlan(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			h := newSandbox(t, b.open)

			r := h.pass(dryRun)

			stats := h.sim.Stats()
			require.Zero(t, stats.MutatingCalls, "a dry run sent a PATCH or DELETE")
			require.Zero(t, stats.ByMethod[http.MethodPatch]+stats.ByMethod[http.MethodDelete])
			require.Len(t, h.present(), len(sandbox()))
			for _, name := range []string{"old-a", "old-b", "old-bare", "young", "keep-global", "golden-1", "contoso"} {
				st := h.state(name)
				require.Equal(t, store.StateSeen, st.State, "a dry run moved %s", name)
				require.Empty(t, st.Policy)
				require.Empty(t, st.CorrelationID)
				require.Empty(t, st.PendingAction)
				require.True(t, st.MarkedAt.IsZero() && st.DeletedAt.IsZero())
				require.False(t, st.FirstSeen.IsZero())
			}
			for _, name := range []string{"old-a", "old-b", "old-bare"} {
				require.Equal(t, engine.OutcomeWouldDelete, item(t, r, h.id(name)).Outcome)
				evs := h.customerEvents(name)
				require.True(t, has(evs, store.ActionDelete, store.OutcomeDryRun))
				require.False(t, slices.ContainsFunc(evs, func(ev store.Event) bool {
					return ev.Outcome == store.OutcomeIntent || ev.Outcome == store.OutcomeOK && ev.Action != store.ActionPlan
				}), "a dry run wrote a row of a real step for %s: %+v", name, evs)
			}
			require.Len(t, h.customerEvents("old-a"), 4, "plan, two cancel_order dry_run rows, delete dry_run")

			require.Equal(t, store.ModeDryRun, r.Mode)
			run := h.lastRun()
			require.Equal(t, store.ModeDryRun, run.Mode)
			require.Equal(t, store.RunSucceeded, run.Status)
			require.NotEqual(t, [16]byte{}, r.PlanID)
			plan, err := h.store.Plan(context.Background(), r.PlanID)
			require.NoError(t, err)
			require.Equal(t, r.RunID, plan.RunID)
			var planned []string
			for _, it := range plan.Items {
				require.Equal(t, engine.ActionDelete, it.Action)
				require.Equal(t, h.account, it.Account)
				planned = append(planned, nameOf(it.Domain))
				if nameOf(it.Domain) == "old-a" {
					require.Len(t, it.Orders, 2, "the plan names the orders it would cancel")
				}
			}
			slices.Sort(planned)
			require.Equal(t, []string{"old-a", "old-b", "old-bare"}, planned)
		})
	}
}

func TestApplyCarriesOutExactlyThePlan(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			h := newSandbox(t, b.open)
			dry := h.pass(dryRun)

			// Between the plan and its application a customer expires that
			// the plan never named, and a person protects a planned one.
			h.add(ci("late", 9*day, software()))
			require.NoError(t, h.store.AddKeep(context.Background(), store.Keep{CustomerID: h.id("old-b"), Reason: "debugging a billing issue", AddedBy: "test"}))

			r, err := h.engine().Apply(context.Background(), dry.PlanID)
			require.NoError(t, err)

			require.Equal(t, []string{"old-a", "old-bare"}, h.gone())
			require.Equal(t, pcsim.Mutations{}, h.mutations("late"), "apply touched a customer outside the plan")
			require.Equal(t, pcsim.Mutations{}, h.mutations("old-b"), "apply touched a customer protected since the plan")

			it := item(t, r, h.id("old-b"))
			require.Equal(t, engine.OutcomeSkipped, it.Outcome)
			require.Contains(t, it.Reason, "plan no longer holds")
			require.Contains(t, it.Reason, "debugging a billing issue")
			skip, found := find(h.customerEvents("old-b"), store.ActionSkip, store.OutcomeSkipped)
			require.True(t, found, "the skipped planned customer has no skip row")
			require.Contains(t, skip.Detail, "debugging a billing issue")
			require.Equal(t, r.RunID, skip.RunID)

			planned := map[string]bool{}
			for _, it := range r.Items {
				planned[it.CustomerID] = true
			}
			require.Equal(t, map[string]bool{h.id("old-a"): true, h.id("old-b"): true, h.id("old-bare"): true}, planned,
				"apply reports on the plan's customers and no others")

			require.Equal(t, store.ModeLive, r.Mode)
			run := h.lastRun()
			require.Equal(t, dry.PlanID, run.PlanID)
			require.Equal(t, 2, r.Counts.Deleted)
			for _, name := range []string{"old-a", "old-bare"} {
				require.Equal(t, engine.OutcomeDeleted, item(t, r, h.id(name)).Outcome)
				require.Equal(t, store.StateDeleted, h.state(name).State)
			}
		})
	}
}

func TestApplyRefusesAPlanOlderThanPlanMaxAge(t *testing.T) {
	h := newHarness(t, opts{customers: []pcsim.SeedCustomer{ci("old", 10*day, software())}, limits: "  plan_max_age: 1h\n"})
	dry := h.pass(dryRun)
	runs, err := h.store.Runs(context.Background(), 0)
	require.NoError(t, err)

	h.clock.Advance(61 * time.Minute)
	r, err := h.engine().Apply(context.Background(), dry.PlanID)

	require.ErrorContains(t, err, "plan_max_age")
	require.Nil(t, r)
	require.Zero(t, h.sim.Stats().MutatingCalls)
	require.Empty(t, h.gone())
	after, err := h.store.Runs(context.Background(), 0)
	require.NoError(t, err)
	require.Len(t, after, len(runs), "a refused plan starts no run")
}
