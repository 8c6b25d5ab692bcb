package engine_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tipreaper/tipreaper/internal/policy"
	"github.com/tipreaper/tipreaper/internal/store"
	"github.com/tipreaper/tipreaper/internal/store/storetest"
)

func TestWhyExplainsACustomerWithoutChangingAnything(t *testing.T) {
	h := newSandbox(t, storetest.SQLite)
	e := h.engine()
	ctx := context.Background()

	for _, tc := range []struct {
		name     string
		customer string
		verdict  policy.Verdict
		nextPass string
	}{
		{"an expired customer would be deleted", "old-a", policy.Expired, "cancel its orders and delete it (policy ci)"},
		{"a customer kept with reaper keep is protected", "keep-store", policy.Protected, "skip it: protected by reaper_keep"},
		{"a policy keep protects", "golden-1", policy.Protected, "skip it: protected by policy ci keep.domains"},
		{"a young customer waits", "young", policy.TooYoung, "nothing yet"},
		{"a customer no policy selects is left alone", "contoso", policy.NotSelected, "nothing: no policy selects it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x, err := e.Why(ctx, h.id(tc.customer))
			require.NoError(t, err)
			require.True(t, x.Found)
			require.Equal(t, h.account, x.Account)
			require.Equal(t, "unseen", x.Customer.State, "no pass has sighted it yet")
			require.True(t, x.AgeKnown)
			require.Contains(t, x.AgeSource, "activity log")
			require.Equal(t, tc.verdict, x.Decision.Verdict, x.Decision.Reason)
			require.Contains(t, x.NextPass, tc.nextPass)
		})
	}

	x, err := e.Why(ctx, "00000000-0000-0000-0000-0000000000ff")
	require.NoError(t, err)
	require.False(t, x.Found)

	require.Zero(t, h.sim.Stats().MutatingCalls, "why changed Partner Center")
	_, known, err := h.store.Customer(ctx, h.account, h.id("old-a"))
	require.NoError(t, err)
	require.False(t, known, "why wrote a customer row")

	h.pass()
	x, err = e.Why(ctx, h.id("old-a"))
	require.NoError(t, err)
	require.Equal(t, store.StateDeleted, x.Customer.State)
	require.Contains(t, x.NextPass, "it was deleted at")
	require.NotEmpty(t, x.Recent)
	require.Equal(t, store.ActionDelete, x.Recent[len(x.Recent)-1].Action)
}
