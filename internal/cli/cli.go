package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
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
		term:      detectTerminal(stdin, stdout),
	}
	root := e.newRoot()
	root.SetArgs(args)
	root.SetIn(e.stdin)
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	cmd, err := root.ExecuteContextC(ctx)
	var code exitCode
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &code):
		return int(code)
	default:
		// Every error a command's own code returns is an exitCode (it has
		// printed its message); anything else is cobra's or pflag's verdict on
		// the arguments: a usage error.
		fmt.Fprintf(e.stderr, "%s: %s\n", cmd.CommandPath(), strings.TrimRight(err.Error(), "\n"))
		fmt.Fprintf(e.stderr, "usage: %s\nrun `%s -h` for help\n", cmd.UseLine(), cmd.CommandPath())
		return exitUsage
	}
}

// exitCode is what a command returns to Run when it ends with a non-zero
// exit: it has already said why on stderr.
type exitCode int

func (c exitCode) Error() string { return fmt.Sprintf("exit status %d", int(c)) }

// env is what a command gets from its caller: the streams, the process's
// surroundings, and the global flags.
type env struct {
	stdin     io.Reader
	stdout    io.Writer
	stderr    io.Writer
	lookupEnv func(string) (string, bool)
	now       func() time.Time
	term      terminal // what stdin and stdout are (tty.go)

	config    string      // --config
	logFormat string      // --log-format
	logLevel  optionLevel // --log-level; each command has its own default
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

// commands builds every top-level command. Each command lives in its own
// file, which adds its constructor here in an init function:
//
//	func init() { register(newFrobCmd) }
//
//	func newFrobCmd(e *env) *cobra.Command {
//		cmd := &cobra.Command{Use: "frob <customer-id>", Short: "…", Args: exactArgs(1)}
//		dry := cmd.Flags().Bool("dry-run", false, "…")
//		cmd.RunE = e.run(func(ctx context.Context, args []string) int { … return exitOK })
//		return cmd
//	}
var commands []func(*env) *cobra.Command

// register adds a top-level command; call it from an init function.
func register(build func(*env) *cobra.Command) { commands = append(commands, build) }

// run adapts a command body that returns an exit code to cobra's RunE.
func (e *env) run(body func(ctx context.Context, args []string) int) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if code := body(cmd.Context(), args); code != exitOK {
			return exitCode(code)
		}
		return nil
	}
}

const rootLong = `Deletes expired customers of a Partner Center Testing in Production sandbox.

--config defaults to $REAPER_CONFIG, else ./reaper.yaml; $REAPER_LOG_FORMAT and $REAPER_LOG_LEVEL
set --log-format and --log-level. ` + "`reaper help <command>`" + ` shows a command's flags.
exit codes: 0 all handled, 1 a customer failed or is blocked or the pass stopped, 2 bad config or usage`

// usageTemplate is cobra's, in the lower-case style of the rest of the output.
const usageTemplate = `usage: {{.UseLine}}{{if .HasAvailableSubCommands}}

commands:{{range .Commands}}{{if (or .IsAvailableCommand (eq .Name "help"))}}
  {{rpad .Name .NamePadding }} {{.Short}}{{end}}{{end}}{{end}}{{if gt (len .Aliases) 0}}

aliases: {{.NameAndAliases}}{{end}}{{if .HasExample}}

examples:
{{.Example}}{{end}}{{if .HasAvailableLocalFlags}}

flags:
{{.LocalFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}{{if .HasAvailableInheritedFlags}}

global flags:
{{.InheritedFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}
`

// newRoot builds the reaper command with every registered command under it.
func (e *env) newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "reaper <command> [flags] [args]",
		Short:         "Delete expired customers of a Partner Center Tip sandbox",
		Long:          rootLong,
		SilenceErrors: true,
		SilenceUsage:  true,
		// An unknown command is a usage error with a did-you-mean.
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return nil
			}
			msg := fmt.Sprintf("unknown command %q", args[0])
			if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
				msg += "; did you mean " + strings.Join(s, " or ") + "?"
			}
			return errors.New(msg)
		},
		// With no command: the usage on stderr, exit 2.
		RunE: func(cmd *cobra.Command, args []string) error {
			fmt.Fprint(e.stderr, cmd.UsageString())
			return exitCode(exitUsage)
		},
	}
	root.SuggestionsMinimumDistance = 2
	root.SetUsageTemplate(usageTemplate)
	root.SetFlagErrorFunc(flagError)

	e.config = "reaper.yaml"
	e.logFormat = "text"
	pf := root.PersistentFlags()
	pf.StringVar(&e.config, "config", e.config, "config `FILE` ($REAPER_CONFIG)")
	pf.Var(&logFormatValue{&e.logFormat}, "log-format", "log `format` on stderr: text or json ($REAPER_LOG_FORMAT)")
	pf.Var(&e.logLevel, "log-level", "log `level` on stderr: debug, info, warn, error; default warn, info for run ($REAPER_LOG_LEVEL)")
	// A flag given on the command line wins over its variable; a bad value in
	// a variable is a usage error naming the variable.
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		return e.flagsFromEnv(cmd)
	}

	// --version prints what `reaper version` does. Declared here, not by
	// cobra, to leave -v free.
	root.Version = readBuildInfo().String()
	root.SetVersionTemplate("{{.Version}}")
	root.Flags().Bool("version", false, "print the version and exit")
	root.CompletionOptions.DisableDefaultCmd = true

	for _, build := range commands {
		root.AddCommand(build(e))
	}
	root.InitDefaultHelpCmd()
	for _, c := range root.Commands() {
		if c.Name() == "help" {
			c.Short = "help about any command: reaper help <command>"
		}
	}
	return root
}

// envFlags are the flags that an environment variable sets when the command
// line does not.
var envFlags = []struct{ flag, env string }{
	{"config", "REAPER_CONFIG"},
	{"log-format", "REAPER_LOG_FORMAT"},
	{"log-level", "REAPER_LOG_LEVEL"},
}

// flagsFromEnv sets each flag of envFlags that cmd has and the command line
// left unset from its environment variable, when that is set and not empty.
func (e *env) flagsFromEnv(cmd *cobra.Command) error {
	for _, ef := range envFlags {
		f := cmd.Flags().Lookup(ef.flag)
		if f == nil || f.Changed {
			continue
		}
		v, ok := e.lookupEnv(ef.env)
		if !ok || v == "" {
			continue
		}
		if err := f.Value.Set(v); err != nil {
			return fmt.Errorf("$%s: %w", ef.env, err)
		}
	}
	return nil
}

// flagError adds a did-you-mean to pflag's "unknown flag: --x" when a flag
// of the command is spelled close to it.
func flagError(cmd *cobra.Command, err error) error {
	name, ok := strings.CutPrefix(err.Error(), "unknown flag: --")
	if !ok {
		return err
	}
	best, bestDist := "", 3 // suggest only within two edits
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		d := levenshtein(name, f.Name)
		if strings.HasPrefix(f.Name, name) && len(name) >= 3 {
			d = min(d, 1)
		}
		if d < bestDist {
			best, bestDist = f.Name, d
		}
	})
	if best == "" {
		return err
	}
	return fmt.Errorf("%w; did you mean --%s?", err, best)
}

// levenshtein is the edit distance between a and b.
func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// exactArgs accepts exactly n positional arguments, in the words of the rest
// of the CLI.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) > n:
			return fmt.Errorf("unexpected argument %q", args[n])
		case len(args) < n:
			return errors.New("missing argument")
		}
		return nil
	}
}

// noArgs accepts no positional argument.
var noArgs = exactArgs(0)

// optionLevel is the --log-level flag: a slog level, or unset so that each
// command picks its own default.
type optionLevel struct {
	l   slog.Level
	set bool
}

func (f *optionLevel) String() string {
	if !f.set {
		return ""
	}
	return strings.ToLower(f.l.String())
}

func (f *optionLevel) Set(s string) error {
	if err := f.l.UnmarshalText([]byte(s)); err != nil {
		return fmt.Errorf("unknown log level %q (debug, info, warn or error)", s)
	}
	f.set = true
	return nil
}

func (f *optionLevel) Type() string { return "level" }

// level is --log-level, or def when it was not given.
func (f *optionLevel) level(def slog.Level) slog.Level {
	if !f.set {
		return def
	}
	return f.l
}

// logFormatValue is the --log-format flag: text or json, checked when parsed.
type logFormatValue struct{ p *string }

func (v *logFormatValue) String() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}

func (v *logFormatValue) Set(s string) error {
	switch s {
	case "text", "json":
		*v.p = s
		return nil
	}
	return fmt.Errorf("unknown log format %q (text or json)", s)
}

func (v *logFormatValue) Type() string { return "format" }

// currentUser names the person at the keyboard for keep rows and unblock events.
func (e *env) currentUser() string {
	for _, k := range []string{"USER", "LOGNAME", "USERNAME"} {
		if v, ok := e.lookupEnv(k); ok && v != "" {
			return v
		}
	}
	return "unknown"
}
