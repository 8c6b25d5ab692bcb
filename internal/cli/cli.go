package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Exit codes of every command.
const (
	exitOK      = 0 // every selected customer handled
	exitPartial = 1 // a customer failed or is blocked, a guard stopped the pass, or it was interrupted
	exitUsage   = 2 // bad config or usage
)

// Main is the reaper command as cmd/reaper runs it: Run, plus signal handling.
// The first SIGINT or SIGTERM cancels the context the command runs with (a pass
// stops gracefully, the daemon exits 0 after the drain); a second one exits 1 at
// once, for an operator who does not want to wait for the drain.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)

	done := make(chan struct{})
	defer close(done)
	go handleSignals(sigs, done, cancel, stderr, os.Exit)
	return Run(ctx, args, stdin, stdout, stderr)
}

// handleSignals turns the first signal into cancel (the graceful stop) and the
// second into exit(1), until done is closed.
func handleSignals(sigs <-chan os.Signal, done <-chan struct{}, cancel func(), stderr io.Writer, exit func(int)) {
	select {
	case <-done:
		return
	case s := <-sigs:
		fmt.Fprintf(stderr, "reaper: %s: stopping after in-flight steps; send it again to exit now\n", s)
		cancel()
	}
	select {
	case <-done:
	case s := <-sigs:
		fmt.Fprintf(stderr, "reaper: %s again: exiting now\n", s)
		exit(exitPartial)
	}
}

// Run is Main without signal handling: cancelling ctx is the graceful stop.
// Tests call it directly.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{
		stdin:     stdin,
		stdout:    &lockedWriter{w: stdout},
		stderr:    &lockedWriter{w: stderr},
		lookupEnv: os.LookupEnv,
		now:       time.Now,
	}
	if len(args) == 0 {
		e.usage(e.stderr)
		return exitUsage
	}
	name, rest := args[0], args[1:]
	switch name {
	case "-h", "-help", "--help", "help":
		e.usage(e.stdout)
		return exitOK
	}
	cmd, ok := commandByName(name)
	if !ok {
		fmt.Fprintf(e.stderr, "reaper: unknown command %q\n\n", name)
		e.usage(e.stderr)
		return exitUsage
	}
	return cmd.run(ctx, e, rest)
}

// env is what a command gets from its caller: the streams and the process's surroundings.
type env struct {
	stdin     io.Reader
	stdout    io.Writer
	stderr    io.Writer
	lookupEnv func(string) (string, bool)
	now       func() time.Time
}

// lockedWriter serialises writes: engine events arrive from several goroutines
// and one progress line must never interleave with another.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

type command struct {
	name    string
	args    string // synopsis after the name
	summary string
	run     func(ctx context.Context, e *env, args []string) int
}

// commands is filled in init to break the cycle commandByName → cmd.run → usage → commands.
var commands []command

func init() {
	commands = []command{
		{"demo", "[--keep-state]", "a live pass against the built-in simulator with an embedded store", runDemo},
		{"validate", "[--config FILE]", "check a config file; every problem as FILE:LINE: message", runValidate},
		{"migrate", "[--config FILE]", "create or upgrade the audit tables", runMigrate},
		{"once", "[--config FILE] [--dry-run] [--policy NAME] [--json]", "one pass now (a dry run stores a plan)", runOnce},
		{"apply", "<plan-id> [--config FILE] [--json]", "carry out a stored dry-run plan", runApply},
		{"run", "[--config FILE] [--now] [--log-format text|json]", "the daemon: a pass on the config's schedule", runDaemon},
		{"keep", "add <customer-id> --reason TEXT [--until DATE] [--by NAME] | list | rm <customer-id>", "protect customers from deletion", runKeep},
		{"why", "<customer-id> [--config FILE]", "explain what reaper knows and would do about a customer", runWhy},
		{"unblock", "<customer-id> [--config FILE]", "a person resolved a blocked customer: let passes retry it", runUnblock},
		{"sim", "[--listen ADDR] [--seed FILE] [--latency MIN-MAX] …", "serve the Partner Center simulator", runSim},
		{"bench", "[--scenario full|small|throttled|throttled-below-cap|fleet|all] [--quick]", "measure a pass against the simulator (see BENCHMARKS.md)", runBench},
	}
}

func commandByName(name string) (command, bool) {
	for _, c := range commands {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

func (e *env) usage(w io.Writer) {
	fmt.Fprintln(w, "usage: reaper <command> [flags] [args]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Deletes expired customers of a Partner Center Testing in Production sandbox.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "commands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "--config defaults to $REAPER_CONFIG, else ./reaper.yaml. `reaper <command> -h` shows its flags.")
	fmt.Fprintln(w, "exit codes: 0 all handled, 1 a customer failed or is blocked or the pass stopped, 2 bad config or usage")
}

// newFlagSet returns a FlagSet that reports errors on stderr but leaves the
// usage text to parse, which decides between stdout (-h) and stderr (mistakes).
func (e *env) newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("reaper "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {}
	return fs
}

// configFlag registers --config with its documented default.
func (e *env) configFlag(fs *flag.FlagSet) *string {
	def := "reaper.yaml"
	if v, ok := e.lookupEnv("REAPER_CONFIG"); ok && v != "" {
		def = v
	}
	return fs.String("config", def, "config `FILE`; $REAPER_CONFIG when set")
}

// parse parses args with fs after moving flags in front of positionals, so
// `keep add ID --reason x` reads like `keep add --reason x ID`. It returns the
// positionals, or ok=false with the exit code when the command must stop here
// (-h: usage on stdout, 0; a bad flag or wrong number of positionals: usage on
// stderr, 2). nargs < 0 means any number of positionals.
func (e *env) parse(fs *flag.FlagSet, args []string, synopsis string, nargs int) (pos []string, code int, ok bool) {
	err := fs.Parse(reorder(fs, args))
	if errors.Is(err, flag.ErrHelp) {
		printFlagUsage(e.stdout, fs, synopsis)
		return nil, exitOK, false
	}
	if err != nil {
		printFlagUsage(e.stderr, fs, synopsis)
		return nil, exitUsage, false
	}
	pos = fs.Args()
	if nargs >= 0 && len(pos) != nargs {
		switch {
		case len(pos) > nargs:
			fmt.Fprintf(e.stderr, "%s: unexpected argument %q\n", fs.Name(), pos[nargs])
		default:
			fmt.Fprintf(e.stderr, "%s: missing argument\n", fs.Name())
		}
		printFlagUsage(e.stderr, fs, synopsis)
		return nil, exitUsage, false
	}
	return pos, exitOK, true
}

func printFlagUsage(w io.Writer, fs *flag.FlagSet, synopsis string) {
	fmt.Fprintf(w, "usage: %s %s\n", fs.Name(), synopsis)
	has := false
	fs.VisitAll(func(*flag.Flag) { has = true })
	if has {
		fmt.Fprintln(w, "flags:")
		prev := fs.Output()
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(prev)
	}
}

// reorder moves every flag (and the value of a non-boolean flag given as a
// separate argument) before the positionals, ending the flags with "--" so a
// positional that starts with "-" is not taken for a flag. An unknown flag is
// kept as a flag for Parse to reject.
func reorder(fs *flag.FlagSet, args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		f := fs.Lookup(name)
		if f == nil {
			continue
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			continue
		}
		if i+1 < len(args) {
			flags = append(flags, args[i+1])
			i++
		}
	}
	return append(append(flags, "--"), pos...)
}

// currentUser names the person at the keyboard for keep rows and unblock events.
func (e *env) currentUser() string {
	for _, k := range []string{"USER", "LOGNAME", "USERNAME"} {
		if v, ok := e.lookupEnv(k); ok && v != "" {
			return v
		}
	}
	return "unknown"
}
