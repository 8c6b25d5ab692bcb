package deploy

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const unitPath = "systemd/tipreaper.service"

// unit is a systemd unit file: section → key → every value the key is given, in order.
type unit map[string]map[string][]string

func readUnit(t *testing.T, path string) unit {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	u := unit{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		l := strings.TrimSpace(sc.Text())
		switch {
		case l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, ";"):
		case strings.HasPrefix(l, "[") && strings.HasSuffix(l, "]"):
			section = strings.Trim(l, "[]")
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(l, "=")
			require.True(t, ok, "%s:%d: not KEY=VALUE: %q", path, n, l)
			require.NotEmpty(t, section, "%s:%d: key outside a section", path, n)
			u[section][strings.TrimSpace(k)] = append(u[section][strings.TrimSpace(k)], strings.TrimSpace(v))
		}
	}
	require.NoError(t, sc.Err())
	return u
}

// one returns the only (last) value of a key, as systemd reads a single-valued setting.
func (u unit) one(section, key string) string {
	vs := u[section][key]
	if len(vs) == 0 {
		return ""
	}
	return vs[len(vs)-1]
}

func TestSystemdUnit(t *testing.T) {
	u := readUnit(t, unitPath)
	svc := "Service"

	t.Run("it runs the daemon with a valid command line", func(t *testing.T) {
		f := strings.Fields(u.one(svc, "ExecStart"))
		require.Equal(t, "/usr/local/bin/reaper", f[0])
		require.Equal(t, "run", f[1])
		requireValidCommand(t, unitPath+" ExecStart", f[1:])
	})
	t.Run("reload sends SIGHUP, on which the daemon re-reads its config", func(t *testing.T) {
		require.Equal(t, "/bin/kill -HUP $MAINPID", u.one(svc, "ExecReload"))
	})
	t.Run("it restarts on failure only", func(t *testing.T) {
		require.Equal(t, "on-failure", u.one(svc, "Restart"))
	})
	t.Run("systemd waits longer than the drain before it kills", func(t *testing.T) {
		require.Equal(t, "SIGTERM", u.one(svc, "KillSignal"), "SIGTERM is the graceful stop")
		d, err := time.ParseDuration(u.one(svc, "TimeoutStopSec"))
		require.NoError(t, err, "TimeoutStopSec in Go duration syntax (90s), which systemd reads too")
		require.Greater(t, d, stopBudget(t))
	})
	t.Run("it runs as an unprivileged user that owns only its state directory", func(t *testing.T) {
		require.True(t, u.one(svc, "DynamicUser") == "yes" || (u.one(svc, "User") != "" && u.one(svc, "User") != "root"))
		require.Equal(t, "tipreaper", u.one(svc, "StateDirectory"))
		require.Equal(t, "/var/lib/tipreaper", u.one(svc, "WorkingDirectory"), "state_dir's default ./reaper-state lands in the state directory")
		require.Empty(t, u.one(svc, "CapabilityBoundingSet"))
		require.Contains(t, u[svc], "CapabilityBoundingSet", "an empty bounding set: no capability at all")
	})
	t.Run("the secret comes from a root-only file, not the unit", func(t *testing.T) {
		require.True(t, u.one(svc, "EnvironmentFile") != "" || u.one(svc, "LoadCredential") != "")
		for _, e := range u[svc]["Environment"] {
			require.NotRegexp(t, `(?i)secret|password|database_url`, e, "no secret in Environment=: `systemctl show` prints it to every user")
		}
	})
	t.Run("it is hardened", func(t *testing.T) {
		for k, want := range map[string]string{
			"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
			"PrivateDevices": "yes", "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes",
			"ProtectControlGroups": "yes", "RestrictSUIDSGID": "yes", "LockPersonality": "yes",
			"MemoryDenyWriteExecute": "yes", "SystemCallArchitectures": "native",
		} {
			require.Equal(t, want, u.one(svc, k), k)
		}
	})
}

// installedUnit writes the unit with ExecStart pointing at bin, so systemd-analyze can check that the
// command exists and is executable.
func installedUnit(t *testing.T, bin string) string {
	t.Helper()
	data, err := os.ReadFile(unitPath)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "tipreaper.service")
	require.NoError(t, os.WriteFile(path, []byte(strings.ReplaceAll(string(data), "/usr/local/bin/reaper", bin)), 0o644))
	return path
}

func TestSystemdAnalyze(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze is not installed")
	}
	path := installedUnit(t, dockerBinary(t))

	t.Run("verify finds nothing to say", func(t *testing.T) {
		out, err := exec.Command("systemd-analyze", "verify", "--man=no", path).CombinedOutput()
		require.NoError(t, err, "%s", out)
		require.Empty(t, strings.TrimSpace(string(out)), "unknown keys and bad values are only warnings, but warnings here are mistakes")
	})
	t.Run("security rates its exposure low", func(t *testing.T) {
		out, err := exec.Command("systemd-analyze", "security", "--offline=yes", "--no-pager", path).CombinedOutput()
		if err != nil && strings.Contains(string(out), "offline") {
			t.Skip("this systemd-analyze cannot rate a unit offline")
		}
		require.NoError(t, err, "%s", out)
		m := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`).FindSubmatch(out)
		require.NotNil(t, m, "%s", out)
		score, err := strconv.ParseFloat(string(m[1]), 64)
		require.NoError(t, err)
		require.LessOrEqual(t, score, 2.0, "exposure (0 best, 10 worst); 2.0 is well inside systemd's OK band:\n%s", out)
	})
}
