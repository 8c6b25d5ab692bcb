package engine_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tipreaper/tipreaper/internal/engine"
	"github.com/tipreaper/tipreaper/internal/pcsim"
	"github.com/tipreaper/tipreaper/internal/store"
)

func TestAFailureOrAProtectionClearsTheMarkAndTheGraceStartsAgain(t *testing.T) {
	for _, tc := range []struct {
		name string
		// interrupt breaks the chain "still selected after the grace" of a
		// marked customer whose grace is over; heal undoes it.
		interrupt func(t *testing.T, h *harness)
		heal      func(t *testing.T, h *harness)
	}{
		{
			name: "a failed DELETE",
			interrupt: func(t *testing.T, h *harness) {
				h.sim.FailNext(http.MethodDelete, "/v1/customers/"+h.id("g1"), http.StatusBadRequest, 1)
				r := h.pass()
				require.Equal(t, engine.OutcomeFailed, item(t, r, h.id("g1")).Outcome)
			},
			heal: func(*testing.T, *harness) {},
		},
		{
			name: "a failed customer protected for a while",
			interrupt: func(t *testing.T, h *harness) {
				h.sim.FailNext(http.MethodDelete, "/v1/customers/"+h.id("g1"), http.StatusBadRequest, 1)
				h.pass()
				require.NoError(t, h.store.AddKeep(context.Background(), store.Keep{CustomerID: h.id("g1"), Reason: "debugging", AddedBy: "test"}))
				r := h.pass()
				require.Equal(t, engine.OutcomeSkipped, item(t, r, h.id("g1")).Outcome)
			},
			heal: func(t *testing.T, h *harness) {
				_, err := h.store.RemoveKeep(context.Background(), h.id("g1"))
				require.NoError(t, err)
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, opts{policies: ciPolicy + "    grace: 2h\n", customers: []pcsim.SeedCustomer{ci("g1", 10*day, software())}})
			h.pass()
			require.Equal(t, store.StateMarked, h.state("g1").State)
			h.clock.Advance(3 * time.Hour)

			tc.interrupt(t, h)
			require.True(t, h.state("g1").MarkedAt.IsZero(), "the mark survived")
			tc.heal(t, h)
			r := h.pass()

			require.Empty(t, h.gone(), "deleted without a new mark and a full grace")
			it := item(t, r, h.id("g1"))
			require.Equal(t, engine.OutcomeMarked, it.Outcome)
			st := h.state("g1")
			require.Equal(t, store.StateMarked, st.State)
			require.True(t, st.DeleteAfter.Equal(st.MarkedAt.Add(2*time.Hour)))

			h.clock.Advance(3 * time.Hour)
			h.pass()
			require.Equal(t, []string{"g1"}, h.gone(), "after the new grace it goes")
		})
	}
}

func TestADryRunWritesNoResumeRowWithOutcomeOK(t *testing.T) {
	h := newHarness(t, opts{customers: []pcsim.SeedCustomer{ci("crashed", 10*day, software())}})
	id := h.id("crashed")
	at := h.clock.Now().Add(-time.Minute)
	require.NoError(t, h.store.Transition(context.Background(), store.CustomerState{
		Account: h.account, CustomerID: id, Domain: "ci-crashed.onmicrosoft.com", FirstSeen: at.Add(-10 * day), LastSeen: at,
		State: store.StateCancelling, Policy: "ci", StateAt: at, CorrelationID: "0b6f8a34-2d1e-4c55-9f0a-6e7d8c9b0a12"}))

	r := h.pass(dryRun)

	require.Equal(t, store.RunSucceeded, r.Status)
	require.Zero(t, h.sim.Stats().MutatingCalls)
	evs := h.customerEvents("crashed")
	require.False(t, has(evs, store.ActionResume, store.OutcomeOK), "a dry run claimed to resume a customer")
	require.True(t, has(evs, store.ActionResume, store.OutcomeDryRun))
	require.Equal(t, store.StateCancelling, h.state("crashed").State)
}

func TestADryRunExitsZeroWhenItPlannedEveryAccount(t *testing.T) {
	h := newHarness(t, opts{customers: []pcsim.SeedCustomer{
		ci("old-a", 10*day, software()),
		ci("ancient", 80*day, pcsim.SeedOrder{Type: pcsim.TypeReservedInstance, Age: 70 * day}),
	}})

	r := h.pass(dryRun)

	require.Equal(t, engine.OutcomeBlocked, item(t, r, h.id("ancient")).Outcome, "the plan says it would be blocked")
	require.Equal(t, store.RunSucceeded, r.Status)
	require.Equal(t, 0, r.ExitCode(), "a dry run that planned its account succeeded")
}

func TestApplyOfAnAccountAnotherTipreaperHoldsIsNoSuccess(t *testing.T) {
	h := newHarness(t, opts{customers: []pcsim.SeedCustomer{ci("old-a", 10*day, software())}})
	plan := h.pass(dryRun)
	require.NotEqual(t, [16]byte{}, plan.PlanID)
	lease, ok, err := h.store.AcquireLease(context.Background(), h.account, 24*day)
	require.NoError(t, err)
	require.True(t, ok)
	defer func() { require.NoError(t, h.store.ReleaseLease(context.Background(), lease)) }()

	r, err := h.engine().Apply(context.Background(), plan.PlanID)

	require.NoError(t, err)
	require.Empty(t, h.gone())
	require.True(t, r.Accounts[0].Held)
	require.Equal(t, store.RunPartial, r.Status)
	require.Equal(t, 1, r.ExitCode(), "an apply that did nothing is not a success")
}

func TestWhyDoesNotTellToUnblockAReappearedCustomer(t *testing.T) {
	h := newHarness(t, opts{customers: []pcsim.SeedCustomer{ci("back", 10*day, software())}})
	at := h.clock.Now().Add(-day)
	require.NoError(t, h.store.Transition(context.Background(), store.CustomerState{
		Account: h.account, CustomerID: h.id("back"), Domain: "ci-back.onmicrosoft.com", FirstSeen: at.Add(-10 * day), LastSeen: at,
		State: store.StateReappeared, Reason: "recorded deleted but listed again: needs a person", Policy: "ci", StateAt: at, DeletedAt: at}))

	x, err := h.engine().Why(context.Background(), h.id("back"))

	require.NoError(t, err)
	require.NotContains(t, x.NextPass, "unblock")
	require.Contains(t, x.NextPass, "never deleted again automatically")
}

func TestEachCustomerOutcomeIsOneStructuredLogLine(t *testing.T) {
	h := newHarness(t, opts{customers: []pcsim.SeedCustomer{
		ci("old-a", 10*day, software()),
		ci("ancient", 80*day, pcsim.SeedOrder{Type: pcsim.TypeReservedInstance, Age: 70 * day}),
		ci("golden", 10*day, software()),
		ci("young", day),
	}, keep: "  domains: ['^ci-golden']\n"})
	var buf syncBuffer
	r := h.pass(func(o *engine.Options) { o.Logger = slog.New(slog.NewJSONHandler(&buf, nil)) })

	lines := map[string]map[string]any{} // customer_id → its outcome line
	for _, l := range bytes.Split([]byte(buf.String()), []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal(l, &m), "not JSON: %s", l)
		if id, ok := m["customer_id"].(string); ok && m["outcome"] != nil {
			require.NotContains(t, lines, id, "two outcome lines for one customer")
			lines[id] = m
		}
		if d, ok := m["duration_s"]; ok {
			require.IsType(t, float64(0), d, "durations are seconds as a number")
		}
	}
	for name, want := range map[string]string{"old-a": "deleted", "ancient": "blocked", "golden": "protected"} {
		m, ok := lines[h.id(name)]
		require.True(t, ok, "no outcome line for %s", name)
		require.Equal(t, want, m["outcome"])
		require.Equal(t, r.RunID.String(), m["run_id"])
		require.Equal(t, h.account, m["account"])
		require.Equal(t, "ci-"+name+".onmicrosoft.com", m["domain"])
		require.Equal(t, "ci", m["policy"])
		for _, k := range []string{"ms_request_id", "reason"} {
			require.Contains(t, m, k)
		}
	}
	require.NotEmpty(t, lines[h.id("old-a")]["ms_request_id"], "a deletion names its DELETE's request id")
	require.NotContains(t, lines, h.id("young"), "youth is not an outcome a person acts on")
	require.True(t, strings.Contains(buf.String(), `"duration_s"`))
}
