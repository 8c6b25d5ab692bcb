package cli

import (
	"context"
	"fmt"
	"io"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// version is the release this binary is, stamped at build time:
//
//	go build -ldflags "-X github.com/tipreaper/tipreaper/internal/cli.version=1.2.3" ./cmd/reaper
//
// Empty: the module version from the build info ("(devel)" in a checkout).
var version string

// built is when the binary was built, stamped like version (RFC 3339 by
// convention). Go records no build time itself; empty: not printed.
var built string

func init() { register(newVersionCmd) }

// buildInfo is what `reaper version` prints, in its --json shape.
type buildInfo struct {
	Version    string `json:"version"`
	Revision   string `json:"revision,omitempty"`
	Modified   bool   `json:"modified,omitempty"`
	CommitTime string `json:"commit_time,omitempty"`
	BuildTime  string `json:"build_time,omitempty"`
	GoVersion  string `json:"go_version"`
}

// readBuildInfo combines the stamped variables with runtime/debug's build
// info: the VCS revision and commit time that `go build` records in a
// checkout (unless -buildvcs=false), and the Go version.
func readBuildInfo() buildInfo {
	b := buildInfo{Version: version, BuildTime: built}
	info, ok := debug.ReadBuildInfo()
	if ok {
		b.GoVersion = info.GoVersion
		if b.Version == "" {
			b.Version = info.Main.Version
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Revision = s.Value
			case "vcs.time":
				b.CommitTime = s.Value
			case "vcs.modified":
				b.Modified = s.Value == "true"
			}
		}
	}
	if b.Version == "" {
		b.Version = "(devel)"
	}
	return b
}

// String is the text form: one line, then one line per known detail.
func (b buildInfo) String() string {
	var s strings.Builder
	fmt.Fprintf(&s, "reaper %s\n", b.Version)
	if b.Revision != "" {
		fmt.Fprintf(&s, "revision   %s", b.Revision)
		if b.Modified {
			s.WriteString(" (modified)")
		}
		s.WriteString("\n")
	}
	if b.CommitTime != "" {
		fmt.Fprintf(&s, "committed  %s\n", b.CommitTime)
	}
	if b.BuildTime != "" {
		fmt.Fprintf(&s, "built      %s\n", b.BuildTime)
	}
	if b.GoVersion != "" {
		fmt.Fprintf(&s, "go         %s\n", b.GoVersion)
	}
	return s.String()
}

func newVersionCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "version [flags]",
		Short: "print the version, VCS revision and build time",
		Args:  noArgs,
	}
	jsonOut := cmd.Flags().Bool("json", false, "print it as JSON")
	cmd.RunE = e.run(func(_ context.Context, _ []string) int {
		return printVersion(e.stdout, e.stderr, *jsonOut)
	})
	return cmd
}

func printVersion(stdout, stderr io.Writer, jsonOut bool) int {
	b := readBuildInfo()
	if jsonOut {
		if err := writeJSON(stdout, b); err != nil {
			fmt.Fprintf(stderr, "reaper version: %v\n", err)
			return exitPartial
		}
		return exitOK
	}
	fmt.Fprint(stdout, b)
	return exitOK
}
