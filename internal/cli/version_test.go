package cli

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestVersion(t *testing.T) {
	t.Run("version and --version print the same text", func(t *testing.T) {
		r := reaper(t, "version")
		require.Equal(t, 0, r.code, r)
		require.Regexp(t, `^reaper \S+\n`, r.stdout)
		require.Contains(t, r.stdout, "go         "+runtime.Version())
		v := reaper(t, "--version")
		require.Equal(t, 0, v.code, v)
		require.Equal(t, r.stdout, v.stdout)
	})

	t.Run("--json is snake_case and omits what is unknown", func(t *testing.T) {
		r := reaper(t, "version", "--json")
		require.Equal(t, 0, r.code, r)
		var got map[string]any
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &got))
		require.NotEmpty(t, got["version"])
		require.Equal(t, runtime.Version(), got["go_version"])
		require.NotContains(t, got, "build_time", "no build time was stamped")
	})
}

// TestVersionIsStampedWithLdflags builds the binary the way the Dockerfile
// does and checks that the -X path it uses reaches `reaper version`.
func TestVersionIsStampedWithLdflags(t *testing.T) {
	if testing.Short() {
		t.Skip("builds cmd/reaper")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(t.TempDir(), "reaper")
	const pkg = "github.com/tipreaper/tipreaper/internal/cli"
	build := exec.Command(goTool, "build", "-o", bin,
		"-ldflags", "-X "+pkg+".version=9.8.7-test -X "+pkg+".built=2026-12-03T20:00:00Z",
		"github.com/tipreaper/tipreaper/cmd/reaper")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)

	out, err = exec.Command(bin, "version").CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "reaper 9.8.7-test\n")
	require.Contains(t, string(out), "built      2026-12-03T20:00:00Z\n")
	out, err = exec.Command(bin, "--version").CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "reaper 9.8.7-test\n")
}
