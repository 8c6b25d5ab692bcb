package cli

import (
	"context"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/creack/pty"
	"github.com/stretchr/testify/require"
)

// onTerminal runs reaper with a pseudo-terminal of cols columns as stdin and
// stdout. answer (if not empty) is typed once the question shows.
type ttyRun struct {
	out  *syncBuffer
	code int
}

func onTerminal(t *testing.T, cols uint16, answer string, args ...string) ttyRun {
	t.Helper()
	ptmx, tty, err := pty.Open()
	require.NoError(t, err)
	require.NoError(t, pty.Setsize(ptmx, &pty.Winsize{Cols: cols, Rows: 50}))
	out := &syncBuffer{}
	read := make(chan struct{})
	go func() {
		defer close(read)
		_, _ = io.Copy(out, ptmx) // ends with EIO once the terminal side is closed
	}()
	done := make(chan int, 1)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	go func() { done <- Run(ctx, args, tty, tty, &syncBuffer{}) }()
	if answer != "" {
		require.Eventually(t, func() bool { return strings.Contains(out.String(), "type the account name to go on: ") },
			time.Minute, 10*time.Millisecond, "the question: %q", out)
		_, err := ptmx.Write([]byte(answer + "\n"))
		require.NoError(t, err)
	}
	code := <-done
	// Let the reader drain what was written, then close both sides.
	require.Eventually(t, func() bool { n := len(out.String()); time.Sleep(50 * time.Millisecond); return len(out.String()) == n },
		10*time.Second, 10*time.Millisecond)
	require.NoError(t, tty.Close())
	<-read
	require.NoError(t, ptmx.Close())
	return ttyRun{out: out, code: code}
}

var csi = regexp.MustCompile(`\x1b\[[0-9;]*[A-Za-z]`)

// screenLines is what a person sees line by line: escape sequences and carriage
// returns resolved to the last text drawn on each line.
func screenLines(s string) []string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSuffix(l, "\r")
		if i := strings.LastIndex(l, "\r"); i >= 0 {
			l = l[i+1:]
		}
		lines = append(lines, csi.ReplaceAllString(l, ""))
	}
	return lines
}

func TestALiveOnceOnATerminalShowsThePlanAsksForTheAccountAndShowsOneLiveLine(t *testing.T) {
	sb := newSandbox(t, testSeed(time.Now(), false))
	path := writeConfig(t, sb, "")

	r := onTerminal(t, 70, "tip", "once", "--config", path)

	require.Equal(t, 0, r.code, r.out)
	out := r.out.String()
	lines := screenLines(out)
	for _, l := range lines {
		require.LessOrEqual(t, utf8.RuneCountInString(l), 70, "every line fits the terminal: %q", l)
	}
	require.Contains(t, out, "plan of account tip:")
	require.Contains(t, out, "…", "the wide plan table was cut to the width")
	require.Contains(t, out, "\r\x1b[K", "one live line, redrawn in place")
	require.Regexp(t, `2/2 done .* 2 deleted`, out)
	require.NotContains(t, out, "cancel_order", "no line per audit row without -v")
	require.Contains(t, out, "status succeeded")
	require.Less(t, strings.Index(out, "plan of account tip:"), strings.Index(out, "type the account name"), "the plan comes before the question")
	require.False(t, present(sb.sim)[idOld1])
	require.True(t, present(sb.sim)[idGolden])
}

func TestALiveOnceOnATerminalChangesNothingWithoutTheAccountName(t *testing.T) {
	sb := newSandbox(t, testSeed(time.Now(), false))
	path := writeConfig(t, sb, "")

	r := onTerminal(t, 120, "yes", "once", "--config", path)

	require.Equal(t, 1, r.code, r.out)
	require.Contains(t, r.out.String(), "not confirmed: no change made")
	require.Zero(t, sb.sim.Stats().MutatingCalls, "a PATCH or DELETE without confirmation")
	require.True(t, present(sb.sim)[idOld1])
}

func TestYesSkipsTheQuestionAndVerbosePrintsEveryAuditRow(t *testing.T) {
	sb := newSandbox(t, testSeed(time.Now(), false))
	path := writeConfig(t, sb, "")

	r := onTerminal(t, 200, "", "once", "--yes", "-v", "--config", path)

	require.Equal(t, 0, r.code, r.out)
	out := r.out.String()
	require.NotContains(t, out, "type the account name")
	require.Contains(t, out, "cancel_order")
	require.NotContains(t, out, "\x1b[K", "-v prints rows, not a live line")
	require.False(t, present(sb.sim)[idOld1])
}

func TestWithoutATerminalOnceProceedsInPlainLines(t *testing.T) {
	sb := newSandbox(t, testSeed(time.Now(), false))
	path := writeConfig(t, sb, "")

	r := reaper(t, "once", "--config", path)

	require.Equal(t, 0, r.code, r)
	require.NotContains(t, r.stdout, "type the account name")
	require.False(t, strings.ContainsAny(r.stdout, "\r\x1b"), "no control characters when stdout is not a terminal")
	require.Contains(t, r.stdout, "cancel_order", "a line per audit row")
	require.False(t, present(sb.sim)[idOld1])
}
