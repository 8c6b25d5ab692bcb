package deploy

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// instruction is one Dockerfile instruction with its continuation lines joined.
type instruction struct {
	line int    // 1-based line of its first line
	cmd  string // upper case: FROM, RUN, ARG …
	args string
}

// stage is one FROM … and the instructions up to the next FROM.
type stage struct {
	from, name string
	ins        []instruction
}

func readDockerfile(t *testing.T) []stage {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "Dockerfile"))
	require.NoError(t, err)
	var (
		stages []stage
		cur    strings.Builder
		start  int
	)
	lines := strings.Split(string(data), "\n")
	for i, l := range lines {
		trimmed := strings.TrimSpace(l)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if strings.HasSuffix(trimmed, `\`) {
			cur.WriteString(strings.TrimSuffix(trimmed, `\`) + " ")
			continue
		}
		cur.WriteString(trimmed)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		cur.Reset()
		in := instruction{line: start, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			f := strings.Fields(in.args)
			s := stage{from: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				s.name = f[2]
			}
			stages = append(stages, s)
			continue
		}
		if len(stages) == 0 {
			continue // ARG before the first FROM
		}
		stages[len(stages)-1].ins = append(stages[len(stages)-1].ins, in)
	}
	require.GreaterOrEqual(t, len(stages), 2, "Dockerfile: a build stage and a runtime stage")
	return stages
}

func (s stage) all(cmd string) []instruction {
	var out []instruction
	for _, in := range s.ins {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// goBuild is the build stage's `go build` as the Dockerfile runs it.
type goBuild struct {
	env  []string // ENV of the stage before the RUN
	args []string // after "go": build -trimpath …
	out  string   // -o value
}

// dockerBuild returns the `go build` instruction of the build stage, with ${ARG}s replaced by vals (or
// their Dockerfile defaults).
func dockerBuild(t *testing.T, stages []stage, vals map[string]string) goBuild {
	t.Helper()
	for _, s := range stages {
		defaults := map[string]string{}
		var gb goBuild
		for _, in := range s.ins {
			switch in.cmd {
			case "ARG":
				k, v, _ := strings.Cut(in.args, "=")
				defaults[k] = v
			case "ENV":
				for _, kv := range shellWords(t, in.args) {
					gb.env = append(gb.env, kv)
				}
			case "RUN":
				_, after, ok := strings.Cut(in.args, "go build ")
				if !ok {
					continue
				}
				expanded := os.Expand(after, func(k string) string {
					if v, ok := vals[k]; ok {
						return v
					}
					return defaults[k]
				})
				words := shellWords(t, expanded)
				gb.args = append([]string{"build"}, words...)
				if i := slices.Index(words, "-o"); i >= 0 && i+1 < len(words) {
					gb.out = words[i+1]
				}
				return gb
			}
		}
	}
	t.Fatal("Dockerfile: no RUN … go build …")
	return goBuild{}
}

// shellWords splits s as a POSIX shell would for the plain words, "double" and 'single' quotes a
// Dockerfile RUN line uses here (no expansion, no escapes beyond \" in double quotes).
func shellWords(t *testing.T, s string) []string {
	t.Helper()
	var (
		words []string
		cur   strings.Builder
		in    bool // inside a word
		quote rune
	)
	for i := 0; i < len(s); i++ {
		c := rune(s[i])
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote == '"' && c == '\\' && i+1 < len(s) && s[i+1] == '"':
			cur.WriteByte('"')
			i++
		case quote != 0:
			cur.WriteRune(c)
		case c == '"' || c == '\'':
			quote, in = c, true
		case c == ' ' || c == '\t':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(c)
			in = true
		}
	}
	require.Zero(t, quote, "unterminated quote in %q", s)
	if in {
		words = append(words, cur.String())
	}
	return words
}

func TestDockerfileRuntimeStage(t *testing.T) {
	stages := readDockerfile(t)
	final := stages[len(stages)-1]

	t.Run("the base is distroless static or scratch", func(t *testing.T) {
		require.Regexp(t, `^(gcr\.io/distroless/static(-debian\d+)?:nonroot|scratch)$`, final.from)
	})
	t.Run("the build runs in its own stage and only the binary is copied over", func(t *testing.T) {
		require.NotEmpty(t, stages[0].name)
		var fromBuild []string
		for _, in := range final.all("COPY") {
			require.Contains(t, in.args, "--from="+stages[0].name, "line %d: the runtime stage copies only from the build stage", in.line)
			fromBuild = append(fromBuild, in.args)
		}
		require.True(t, slices.ContainsFunc(fromBuild, func(a string) bool { return strings.HasSuffix(a, " /usr/local/bin/reaper") }),
			"the binary goes to /usr/local/bin/reaper, on the distroless PATH")
	})
	t.Run("it runs as a numeric non-root user", func(t *testing.T) {
		users := final.all("USER")
		require.Len(t, users, 1)
		uid, _, _ := strings.Cut(users[0].args, ":")
		require.Regexp(t, `^[1-9][0-9]*$`, uid, "a numeric uid other than 0, so Kubernetes' runAsNonRoot can check it")
	})
	t.Run("the working directory, where state_dir's default lives, is a volume owned by that user", func(t *testing.T) {
		workdirs := final.all("WORKDIR")
		require.Len(t, workdirs, 1)
		volumes := final.all("VOLUME")
		require.Len(t, volumes, 1)
		require.Contains(t, volumes[0].args, `"`+workdirs[0].args+`"`)
		user := final.all("USER")[0].args
		require.True(t, slices.ContainsFunc(final.all("COPY"), func(in instruction) bool {
			return strings.Contains(in.args, "--chown="+user) && strings.HasSuffix(in.args, " "+workdirs[0].args)
		}), "the state directory is created owned by %s", user)
	})
	t.Run("the entrypoint is the reaper binary and the default command is the daemon", func(t *testing.T) {
		ep := final.all("ENTRYPOINT")
		require.Len(t, ep, 1)
		require.Equal(t, `["reaper"]`, ep[0].args)
		cmd := final.all("CMD")
		require.Len(t, cmd, 1)
		require.Equal(t, `["run"]`, cmd[0].args)
	})
	t.Run("the OCI labels name the source and the version build arg", func(t *testing.T) {
		labels := ""
		for _, in := range final.all("LABEL") {
			labels += " " + in.args
		}
		require.Contains(t, labels, `org.opencontainers.image.source="https://`)
		require.Contains(t, labels, `org.opencontainers.image.version="${VERSION}"`)
		require.Contains(t, labels, `org.opencontainers.image.revision="${REVISION}"`)
		require.True(t, slices.ContainsFunc(final.all("ARG"), func(in instruction) bool { return strings.HasPrefix(in.args, "VERSION") }),
			"ARG VERSION is declared again in the runtime stage, or the label is empty")
	})
	t.Run("the config path is the one the Kubernetes manifests mount", func(t *testing.T) {
		require.True(t, slices.ContainsFunc(final.all("ENV"), func(in instruction) bool {
			return in.args == "REAPER_CONFIG="+containerConfigPath
		}))
	})
}

// containerConfigPath is where the image expects the config and the manifests mount it.
const containerConfigPath = "/etc/tipreaper/reaper.yaml"

func TestDockerfileBuildFlags(t *testing.T) {
	gb := dockerBuild(t, readDockerfile(t), map[string]string{"VERSION": "9.8.7-test"})
	require.Contains(t, gb.env, "CGO_ENABLED=0", "a static binary")
	require.Contains(t, gb.args, "-trimpath")
	require.Equal(t, "./cmd/reaper", gb.args[len(gb.args)-1])
	ldflags := ""
	for _, a := range gb.args {
		if v, ok := strings.CutPrefix(a, "-ldflags="); ok {
			ldflags = v
		}
	}
	require.Regexp(t, regexp.MustCompile(`-X \S+\.version=9\.8\.7-test`), ldflags, "the VERSION build arg is stamped into the binary")
}

// The stamp lands in the variables `reaper version` prints: -X of a variable that does not exist is
// silently ignored by the linker, so only running the binary shows it.
func TestDockerBinaryPrintsTheBuildArgs(t *testing.T) {
	out, err := exec.CommandContext(t.Context(), dockerBinary(t), "version", "--json").Output()
	require.NoError(t, err)
	var v struct {
		Version   string `json:"version"`
		BuildTime string `json:"build_time"`
	}
	require.NoError(t, json.Unmarshal(out, &v), "%s", out)
	require.Equal(t, testVersion, v.Version)
	require.Equal(t, testCreated, v.BuildTime)
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
	binOut  []byte
)

// dockerBinary builds reaper the way the Dockerfile does (its flags and environment, VERSION set to
// testVersion) once per test process.
func dockerBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary; not in -short")
	}
	binOnce.Do(func() {
		gb := dockerBuild(t, readDockerfile(t), map[string]string{"VERSION": testVersion, "CREATED": testCreated})
		dir, err := os.MkdirTemp("", "reaper-docker-build-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "reaper")
		// The build sees what `docker build` would send: the repository less .dockerignore's patterns.
		buildCtx := filepath.Join(dir, "context")
		if binErr = copyContext("..", buildCtx); binErr != nil {
			return
		}
		args := slices.Clone(gb.args)
		args[slices.Index(args, "-o")+1] = binPath
		cmd := exec.Command("go", args...)
		cmd.Dir = buildCtx
		cmd.Env = append(os.Environ(), gb.env...)
		binOut, binErr = cmd.CombinedOutput()
	})
	require.NoError(t, binErr, "go build as the Dockerfile does:\n%s", binOut)
	return binPath
}

// The build args the test builds with.
const (
	testVersion = "9.8.7-test"
	testCreated = "2026-12-03T20:00:00Z"
)

// TestMain removes the binary dockerBinary built, and fails the run if a test leaked a goroutine (the
// daemon, simulators and database pools are started here through the cli).
func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		_ = os.RemoveAll(filepath.Dir(binPath)) // a temp dir of ours; nothing to do if it fails
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

func TestDockerBinaryIsStatic(t *testing.T) {
	f, err := elf.Open(dockerBinary(t))
	require.NoError(t, err)
	defer f.Close()
	for _, p := range f.Progs {
		require.NotEqual(t, elf.PT_INTERP, p.Type, "a dynamically linked binary needs an interpreter the distroless static image lacks")
	}
	libs, err := f.ImportedLibraries()
	require.NoError(t, err)
	require.Empty(t, libs)
}

func TestDockerBinaryRunsTheDemo(t *testing.T) {
	bin := dockerBinary(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "demo", "--keep-state=false")
	cmd.Dir = t.TempDir()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "reaper demo:\nstdout:\n%s\nstderr:\n%s", &stdout, &stderr)
	require.Regexp(t, `✓ \d+ deleted customers are gone from Partner Center`, stdout.String(), "the demo's own self-check")
}

// copyContext copies the repository at root to dst without what .dockerignore excludes. Patterns are
// matched as Docker does for the simple forms this repository uses: relative to the root (a leading or
// trailing "/" ignored), with filepath.Match, a directory taking its contents with it.
func copyContext(root, dst string) error {
	data, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil {
		return err
	}
	var patterns []string
	for _, l := range strings.Split(string(data), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if strings.HasPrefix(l, "!") {
			return fmt.Errorf(".dockerignore: exceptions (%s) are not understood by this test", l)
		}
		patterns = append(patterns, strings.Trim(l, "/"))
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	return filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil || rel == "." {
			return err
		}
		for _, p := range patterns {
			if ok, _ := filepath.Match(p, filepath.ToSlash(rel)); ok {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
}
