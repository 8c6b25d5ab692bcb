package cli

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestBenchQuickPrintsTheTableOfItsScenario(t *testing.T) {
	r := reaper(t, "bench", "--quick", "--scenario", "small", "--concurrency", "8")
	require.Equal(t, exitOK, r.code, r)
	require.Contains(t, r.stdout, "| small | tipreaper | 7/10 |", "the pass did not delete exactly the 7 expired customers of 10")
	require.Contains(t, r.stdout, "| small | sample | 7/10 |")
	require.Contains(t, r.stdout, "concurrency 8")
	require.Contains(t, r.stdout, "targets: not evaluated on a quick run")
}

func TestBenchRejectsAnUnknownScenario(t *testing.T) {
	r := reaper(t, "bench", "--scenario", "huge")
	require.Equal(t, exitUsage, r.code, r)
	require.Contains(t, r.stderr, `unknown scenario "huge"`)
}
