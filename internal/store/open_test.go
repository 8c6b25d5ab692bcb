package store_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

func TestASecondOpenOfAStateDirInThisProcessIsLocked(t *testing.T) {
	dir := t.TempDir()
	first, err := store.Open(t.Context(), "", dir)
	require.NoError(t, err)

	_, err = store.Open(t.Context(), "", dir)
	require.ErrorIs(t, err, store.ErrLocked)
	require.Contains(t, err.Error(), "another tipreaper")
	require.Contains(t, err.Error(), dir)

	require.NoError(t, first.Close())
	again, err := store.Open(t.Context(), "", dir)
	require.NoError(t, err, "closing the first store frees the state dir")
	require.NoError(t, again.Close())
}

// holdEnv makes this test binary, run as a child, hold the state dir it names until killed.
const holdEnv = "STORE_TEST_HOLD_STATE_DIR"

func TestHoldStateDir(t *testing.T) {
	dir := os.Getenv(holdEnv)
	if dir == "" {
		t.Skip("helper process for TestAnOpenStateDirIsLockedForOtherProcesses")
	}
	s, err := store.Open(context.Background(), "", dir)
	if err != nil {
		os.Stdout.WriteString("error: " + err.Error() + "\n")
		os.Exit(1)
	}
	defer s.Close()
	os.Stdout.WriteString("holding\n")
	time.Sleep(time.Hour) // until the parent kills it
}

func TestAnOpenStateDirIsLockedForOtherProcesses(t *testing.T) {
	dir := t.TempDir()
	child := exec.Command(os.Args[0], "-test.run=^TestHoldStateDir$")
	child.Env = append(os.Environ(), holdEnv+"="+dir)
	out, err := child.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, child.Start())
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "holding\n", line)

	_, err = store.Open(t.Context(), "", dir)
	require.ErrorIs(t, err, store.ErrLocked)
	require.Contains(t, err.Error(), "another tipreaper")

	// A crash, not a clean Close: the kernel must release the lock with the process.
	require.NoError(t, child.Process.Kill())
	_ = child.Wait()
	s, err := store.Open(t.Context(), "", dir)
	require.NoError(t, err, "the state dir is free once its holder is dead")
	require.NoError(t, s.Close())
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
