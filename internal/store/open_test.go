package store_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/tipreaper/tipreaper/internal/store"
)

func TestOpenSQLiteCreatesAPrivateStateDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "reaper-state")
	s, err := store.Open(t.Context(), "", dir)
	require.NoError(t, err)
	defer s.Close()
	info, err := os.Stat(dir)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), info.Mode().Perm())
}

func TestTwoStoresOnOneStateDirWorkAtOnceAndExcludeEachOtherPerAccount(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	daemon := openMigrated(t, dir)
	lease, ok, err := daemon.AcquireLease(ctx, "contoso", time.Hour)
	require.NoError(t, err)
	require.True(t, ok)

	operator := openMigrated(t, dir)
	require.NoError(t, operator.AddKeep(ctx, store.Keep{CustomerID: "c1", Reason: "demo"}), "keep add works while a pass runs")
	_, ok, err = operator.AcquireLease(ctx, "contoso", time.Hour)
	require.NoError(t, err)
	require.False(t, ok, "but not a second pass on the same account")
	_, ok, err = operator.AcquireLease(ctx, "fabrikam", time.Hour)
	require.NoError(t, err)
	require.True(t, ok, "another account is free")

	require.NoError(t, daemon.ReleaseLease(ctx, lease))
	_, ok, err = operator.AcquireLease(ctx, "contoso", time.Hour)
	require.NoError(t, err)
	require.True(t, ok)
}

func openMigrated(t *testing.T, dir string) store.Store {
	t.Helper()
	s, err := store.Open(t.Context(), "", dir)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	require.NoError(t, s.Migrate(t.Context()))
	return s
}

// holdEnv makes this test binary, run as a child, work the state dir it names (a lease on account
// "contoso" and a running run) until killed.
const holdEnv = "STORE_TEST_HOLD_STATE_DIR"

func TestHoldStateDir(t *testing.T) {
	dir := os.Getenv(holdEnv)
	if dir == "" {
		t.Skip("helper process for TestAnotherProcessWorkingTheStateDirLocksOutNobody")
	}
	fail := func(err error) {
		os.Stdout.WriteString("error: " + err.Error() + "\n")
		os.Exit(1)
	}
	ctx := context.Background()
	s, err := store.Open(ctx, "", dir)
	if err != nil {
		fail(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		fail(err)
	}
	if _, ok, err := s.AcquireLease(ctx, "contoso", time.Hour); err != nil || !ok {
		fail(fmt.Errorf("lease: ok=%v err=%v", ok, err))
	}
	id, _ := uuid.NewV7()
	if err := s.StartRun(ctx, store.Run{ID: id, Mode: store.ModeLive}); err != nil {
		fail(err)
	}
	os.Stdout.WriteString("holding\n")
	time.Sleep(time.Hour) // until the parent kills it
}

func TestAnotherProcessWorkingTheStateDirLocksOutNobody(t *testing.T) {
	dir := t.TempDir()
	child := exec.Command(os.Args[0], "-test.run=^TestHoldStateDir$")
	child.Env = append(os.Environ(), holdEnv+"="+dir)
	out, err := child.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, child.Start())
	t.Cleanup(func() { _ = child.Process.Kill(); _ = child.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "holding\n", line)

	ctx := t.Context()
	s := openMigrated(t, dir)
	require.NoError(t, s.AddKeep(ctx, store.Keep{CustomerID: "c1", Reason: "demo"}), "an operator's command works")
	keeps, err := s.Keeps(ctx)
	require.NoError(t, err)
	require.Len(t, keeps, 1)
	_, ok, err := s.AcquireLease(ctx, "contoso", time.Hour)
	require.NoError(t, err)
	require.False(t, ok, "the other process's pass holds the account")
	n, err := s.CloseDeadRuns(ctx, time.Now())
	require.NoError(t, err)
	require.Zero(t, n, "its run is alive")

	// A crash, not a clean Close: the kernel releases the instance's lock with the process.
	require.NoError(t, child.Process.Kill())
	_ = child.Wait()
	_, ok, err = s.AcquireLease(ctx, "contoso", time.Hour)
	require.NoError(t, err)
	require.True(t, ok, "the lease of the dead process is taken over at once")
	n, err = s.CloseDeadRuns(ctx, time.Now())
	require.NoError(t, err)
	require.Equal(t, 1, n, "and its run closed as interrupted")
}

func TestOpenErrorsNeverShowThePassword(t *testing.T) {
	const secret = "s3cr3t-Pw"
	for _, tc := range []struct {
		name, url string
	}{
		{"a password in the user info of an unreachable server", "postgres://postgres:" + secret + "@127.0.0.1:1/postgres?sslmode=disable&connect_timeout=2"},
		{"a password parameter of an unreachable server", "postgresql://postgres@127.0.0.1:1/postgres?sslmode=disable&connect_timeout=2&password=" + secret},
		{"a percent-encoded password", "postgres://postgres:" + secret + "%2F%3A@127.0.0.1:1/postgres?sslmode=disable&connect_timeout=2"},
		{"a url that does not parse", "postgres://postgres:" + secret + "@127.0.0.1:port/postgres"},
		{"a url pgx refuses", "postgres://postgres:" + secret + "@127.0.0.1/postgres?sslmode=sometimes"},
		{"a database that is not supported", "mysql://root:" + secret + "@127.0.0.1/reaper"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := store.Open(t.Context(), tc.url, t.TempDir())
			if err == nil {
				s.Close()
			}
			require.Error(t, err)
			require.NotContains(t, err.Error(), secret)
			require.False(t, strings.Contains(err.Error(), "%2F%3A"), err.Error())
		})
	}
}

func TestOpenSQLiteWithoutAStateDirFails(t *testing.T) {
	_, err := store.Open(t.Context(), "", "")
	require.Error(t, err)
}
