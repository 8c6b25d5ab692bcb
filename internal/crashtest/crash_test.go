package crashtest

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const (
	shortTrials = 50
	maxKills    = 5 // kills per trial, at most
	// finalPassTimeout bounds the uninterrupted pass that must finish.
	finalPassTimeout = 60 * time.Second
)

// totals sum what the trials did, for the log line at the end.
type totals struct {
	trials, landed, resumes, reusedIntents atomic.Int64
}

func TestCrash(t *testing.T) {
	trials, seeds := trialPlan(t)
	d := passDuration(t)
	t.Logf("an uninterrupted pass takes %s on SQLite, %s on Postgres: kills land within those", d.sqlite, d.postgres)

	var sum totals
	t.Cleanup(func() {
		t.Logf("%d trials: %d passes killed, %d resumes, %d unanswered intents repeated",
			sum.trials.Load(), sum.landed.Load(), sum.resumes.Load(), sum.reusedIntents.Load())
	})
	for i := range trials {
		seed := seeds(i)
		pg := i%5 == 4
		if s := os.Getenv("CRASH_STORE"); s != "" {
			pg = s == "postgres"
		}
		name := fmt.Sprintf("trial %d seed %d sqlite", i, seed)
		if pg {
			name = fmt.Sprintf("trial %d seed %d postgres", i, seed)
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			runTrial(t, seed, pg, d.of(pg), &sum)
		})
		if os.Getenv("CRASH_STORE") == "sqlite" || os.Getenv("CRASH_FAULTS") == "kill" {
			continue
		}
		t.Run(fmt.Sprintf("trial %d seed %d postgres sessions terminated", i, seed), func(t *testing.T) {
			t.Parallel()
			runFaultTrial(t, seed, d.postgres, &sum)
		})
	}
}

// maxTerminations is how many times a fault trial terminates the reaper's
// database sessions during one pass, at most.
const maxTerminations = 3

// runFaultTrial is one database-fault trial on Postgres: during a pass that
// is never killed, the server terminates all of the reaper's sessions
// (pg_terminate_backend) at up to maxTerminations random instants; then a
// final pass runs and everything is checked as after kills.
func runFaultTrial(t *testing.T, seed int64, d time.Duration, sum *totals) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("replay this trial: CRASH_SEED=%d CRASH_STORE=postgres CRASH_PASS=%s go test ./internal/crashtest -run TestCrash -v", seed, d)
		}
	})
	tr := newTrial(t, seed, true)
	rng := rand.New(rand.NewPCG(uint64(seed), 0xdbfa)) //nolint:gosec // test randomness, replayable by seed
	at := make([]time.Duration, 1+rng.IntN(maxTerminations))
	for i := range at {
		at[i] = time.Duration(rng.Int64N(int64(d)))
	}
	slices.Sort(at)

	ctx, cancel := context.WithTimeout(t.Context(), finalPassTimeout)
	defer cancel()
	var terminated atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		start := time.Now()
		for _, when := range at {
			select {
			case <-stop:
				return
			case <-time.After(time.Until(start.Add(when))):
			}
			n, err := tr.store.terminateSessions(ctx)
			if err != nil {
				t.Errorf("terminate the reaper's sessions: %v", err)
				return
			}
			terminated.Add(n)
		}
	})
	faulted := tr.run(ctx, -1)
	close(stop)
	wg.Wait()
	require.False(t, faulted.killed, "the pass whose sessions were terminated must end by itself within %s\n%s", finalPassTimeout, faulted.output)
	require.Contains(t, []int{0, 1}, faulted.exitCode, "a pass whose database sessions were terminated exits 0 or 1\n%s", faulted.output)
	sum.trials.Add(1)

	fctx, fcancel := context.WithTimeout(t.Context(), finalPassTimeout)
	defer fcancel()
	final := tr.run(fctx, -1)
	require.False(t, final.killed, "the final pass must finish within %s\n%s", finalPassTimeout, final.output)
	require.Contains(t, []int{0, 1}, final.exitCode, "the final pass exits 0 or 1\n%s", final.output)

	st := readStore(t, tr.db)
	c := check(tr.sb, st)
	t.Logf("%d sessions terminated at %v; faulted pass exit %d; final pass exit %d", terminated.Load(), at, faulted.exitCode, final.exitCode)
	require.Empty(t, c.problems, "violations after %d terminated sessions:\n%s\n--- faulted pass output\n%s\n--- final pass output\n%s",
		terminated.Load(), strings.Join(c.problems, "\n"), faulted.output, final.output)
}

// trialPlan returns how many trials to run and each one's seed: CRASH_SEED
// replays one trial, CRASH_TRIALS sets the count (default 50, also -short).
// CRASH_STORE=sqlite|postgres puts every trial on that store.
func trialPlan(t *testing.T) (int, func(int) int64) {
	if s := os.Getenv("CRASH_SEED"); s != "" {
		seed, err := strconv.ParseInt(s, 10, 64)
		require.NoError(t, err, "CRASH_SEED")
		return 1, func(int) int64 { return seed }
	}
	n := shortTrials
	if s := os.Getenv("CRASH_TRIALS"); s != "" && !testing.Short() {
		var err error
		n, err = strconv.Atoi(s)
		require.NoError(t, err, "CRASH_TRIALS")
	}
	base := time.Now().UnixNano() % 1_000_000_000
	return n, func(i int) int64 { return base + int64(i) }
}

// passDurations are how long an uninterrupted pass takes on each store:
// Postgres passes take longer (connecting, migrating, a round trip per
// write), and kills spread over a SQLite pass would mostly land in a
// Postgres pass's start.
type passDurations struct{ sqlite, postgres time.Duration }

func (d passDurations) of(pg bool) time.Duration {
	if pg {
		return d.postgres
	}
	return d.sqlite
}

// passDuration is CRASH_PASS when set (to replay a trial's kill instants),
// else the calibrated durations of an uninterrupted pass.
func passDuration(t *testing.T) passDurations {
	if s := os.Getenv("CRASH_PASS"); s != "" {
		d, err := time.ParseDuration(s)
		require.NoError(t, err, "CRASH_PASS")
		require.Positive(t, d, "CRASH_PASS")
		return passDurations{d, d}
	}
	return calibrate(t)
}

// calibrate measures uninterrupted passes on sandboxes like the trials', so
// the kills spread over a whole pass on this machine, however fast it is. It
// runs as many passes at once as trials will, for the same contention: one
// on Postgres (when it can be reached), the others on SQLite.
func calibrate(t *testing.T) passDurations {
	t.Helper()
	trials := make([]*trial, max(2, parallelism()))
	pgAt := -1
	if postgresReachable() {
		pgAt = 0
	}
	for i := range trials {
		trials[i] = newTrial(t, int64(i), i == pgAt)
	}
	results := make([]passResult, len(trials))
	var wg sync.WaitGroup
	for i, tr := range trials {
		wg.Go(func() { results[i] = tr.run(t.Context(), -1) })
	}
	wg.Wait()
	var d passDurations
	var sum time.Duration
	for i, r := range results {
		require.Contains(t, []int{0, 1}, r.exitCode, "calibration pass\n%s", r.output)
		if i == pgAt {
			d.postgres = r.took.Round(time.Millisecond)
			continue
		}
		sum += r.took
	}
	n := len(results)
	if pgAt >= 0 {
		n--
	}
	d.sqlite = (sum / time.Duration(n)).Round(time.Millisecond)
	if d.postgres == 0 {
		d.postgres = d.sqlite // no Postgres trial will run
	}
	return d
}

func parallelism() int {
	if f := flag.Lookup("test.parallel"); f != nil {
		if n, err := strconv.Atoi(f.Value.String()); err == nil {
			return n
		}
	}
	return 1
}

// runTrial is one trial: kill up to maxKills passes at random instants, let
// one finish, then check everything.
func runTrial(t *testing.T, seed int64, pg bool, d time.Duration, sum *totals) {
	store := "sqlite"
	if pg {
		store = "postgres"
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("replay this trial: CRASH_SEED=%d CRASH_STORE=%s CRASH_PASS=%s go test ./internal/crashtest -run TestCrash -v",
				seed, store, d)
		}
	})
	tr := newTrial(t, seed, pg)
	rng := rand.New(rand.NewPCG(uint64(seed), 0xc4a5)) //nolint:gosec // test randomness, replayable by seed

	kills := 1 + rng.IntN(maxKills)
	landed := 0
	for k := range kills {
		delay := time.Duration(rng.Int64N(int64(d)))
		r := tr.run(t.Context(), delay)
		if !r.killed {
			t.Logf("start %d: finished (exit %d) before the kill at %s", k+1, r.exitCode, delay.Round(time.Millisecond))
			require.Contains(t, []int{0, 1}, r.exitCode, "a pass that was not killed exits 0 or 1\n%s", r.output)
			break
		}
		landed++
		t.Logf("start %d: killed after %s (gone after %s)", k+1, delay.Round(time.Millisecond), r.took.Round(time.Millisecond))
	}
	sum.landed.Add(int64(landed))
	sum.trials.Add(1)

	ctx, cancel := context.WithTimeout(t.Context(), finalPassTimeout)
	defer cancel()
	final := tr.run(ctx, -1)
	require.False(t, final.killed, "the final pass must finish within %s\n%s", finalPassTimeout, final.output)
	require.Contains(t, []int{0, 1}, final.exitCode, "the final pass exits 0 or 1\n%s", final.output)

	st := readStore(t, tr.db)
	c := check(tr.sb, st)
	sum.resumes.Add(int64(c.resumes))
	sum.reusedIntents.Add(int64(c.reused))
	t.Logf("%d kills landed; %d resumes, %d unanswered intents repeated; final pass exit %d after %s",
		landed, c.resumes, c.reused, final.exitCode, final.took.Round(time.Millisecond))
	require.Empty(t, c.problems, "violations after %d kills:\n%s\n--- final pass output\n%s",
		landed, strings.Join(c.problems, "\n"), final.output)
}

// trial is one sandbox, one store and the config that joins them.
type trial struct {
	sb     *sandbox
	store  *trialStore
	config string
	db     dbHandle
}

func newTrial(t *testing.T, seed int64, pg bool) *trial {
	t.Helper()
	rng := rand.New(rand.NewPCG(uint64(seed), 0x5eed)) //nolint:gosec // test randomness, replayable by seed
	tr := &trial{sb: newSandbox(t, rng)}
	dir := t.TempDir()
	if pg {
		tr.store = newPostgresStore(t)
	} else {
		tr.store = &trialStore{stateDir: filepath.Join(memDir(t), "state")}
	}
	tr.config = filepath.Join(dir, "reaper.yaml")
	require.NoError(t, os.WriteFile(tr.config, []byte(tr.configText(seed)), 0o600))
	tr.db = tr.store.open(t)
	return tr
}

// memDir returns a temporary directory in memory (/dev/shm) where there is
// one, else t.TempDir(). A SIGKILL leaves the kernel's page cache whole, so an
// fsync changes nothing this test can observe (power loss is another test);
// on a shared disk the fsyncs of parallel trials queue behind each other and
// would make up most of the suite's time.
func memDir(t *testing.T) string {
	t.Helper()
	if fi, err := os.Stat("/dev/shm"); err != nil || !fi.IsDir() {
		return t.TempDir()
	}
	dir, err := os.MkdirTemp("/dev/shm", "tipreaper-crashtest-")
	if err != nil {
		return t.TempDir()
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// configText is the trial's config: one account on the sandbox, one policy
// selecting ci-* domains older than 72h, protections by company name and id.
func (tr *trial) configText(seed int64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "state_dir: %s\n", tr.store.stateDir)
	if tr.store.url != "" {
		fmt.Fprintf(&b, "database:\n  url: '%s'\n", tr.store.url)
	}
	// The account name is unique per trial: Postgres advisory locks are per
	// database, and trials share one.
	fmt.Fprintf(&b, `accounts:
  - name: tip-%d
    partner_tenant_id: %s
    client_id: %s
    client_secret: ${%s}
    base_url: %s
    authority: %s
limits:
  concurrency: 8
  requests_per_minute: 6000
  allow_above_documented_rate: true
  poll_interval: 100ms
  poll_max: 100ms
  cancel_timeout: 20s
keep:
  customer_ids: [%s]
policies:
  - name: ci-leftovers
    account: tip-%d
    select:
      domain: '^ci-[0-9a-f]{8}\.onmicrosoft\.com$'
    older_than: 72h
    keep:
      company_names: ['^CI golden']
`, seed, partnerTenant, clientID, secretEnv, tr.sb.url, tr.sb.url, strings.Join(tr.sb.keepIDs, ", "), seed)
	return b.String()
}

// passResult is how one reaper process ended.
type passResult struct {
	killed   bool // SIGKILL ended it
	exitCode int
	took     time.Duration
	output   string
}

// run starts `reaper once` and SIGKILLs it after killAfter (never when
// negative; then ctx's end kills it). It returns when the process is gone,
// and for Postgres only once its sessions are gone too, as they would be
// before a restarted node's next pass, so that the next pass finds the
// account lock and the dead run's instance lock free.
func (tr *trial) run(ctx context.Context, killAfter time.Duration) passResult {
	var out bytes.Buffer
	cmd := exec.Command(reaperBin, "once", "--config", tr.config, "--log-level", "info")
	cmd.Env = append(os.Environ(), secretEnv+"="+clientSecret)
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return passResult{exitCode: -1, output: err.Error()}
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var timeout <-chan time.Time
	if killAfter >= 0 {
		timer := time.NewTimer(killAfter)
		defer timer.Stop()
		timeout = timer.C
	}
	var err error
	select {
	case err = <-done:
	case <-timeout:
		_ = cmd.Process.Kill()
		err = <-done
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		err = <-done
	}
	r := passResult{took: time.Since(start), output: out.String(), exitCode: cmd.ProcessState.ExitCode()}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
		r.killed = true
	}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		r.output += "\nwait: " + err.Error()
	}
	if tr.store.appName != "" {
		if err := tr.store.awaitSessionsGone(ctx); err != nil {
			r.output += "\n" + err.Error()
		}
	}
	return r
}
