package cli

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/robfig/cron/v3"
	"github.com/spf13/cobra"

	"github.com/tipreaper/tipreaper/internal/engine"
)

func init() { register(newRunCmd) }

// daemonFlags are the flags of `reaper run`.
type daemonFlags struct {
	now bool
}

func newRunCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "run [flags]",
		Short: "the daemon: a pass on the config's schedule",
		Args:  noArgs,
	}
	var f daemonFlags
	cmd.Flags().BoolVar(&f.now, "now", false, "also run one pass immediately at start")
	cmd.RunE = e.run(func(ctx context.Context, _ []string) int { return runDaemon(ctx, e, f) })
	return cmd
}

// runDaemon is `reaper run`: passes on the config's cron schedule until the
// context is cancelled. A pass still running when a tick comes is not joined
// by a second one (SkipIfStillRunning); between passes the process only waits
// on cron's timer.
func runDaemon(ctx context.Context, e *env, f daemonFlags) int {
	cfgPath := &e.config
	logger := e.logger(slog.LevelInfo)
	cfg, ok := e.loadConfig(*cfgPath)
	if !ok {
		return exitUsage
	}
	if err := cfg.ValidateSchedule(); err != nil {
		e.printConfigError(*cfgPath, err)
		return exitUsage
	}
	st, ok := e.openMigrated(ctx, cfg)
	if !ok {
		return exitPartial
	}
	defer st.Close()

	eng := engine.New(engine.Options{Config: cfg, Store: st, Connect: connect(cfg, logger), Logger: logger, Now: e.now})

	pass := func() {
		if ctx.Err() != nil {
			return
		}
		rep, err := eng.Pass(ctx)
		if err != nil && rep == nil {
			logger.Error("pass failed", "error", err)
			return
		}
		c := rep.Counts
		attrs := []any{"run_id", rep.RunID.String(), "status", rep.Status, "listed", c.Listed, "selected", c.Selected,
			"deleted", c.Deleted, "already_gone", c.AlreadyGone, "marked", c.Marked, "skipped", c.Skipped,
			"failed", c.Failed, "blocked", c.Blocked, "duration", rep.Finished.Sub(rep.Started).String()}
		if err != nil {
			logger.Error("pass summary", append(attrs, "error", err)...)
			return
		}
		for _, a := range rep.Accounts {
			if a.Stopped {
				logger.Warn("account stopped before any change", "run_id", rep.RunID.String(), "account", a.Name, "reason", a.Reason)
			}
		}
		logger.Info("pass summary", attrs...)
	}

	cl := cronLogger{logger}
	c := cron.New(
		cron.WithParser(cron.NewParser(cron.Minute|cron.Hour|cron.Dom|cron.Month|cron.Dow|cron.Descriptor)),
		cron.WithChain(cron.SkipIfStillRunning(cl)),
		cron.WithLogger(cl),
	)
	id, err := c.AddFunc(cfg.Schedule, pass)
	if err != nil {
		// ValidateSchedule accepted it, so this is a mismatch between the two parsers.
		fmt.Fprintf(e.stderr, "%s: schedule: %v\n", *cfgPath, err)
		return exitUsage
	}
	logger.Info("reaper started", "config", *cfgPath, "schedule", cfg.Schedule, "store", describeStore(cfg),
		"accounts", len(cfg.Accounts), "policies", len(cfg.Policies))
	c.Start()
	// cron's Stop waits for the passes it started; this waits for the one
	// --now starts by hand, so the daemon returns only after both drained.
	var passes sync.WaitGroup
	if f.now {
		// The entry's wrapped job shares SkipIfStillRunning with the schedule,
		// so a tick during this pass is skipped, not run alongside it.
		job := c.Entry(id).WrappedJob
		passes.Add(1)
		go func() {
			defer passes.Done()
			job.Run()
		}()
	}
	<-ctx.Done()
	logger.Info("stopping: letting the running pass drain")
	<-c.Stop().Done()
	passes.Wait()
	logger.Info("reaper stopped")
	return exitOK
}

// cronLogger routes robfig/cron's logs to slog. Its Info is chatty (every
// schedule and wake-up), so it goes to debug.
type cronLogger struct{ l *slog.Logger }

func (c cronLogger) Info(msg string, kv ...any) { c.l.Debug("cron: "+msg, kv...) }
func (c cronLogger) Error(err error, msg string, kv ...any) {
	c.l.Error("cron: "+msg, append(kv, "error", err)...)
}
