package engine_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tipreaper/tipreaper/internal/engine"
	"github.com/tipreaper/tipreaper/internal/pcsim"
	"github.com/tipreaper/tipreaper/internal/policy"
	"github.com/tipreaper/tipreaper/internal/store"
)

func TestApplyMarksTheCustomersItsPlanMarks(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, opts{store: b.open, policies: ciPolicy + "    grace: 2h\n",
				customers: []pcsim.SeedCustomer{ci("old", 10*day, software())}})
			dry := h.pass(dryRun)
			plan, err := h.store.Plan(context.Background(), dry.PlanID)
			require.NoError(t, err)
			require.Len(t, plan.Items, 1)
			require.Equal(t, engine.ActionMark, plan.Items[0].Action)
			require.Equal(t, store.StateSeen, h.state("old").State, "the dry run marked the customer")

			r, err := h.engine().Apply(context.Background(), dry.PlanID)
			require.NoError(t, err)

			require.Zero(t, h.sim.Stats().MutatingCalls, "marking changed Partner Center")
			require.Empty(t, h.gone())
			it := item(t, r, h.id("old"))
			require.Equal(t, engine.ActionMark, it.Action)
			require.Equal(t, engine.OutcomeMarked, it.Outcome)
			require.Equal(t, 1, r.Counts.Marked)
			st := h.state("old")
			require.Equal(t, store.StateMarked, st.State, "apply did not carry out the plan's mark")
			require.False(t, st.MarkedAt.IsZero())
			require.True(t, st.DeleteAfter.Equal(st.MarkedAt.Add(2*time.Hour)), "delete_after %s is not marked_at %s plus the grace", st.DeleteAfter, st.MarkedAt)
			mark, found := find(h.customerEvents("old"), store.ActionMark, store.OutcomeOK)
			require.True(t, found, "no mark row")
			require.Equal(t, r.RunID, mark.RunID)
			require.Equal(t, dry.PlanID, h.lastRun().PlanID)
			require.Equal(t, store.RunSucceeded, r.Status)
		})
	}
}

func TestADryRunOverTwoAccountsPlansBothAndChangesNothing(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			marking := newHarness(t, opts{store: b.open, customers: []pcsim.SeedCustomer{ci("m-old", 10*day, software()), ci("m-young", day)}})
			// Another seed: customer ids are tenant ids, unique across accounts.
			deleting := newHarness(t, opts{store: func(testing.TB) store.Store { return marking.store }, sim: pcsim.Config{Seed: 8},
				customers: []pcsim.SeedCustomer{ci("d-old", 10*day, software(), reserved()), ci("d-young", day)}})
			yaml := `accounts:
  - {name: "${MARK}", partner_tenant_id: ` + partnerTenant + `, client_id: ` + clientID + `, client_secret: "${PC_CLIENT_SECRET}", base_url: "${MARK_URL}", authority: "${MARK_URL}"}
  - {name: "${DELETE}", partner_tenant_id: ` + partnerTenant + `, client_id: ` + clientID + `, client_secret: "${PC_CLIENT_SECRET}", base_url: "${DELETE_URL}", authority: "${DELETE_URL}"}
policies:
  - {name: ci-mark, account: "${MARK}", select: {domain: '^ci-'}, older_than: 72h, grace: 24h}
  - {name: ci-delete, account: "${DELETE}", select: {domain: '^ci-'}, older_than: 72h}
`
			env := map[string]string{"MARK": marking.account, "MARK_URL": marking.url, "DELETE": deleting.account, "DELETE_URL": deleting.url,
				"PC_CLIENT_SECRET": clientSecret}
			cfg, err := policy.Parse("two.yaml", []byte(yaml), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
			require.NoError(t, err)
			quickPolls(cfg, "")

			r, err := marking.engine(func(o *engine.Options) { o.Config = cfg; o.DryRun = true }).Pass(context.Background())
			require.NoError(t, err)

			require.Zero(t, marking.sim.Stats().MutatingCalls, "a dry run changed the marking account")
			require.Zero(t, deleting.sim.Stats().MutatingCalls, "a dry run changed the deleting account")
			require.Equal(t, store.RunSucceeded, r.Status)
			require.Equal(t, store.ModeDryRun, marking.lastRun().Mode)
			require.Len(t, r.Accounts, 2)
			for _, a := range r.Accounts {
				require.False(t, a.Stopped, "%s: %s", a.Name, a.Reason)
			}
			require.Equal(t, engine.OutcomeWouldMark, item(t, r, marking.id("m-old")).Outcome)
			require.Equal(t, engine.OutcomeWouldDelete, item(t, r, deleting.id("d-old")).Outcome)
			require.Equal(t, store.StateSeen, marking.state("m-old").State)
			require.Equal(t, store.StateSeen, deleting.state("d-old").State)

			plan, err := marking.store.Plan(context.Background(), r.PlanID)
			require.NoError(t, err)
			require.Equal(t, r.RunID, plan.RunID)
			type planned struct{ account, customer, action, policy string }
			var got []planned
			for _, it := range plan.Items {
				got = append(got, planned{it.Account, it.CustomerID, it.Action, it.Policy})
				if it.CustomerID == deleting.id("d-old") {
					require.Len(t, it.Orders, 2, "the plan names the orders it would cancel")
				}
			}
			want := []planned{
				{marking.account, marking.id("m-old"), engine.ActionMark, "ci-mark"},
				{deleting.account, deleting.id("d-old"), engine.ActionDelete, "ci-delete"},
			}
			sortPlanned := func(a, b planned) int { return strings.Compare(a.account, b.account) }
			slices.SortFunc(got, sortPlanned)
			slices.SortFunc(want, sortPlanned)
			require.Equal(t, want, got)
		})
	}
}
