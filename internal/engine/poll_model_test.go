package engine

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tipreaper/tipreaper/internal/store"
)

func TestTheCancelModelSearchesUntilBracketedThenStepsToAHighQuantile(t *testing.T) {
	const ms = time.Millisecond
	for _, tc := range []struct {
		name        string
		start       time.Duration
		early, late bool // bracketed before the observation
		t           time.Duration
		cancelled   bool
		want        time.Duration
	}{
		{"an early first poll with nothing learned doubles the expectation", 500 * ms, false, false, 500 * ms, false, 1000 * ms},
		{"an early first poll made before the expectation doubles its time, not the expectation", 500 * ms, false, false, 100 * ms, false, 500 * ms},
		{"a late first poll with nothing learned lowers it to 0.6 of its time", 500 * ms, false, false, 500 * ms, true, 300 * ms},
		{"a search that found only early polls keeps doubling", 1000 * ms, true, false, 1000 * ms, false, 2000 * ms},
		{"a search that found only late polls keeps dropping", 300 * ms, false, true, 300 * ms, true, 180 * ms},
		{"once bracketed, an early poll raises it to 1.3 of its time", 1000 * ms, true, true, 1000 * ms, false, 1300 * ms},
		{"once bracketed, a late poll lowers it to 0.97 of its time", 1000 * ms, true, true, 1000 * ms, true, 970 * ms},
		{"a late poll counts from the expectation its wait was drawn from, not its jittered time", 1000 * ms, true, true, 1080 * ms, true, 970 * ms},
		{"it never drops below the floor", 25 * ms, true, true, 20 * ms, true, expectMin},
		{"it never grows beyond the cancel timeout", 40 * time.Second, true, true, 50 * time.Second, false, time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newCancelModel(tc.start, time.Minute)
			m.early, m.late = tc.early, tc.late
			m.observe(tc.t, tc.start, tc.cancelled)
			require.Equal(t, tc.want, m.expect)
			require.True(t, m.early || m.late)
		})
	}
}

func TestABurstOfFirstPollsAtOneTimeCountsOnce(t *testing.T) {
	m := newCancelModel(time.Second, time.Hour)
	m.early, m.late = true, true
	for range 20 {
		m.observe(time.Second, time.Second, false)
	}
	require.Equal(t, 1300*time.Millisecond, m.expect, "twenty early polls at 1 s compounded")
}

func TestACancelModelWithNoHistoryStartsAtThePollIntervalWithinItsBounds(t *testing.T) {
	require.Equal(t, 500*time.Millisecond, newCancelModel(500*time.Millisecond, 30*time.Minute).expect)
	require.Equal(t, expectMin, newCancelModel(time.Millisecond, 30*time.Minute).expect)
	require.Equal(t, time.Second, newCancelModel(5*time.Second, time.Second).expect, "beyond the cancel timeout")
}

func TestWaitsBeforeAPoll(t *testing.T) {
	m := newCancelModel(time.Second, time.Hour)
	for range 100 {
		w, base := m.firstWait()
		require.Equal(t, time.Second, base)
		require.GreaterOrEqual(t, w, time.Second)
		require.LessOrEqual(t, w, 1100*time.Millisecond, "jitter above 10 %")
	}
	// After an early first poll: until the (raised) expectation, but at
	// least a quarter of the time elapsed.
	require.Equal(t, 600*time.Millisecond, m.nextWait(time.Second, 400*time.Millisecond, 1, time.Minute))
	require.Equal(t, time.Second, m.nextWait(time.Second, 4*time.Second, 1, time.Minute))
	require.Equal(t, 500*time.Millisecond, m.nextWait(time.Second, 400*time.Millisecond, 1, 500*time.Millisecond), "beyond poll_max")
	// Later rounds grow by 1.4–1.6, up to poll_max.
	for range 100 {
		w := m.nextWait(time.Second, 3*time.Second, 2, time.Minute)
		require.GreaterOrEqual(t, w, 1400*time.Millisecond)
		require.LessOrEqual(t, w, 1600*time.Millisecond)
	}
	require.Equal(t, time.Minute, m.nextWait(50*time.Second, 3*time.Minute, 5, time.Minute))
}

func TestTheCancelModelSettlesWhereAboutOneFirstPollInTenIsEarly(t *testing.T) {
	// Each customer polls first at the model's wait; its orders read
	// cancelled after a delay uniform in 1–2 s. Started far off (50 ms), the
	// model must find the delay and then be early about 10 % of the time.
	r := rand.New(rand.NewPCG(1, 2))
	m := newCancelModel(50*time.Millisecond, time.Hour)
	early := 0
	var sum time.Duration
	const warm, n = 200, 4000
	for i := range warm + n {
		delay := time.Second + time.Duration(r.Int64N(int64(time.Second)))
		w, base := m.firstWait()
		m.observe(w, base, w >= delay)
		if i >= warm {
			sum += w
			if w < delay {
				early++
			}
		}
	}
	frac := float64(early) / n
	require.InDelta(t, 0.10, frac, 0.06, "share of early first polls")
	// The mean first wait sits near the delay's 90th percentile (1.9 s), not
	// at its maximum or beyond.
	mean := sum / n
	require.Greater(t, mean, 1600*time.Millisecond)
	require.Less(t, mean, 2150*time.Millisecond)
}

func TestTheCancelModelIsSavedOnlyWhenItLearnedSomethingAndRestoredWithinBounds(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	m := newCancelModel(500*time.Millisecond, time.Minute)
	_, ok := m.snapshot("tip", now)
	require.False(t, ok, "a cold model that learned nothing is not saved")

	m.observe(500*time.Millisecond, 500*time.Millisecond, false)
	ct, ok := m.snapshot("tip", now)
	require.True(t, ok)
	require.Equal(t, store.CancelTiming{Account: "tip", Expect: time.Second, Early: true, UpdatedAt: now}, ct)
	m.saved(ct)
	_, ok = m.snapshot("tip", now)
	require.False(t, ok, "saved: nothing new")

	m.observe(time.Second, time.Second, false)
	m.saved(ct) // an older snapshot was saved meanwhile
	_, ok = m.snapshot("tip", now)
	require.True(t, ok, "an observation made after the snapshot was lost")

	warm := newCancelModel(500*time.Millisecond, time.Minute)
	warm.restore(store.CancelTiming{Expect: 1700 * time.Millisecond, Early: true, Late: true})
	require.Equal(t, 1700*time.Millisecond, warm.expect)
	require.True(t, warm.early && warm.late)
	_, ok = warm.snapshot("tip", now)
	require.False(t, ok, "a restored model that learned nothing is not saved again")

	short := newCancelModel(500*time.Millisecond, 10*time.Second)
	short.restore(store.CancelTiming{Expect: time.Hour})
	require.Equal(t, 10*time.Second, short.expect, "a saved time beyond this cancel_timeout")
}
