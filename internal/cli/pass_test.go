package cli

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tipreaper/tipreaper/internal/engine"
	"github.com/tipreaper/tipreaper/internal/policy"
	"github.com/tipreaper/tipreaper/internal/store"
)

func TestOnceDryRunChangesNothingAndPrintsThePlan(t *testing.T) {
	sb := newSandbox(t, testSeed(time.Now(), false))
	path := writeConfig(t, sb, "")

	r := reaper(t, "once", "--dry-run", "--config", path)
	require.Equal(t, 0, r.code, r)

	st := sb.sim.Stats()
	require.Zero(t, st.MutatingCalls, "a dry run sends no PATCH and no DELETE")
	require.Len(t, sb.sim.Customers(), 5)

	require.Regexp(t, `ACCOUNT\s+CUSTOMER\s+DOMAIN\s+POLICY\s+AGE\s+ACTION`, r.stdout)
	require.Regexp(t, regexp.MustCompile(`tip\s+`+idOld1+`\s+ci-0a1b2c3d\.onmicrosoft\.com\s+ci-leftovers\s+\S+\s+delete\s+would_delete`), r.stdout)
	require.Regexp(t, `mode dry_run`, r.stdout)
	require.Regexp(t, `reaper apply [0-9a-f-]{36} --config `+regexp.QuoteMeta(path), r.stdout)
	require.NotContains(t, r.stdout+r.stderr, testSecret)
}

func TestOnceLiveDeletesTheExpiredOnes(t *testing.T) {
	sb := newSandbox(t, testSeed(time.Now(), false))
	path := writeConfig(t, sb, "")

	r := reaper(t, "once", "--config", path)
	require.Equal(t, 0, r.code, r)

	left := present(sb.sim)
	require.False(t, left[idOld1], "expired customer 1 is deleted")
	require.False(t, left[idOld2], "expired customer 2 is deleted")
	require.True(t, left[idYoung], "the young customer stays")
	require.True(t, left[idGolden], "the protected customer stays")
	require.True(t, left[idOutside], "the customer outside the policy stays")

	require.Contains(t, r.stdout, "mode live")
	require.Regexp(t, `deleted 2\b`, r.stdout)
	// The plan comes out before the first call that changes anything.
	planAt := strings.Index(r.stdout, "plan of account tip:")
	require.GreaterOrEqual(t, planAt, 0, r)
	require.Less(t, planAt, strings.Index(r.stdout, "cancel_order"), r)
	require.Regexp(t, `(?s)ACCOUNT\s+CUSTOMER\s+DOMAIN\s+POLICY\s+AGE\s+ACTION\s+REASON\n.*tip\s+`+idOld1+`\s+\S+\s+ci-leftovers\s+10d\s+delete\s`,
		r.stdout[planAt:])
	// Progress lines name the customer, the step and its outcome as they happen.
	require.Regexp(t, `ci-0a1b2c3d\.onmicrosoft\.com\s+cancel_order\s+ok\s+order a0000000-0000-4000-8000-000000000001`, r.stdout)
	require.Regexp(t, `ci-0a1b2c3d\.onmicrosoft\.com\s+delete\s+ok`, r.stdout)
	require.NotContains(t, r.stdout+r.stderr, testSecret)

	r = reaper(t, "once", "--config", path)
	require.Equal(t, 0, r.code, "a second pass finds nothing left to do: %s", r)
	require.Zero(t, sb.sim.Stats().Mutations[idYoung].Deletes)
}

func TestOnceRejectsAnUnknownPolicyAsUsage(t *testing.T) {
	sb := newSandbox(t, testSeed(time.Now(), false))
	path := writeConfig(t, sb, "")
	r := reaper(t, "once", "--policy", "ci-leftover", "--config", path)
	require.Equal(t, 2, r.code, r)
	require.Contains(t, r.stderr, `no such policy`)
	require.Zero(t, sb.sim.Stats().MutatingCalls)
}

func TestOnceJSONPrintsTheReport(t *testing.T) {
	sb := newSandbox(t, testSeed(time.Now(), false))
	path := writeConfig(t, sb, "")

	r := reaper(t, "once", "--dry-run", "--json", "--config", path)
	require.Equal(t, 0, r.code, r)
	var rep engine.Report
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep), "stdout is the JSON report and nothing else")
	require.Equal(t, store.ModeDryRun, rep.Mode)
	require.Equal(t, 2, rep.Counts.Selected)
}

func TestApplyCarriesOutTheDryRunPlan(t *testing.T) {
	sb := newSandbox(t, testSeed(time.Now(), false))
	path := writeConfig(t, sb, "")

	r := reaper(t, "once", "--dry-run", "--config", path)
	require.Equal(t, 0, r.code, r)
	planID := regexp.MustCompile(`reaper apply ([0-9a-f-]{36})`).FindStringSubmatch(r.stdout)
	require.NotNil(t, planID, r)

	r = reaper(t, "apply", planID[1], "--config", path)
	require.Equal(t, 0, r.code, r)
	left := present(sb.sim)
	require.False(t, left[idOld1])
	require.False(t, left[idOld2])
	require.Len(t, left, 3)
}

func TestWhyNamesTheProtection(t *testing.T) {
	sb := newSandbox(t, testSeed(time.Now(), false))
	path := writeConfig(t, sb, "")
	r := reaper(t, "once", "--dry-run", "--config", path)
	require.Equal(t, 0, r.code, r)

	r = reaper(t, "why", idGolden, "--config", path)
	require.Equal(t, 0, r.code, r)
	require.Contains(t, r.stdout, "ci-0a1b2c40.onmicrosoft.com")
	require.Contains(t, r.stdout, "CI golden image")
	require.Regexp(t, `protected\s+.*company_names.*\^CI golden`, r.stdout)
	require.Regexp(t, `policies\s+selected by ci-leftovers`, r.stdout)
	require.Contains(t, r.stdout, "next pass")

	r = reaper(t, "why", idOutside, "--config", path)
	require.Equal(t, 0, r.code, r)
	require.Contains(t, r.stdout, "no policy selects it")

	r = reaper(t, "why", "99999999-9999-4999-8999-999999999999", "--config", path)
	require.Equal(t, 0, r.code, r)
	require.Contains(t, r.stdout, "found      no")
}

func TestUnblockResumesOnlyABlockedCustomer(t *testing.T) {
	sb := newSandbox(t, testSeed(time.Now(), true))
	path := writeConfig(t, sb, "")
	t.Setenv("USER", "carol")

	r := reaper(t, "once", "--config", path)
	require.Equal(t, 1, r.code, "a blocked customer makes the pass exit 1: %s", r)
	require.Contains(t, r.stdout, "blocked 1")
	require.True(t, present(sb.sim)[idAncient])

	// A blocked customer that a grace policy had marked (an older row): the
	// mark must not survive the unblock.
	cfg, err := policy.Load(path)
	require.NoError(t, err)
	st, err := store.Open(t.Context(), "", cfg.StateDir)
	require.NoError(t, err)
	cs, ok, err := st.Customer(t.Context(), "tip", idAncient)
	require.NoError(t, err)
	require.True(t, ok)
	cs.MarkedAt, cs.DeleteAfter = time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour)
	require.NoError(t, st.Transition(t.Context(), cs))
	require.NoError(t, st.Close())

	r = reaper(t, "unblock", idOld1, "--config", path)
	require.Equal(t, 1, r.code, "a deleted customer is not blocked: %s", r)
	require.Contains(t, r.stderr, "not blocked")

	r = reaper(t, "unblock", idAncient, "--config", path)
	require.Equal(t, 0, r.code, r)
	require.Contains(t, r.stdout, "unblocked "+idAncient)

	st, err = store.Open(t.Context(), "", cfg.StateDir)
	require.NoError(t, err)
	defer st.Close()
	cs, ok, err = st.Customer(t.Context(), "tip", idAncient)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, store.StateSeen, cs.State)
	require.True(t, cs.MarkedAt.IsZero(), "the mark survived the unblock")
	require.True(t, cs.DeleteAfter.IsZero())
	evs, err := st.CustomerEvents(t.Context(), idAncient)
	require.NoError(t, err)
	last := evs[len(evs)-1]
	require.Equal(t, store.ActionResume, last.Action)
	require.Equal(t, "unblocked by carol", last.Detail)
	require.NoError(t, st.Close())

	r = reaper(t, "unblock", idAncient, "--config", path)
	require.Equal(t, 1, r.code, "unblocking twice is refused: %s", r)
}

func TestDemoRunsAndPassesItsSelfCheck(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo waits for simulated cancellations (a few seconds)")
	}
	t.Setenv("TMPDIR", t.TempDir())
	r := reaper(t, "demo")
	require.Equal(t, 0, r.code, r)
	require.Contains(t, r.stdout, "self-check")
	require.Contains(t, r.stdout, "demo ok")
	require.NotContains(t, r.stdout, "✗")
	require.Regexp(t, `✓ [1-9]\d* deleted customers are gone`, r.stdout)
	require.Regexp(t, `✓ [1-9]\d* protected customers`, r.stdout)
}

func TestRunDaemonRecordsAPassAndExitsZeroWhenStopped(t *testing.T) {
	sb := newSandbox(t, testSeed(time.Now(), false))
	path := writeConfig(t, sb, "schedule: '* * * * *'\n")

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, []string{"run", "--now", "--config", path}, strings.NewReader(""), &stdout, &stderr)
	}()
	require.Eventually(t, func() bool { return strings.Contains(stderr.String(), "pass summary") },
		30*time.Second, 20*time.Millisecond, "the --now pass finishes: %s", stderr.String())
	cancel()
	code := <-done
	require.Equal(t, 0, code, stderr.String())
	require.Contains(t, stderr.String(), "status=succeeded")
	require.Contains(t, stderr.String(), "reaper stopped")
	require.False(t, present(sb.sim)[idOld1])

	cfg, err := policy.Load(path)
	require.NoError(t, err)
	st, err := store.Open(t.Context(), "", cfg.StateDir)
	require.NoError(t, err)
	defer st.Close()
	runs, err := st.Runs(t.Context(), 10)
	require.NoError(t, err)
	require.NotEmpty(t, runs)
	require.Equal(t, store.RunSucceeded, runs[len(runs)-1].Status)
}

func TestRunNeedsASchedule(t *testing.T) {
	path := writeConfig(t, nil, "")
	r := reaper(t, "run", "--config", path)
	require.Equal(t, 2, r.code, r)
	require.Contains(t, r.stderr, "schedule")
}
