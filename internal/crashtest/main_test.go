package crashtest

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"go.uber.org/goleak"
)

// reaperBin is the cmd/reaper binary TestMain builds for the trials.
var reaperBin string

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "crashtest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "crashtest:", err)
		os.Exit(1)
	}
	reaperBin = filepath.Join(dir, "reaper")
	if err := buildReaper(reaperBin); err != nil {
		fmt.Fprintln(os.Stderr, "crashtest:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	// A trial spends most of its time waiting for a child process or a
	// sleep, not on a CPU, so more trials than cores fit at once; an explicit
	// -parallel still wins.
	parallelSet := false
	flag.Visit(func(f *flag.Flag) { parallelSet = parallelSet || f.Name == "test.parallel" })
	if !parallelSet {
		_ = flag.Set("test.parallel", fmt.Sprint(max(4, 2*runtime.GOMAXPROCS(0))))
	}
	goleak.VerifyTestMain(m, goleak.Cleanup(func(int) { os.RemoveAll(dir) }))
}

// buildReaper builds cmd/reaper without -race: the trials start it hundreds
// of times, and what is under test is its behaviour when killed, not data races.
func buildReaper(out string) error {
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	cmd := exec.Command(goTool, "build", "-o", out, "github.com/tipreaper/tipreaper/cmd/reaper")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build cmd/reaper: %v\n%s", err, b)
	}
	return nil
}
