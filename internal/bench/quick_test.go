package bench

import (
	"bytes"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// BenchmarkFleetPlan starts this test binary again to serve the fleet's
	// simulators in a process of their own.
	if child, err := ServeFleetIfChild(os.Stdin, os.Stdout); child {
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// The quick scenarios are a smoke test of the harness: every scenario
// produces its rows, and each pass deleted exactly the customers the policy
// expires (and the sample its share), nothing else. No duration is checked.
func TestQuickScenariosProduceTheTableAndDeleteExactlyTheSelectedSet(t *testing.T) {
	name := "all"
	if testing.Short() {
		name = "small"
	}
	scenarios, err := Lookup(name, true)
	require.NoError(t, err)
	var all []Result
	for _, s := range scenarios {
		t.Run(s.Name, func(t *testing.T) {
			rs, err := Run(t.Context(), s, &bytes.Buffer{})
			require.NoError(t, err)
			want := 1
			if s.Baseline {
				want = 2
			}
			require.Len(t, rs, want)
			for _, r := range rs {
				require.Empty(t, r.Problems, "%s %s", s.Name, r.Algorithm)
				require.Positive(t, r.Calls)
				if s.Fleet {
					require.Zero(t, r.Deleted, "a planning pass deletes nothing")
					require.Equal(t, s.Accounts*s.Customers*s.Passes, r.Planned)
					continue
				}
				require.Positive(t, r.Selected)
				require.Equal(t, r.Selected, r.Deleted, "%s %s", s.Name, r.Algorithm)
				require.Less(t, r.Selected, r.Listed+1)
			}
			all = append(all, rs...)
		})
	}
	var out bytes.Buffer
	WriteTable(&out, all)
	for _, s := range scenarios {
		require.Contains(t, out.String(), "| "+s.Name+" | tipreaper |")
	}
	require.Contains(t, out.String(), "| small | sample |")
	require.Contains(t, out.String(), "lower bound")
	require.Contains(t, out.String(), "targets:")
}

var testNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func TestLookupRejectsAnUnknownScenario(t *testing.T) {
	_, err := Lookup("everything", false)
	require.ErrorContains(t, err, `unknown scenario "everything"`)
}

// The lower bound of the full sandbox at 500 req/min: 602 forced calls need
// two windows, so the floor (60 s + one latency) dominates the critical path.
func TestTheLowerBoundOfTheFullSandboxIsItsRateFloor(t *testing.T) {
	s := scenario("full", false)
	var sel []customer
	for _, c := range s.sandbox(0, testNow) {
		if c.delete {
			sel = append(sel, c)
		}
	}
	b := newBound(len(sel), sel, s.Latency, s.CancelDelay[1], s.ServerRate, s.ClientRate)
	require.Equal(t, 2+75+375+75+75, b.Calls)
	require.Equal(t, 2+75+375+75, b.CallsNoPoll)
	require.Equal(t, rateWindow+80*time.Millisecond, b.Floor)
	require.Equal(t, 10*80*time.Millisecond+3*time.Second, b.Critical)
	require.Equal(t, b.Floor, b.Lower())

	s = scenario("throttled", false)
	b = newBound(len(sel), sel, s.Latency, s.CancelDelay[1], s.ServerRate, s.ClientRate)
	require.Equal(t, 4*rateWindow+80*time.Millisecond, b.Floor, "602 calls at 150 a window need five windows")
	require.Equal(t, 3*rateWindow+80*time.Millisecond, b.FloorNoPoll, "527 need four")
}
