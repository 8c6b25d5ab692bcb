package deploy

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tipreaper/tipreaper/internal/cli"
	"github.com/tipreaper/tipreaper/internal/policy"
)

// requireValidCommand fails unless args (without the program name) are a command line the reaper
// binary accepts: the command exists and takes every flag given. It asks the command for its help
// (exit 0) with the same flags, so nothing runs.
func requireValidCommand(t *testing.T, where string, args []string) {
	t.Helper()
	require.NotEmpty(t, args, "%s: no command", where)
	var stdout, stderr bytes.Buffer
	code := cli.Run(t.Context(), append(append([]string{}, args...), "-h"), strings.NewReader(""), &stdout, &stderr)
	require.Zero(t, code, "%s: `reaper %s` is not a valid command line:\n%s", where, strings.Join(args, " "), &stderr)
}

// exampleConfig is config.example.yaml with its client secret variable set (the others have defaults).
func exampleConfig(t *testing.T) *policy.Config {
	t.Helper()
	path := filepath.Join("..", "config.example.yaml")
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	cfg, err := policy.Parse(path, data, func(k string) (string, bool) {
		if k == "PC_CLIENT_SECRET" {
			return "placeholder", true
		}
		return "", false
	})
	require.NoError(t, err)
	return cfg
}

// stopBudget is how long a stopping daemon may take: the drain of the example config (its value is the
// default) plus time to close the run and the store.
func stopBudget(t *testing.T) time.Duration {
	return time.Duration(exampleConfig(t).Limits.DrainTimeout) + 30*time.Second
}
