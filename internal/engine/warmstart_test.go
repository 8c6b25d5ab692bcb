package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tipreaper/tipreaper/internal/pcsim"
	"github.com/tipreaper/tipreaper/internal/store"
)

func TestAPassSavesWhatItLearnedOfCancellations(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, opts{store: b.open, customers: []pcsim.SeedCustomer{
				ci("a", 10*day, software()), ci("b", 10*day, reserved(), software()), ci("empty", 10*day)}})
			_, found, err := h.store.CancelTiming(context.Background(), h.account)
			require.NoError(t, err)
			require.False(t, found)

			h.pass()

			require.Equal(t, []string{"a", "b", "empty"}, h.gone())
			ct, found, err := h.store.CancelTiming(context.Background(), h.account)
			require.NoError(t, err)
			require.True(t, found, "the pass did not keep its cancellation model")
			require.Equal(t, h.account, ct.Account)
			require.Positive(t, ct.Expect)
			require.True(t, ct.Early || ct.Late)
		})
	}
}

func TestAFreshProcessPollsAtTheCancellationTimeAnEarlierOneLearned(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			// Cold, the first poll would wait poll_interval, ten minutes: the
			// pass finishes only if it starts from the saved 50 ms.
			h := newHarness(t, opts{store: b.open, customers: []pcsim.SeedCustomer{ci("a", 10*day, software()), ci("b", 10*day, reserved())},
				limits:      "  poll_interval: 10m\n  poll_max: 1h\n  cancel_timeout: 3h\n",
				passTimeout: 20 * time.Second})
			saved := store.CancelTiming{Account: h.account, Expect: 50 * time.Millisecond, Early: true, Late: true,
				UpdatedAt: h.clock.Now().Add(-time.Hour)}
			require.NoError(t, h.store.SaveCancelTiming(context.Background(), saved))

			r := h.pass()

			require.Equal(t, store.RunSucceeded, r.Status)
			require.Equal(t, []string{"a", "b"}, h.gone())
			ct, _, err := h.store.CancelTiming(context.Background(), h.account)
			require.NoError(t, err)
			require.True(t, ct.UpdatedAt.After(saved.UpdatedAt), "the pass did not save what it learned")
			require.True(t, ct.Early && ct.Late, "a bracketed model came back unbracketed")
			require.Less(t, ct.Expect, time.Hour, "the saved model was replaced by the cold one")
		})
	}
}
