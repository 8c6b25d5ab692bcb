package cli

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"github.com/robfig/cron/v3"
	"github.com/spf13/cobra"

	"github.com/tipreaper/tipreaper/internal/engine"
	"github.com/tipreaper/tipreaper/internal/monitor"
	"github.com/tipreaper/tipreaper/internal/notify"
	"github.com/tipreaper/tipreaper/internal/pc"
	"github.com/tipreaper/tipreaper/internal/policy"
	"github.com/tipreaper/tipreaper/internal/store"
)

func init() { register(newRunCmd) }

// daemonFlags are the flags of `reaper run`.
type daemonFlags struct {
	now       bool
	listen    string
	listenSet bool
}

func newRunCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "run [flags]",
		Short: "the daemon: a pass on the config's schedule",
		Long: `the daemon: a pass on the config's schedule.

The config file is re-read and validated before each pass and at once on SIGHUP; a file with
problems is refused (they are logged) and the last good config stays in force.
With http.listen (or --listen) it serves /metrics, /healthz and /readyz.`,
		Args: noArgs,
	}
	var f daemonFlags
	cmd.Flags().BoolVar(&f.now, "now", false, "also run one pass immediately at start")
	cmd.Flags().StringVar(&f.listen, "listen", "", "serve /metrics, /healthz and /readyz on `ADDR` (host:port; overrides http.listen; \"\": no server)")
	cmd.RunE = e.run(func(ctx context.Context, _ []string) int {
		f.listenSet = cmd.Flags().Changed("listen")
		return runDaemon(ctx, e, f)
	})
	return cmd
}

// daemon is the state of `reaper run` that outlives one pass.
type daemon struct {
	e       *env
	path    string
	log     *slog.Logger
	st      store.Store
	metrics *monitor.Metrics

	passMu sync.Mutex // held by the running pass: passes never overlap

	mu        sync.Mutex // guards the fields below
	cfg       *policy.Config
	cfgHash   [32]byte
	eng       *engine.Engine
	reloadErr error // the last re-read's problems; nil when the file in force is the file on disk
	leaseErr  string
	notifier  *notify.Notifier
	notifiers []*notify.Notifier // every one made, to wait for at exit
	quota     notify.QuotaWatch
	cron      *cron.Cron
	entry     cron.EntryID
}

// runDaemon is `reaper run`: passes on the config's cron schedule until the
// context is cancelled. A pass still running when a tick comes is not joined
// by a second one; between passes the process only waits on cron's timer.
func runDaemon(ctx context.Context, e *env, f daemonFlags) int {
	logger := e.logger(slog.LevelInfo)
	cfg, ok := e.loadConfig(e.config)
	if !ok {
		return exitUsage
	}
	if err := cfg.ValidateSchedule(); err != nil {
		e.printConfigError(e.config, err)
		return exitUsage
	}
	listen := cfg.HTTP.Listen
	if f.listenSet {
		listen = f.listen
	}
	var ln net.Listener
	if listen != "" {
		var err error
		if ln, err = net.Listen("tcp", listen); err != nil {
			fmt.Fprintf(e.stderr, "reaper run: listen on %s: %v\n", listen, err)
			return exitUsage
		}
		defer ln.Close()
	}
	st, ok := e.openMigrated(ctx, cfg)
	if !ok {
		return exitPartial
	}
	defer st.Close()

	d := &daemon{e: e, path: e.config, log: logger, st: st, metrics: monitor.NewMetrics(st, logger)}
	d.apply(cfg, fileHash(e.config))

	health := &monitor.Health{}
	health.AddCheck(monitor.Check{Name: "store", Check: func(ctx context.Context) error {
		if _, err := st.Runs(ctx, 1); err != nil {
			return fmt.Errorf("the store does not answer: %w", err)
		}
		return nil
	}})
	health.AddCheck(monitor.Check{Name: "config", Check: func(context.Context) error { return d.configProblem() }})
	health.AddCheck(monitor.Check{Name: "leases", Check: func(context.Context) error { return d.leaseProblem() }})
	var serving sync.WaitGroup
	serveCtx, stopServing := context.WithCancel(context.WithoutCancel(ctx))
	defer func() { stopServing(); serving.Wait() }()
	if ln != nil {
		serving.Go(func() {
			if err := monitor.Serve(serveCtx, ln, monitor.Handler(d.metrics, health)); err != nil {
				logger.Error("http server stopped", "listen", ln.Addr().String(), "error", err)
			}
		})
	}

	cl := cronLogger{logger}
	d.cron = cron.New(
		cron.WithParser(cron.NewParser(cron.Minute|cron.Hour|cron.Dom|cron.Month|cron.Dow|cron.Descriptor)),
		cron.WithLogger(cl),
	)
	id, err := d.cron.AddFunc(cfg.Schedule, func() { d.pass(ctx) })
	if err != nil {
		// ValidateSchedule accepted it, so this is a mismatch between the two parsers.
		fmt.Fprintf(e.stderr, "%s: schedule: %v\n", e.config, err)
		return exitUsage
	}
	d.entry = id

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var workers sync.WaitGroup
	workers.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				logger.Info("SIGHUP: re-reading the config", "config", d.path)
				d.reload(ctx)
			}
		}
	})

	attrs := []any{"config", e.config, "schedule", cfg.Schedule, "store", describeStore(cfg),
		"accounts", len(cfg.Accounts), "policies", len(cfg.Policies)}
	if ln != nil {
		attrs = append(attrs, "listen", ln.Addr().String())
	}
	logger.Info("reaper started", attrs...)
	d.cron.Start()
	health.SetLive(true)
	if f.now {
		workers.Go(func() { d.pass(ctx) })
	}
	<-ctx.Done()
	health.SetLive(false)
	logger.Info("stopping: letting the running pass drain")
	<-d.cron.Stop().Done() // waits for the passes cron started
	workers.Wait()         // and the one --now started
	d.mu.Lock()
	notifiers := d.notifiers
	d.mu.Unlock()
	for _, n := range notifiers {
		n.Wait() // each bounded by its retries
	}
	logger.Info("reaper stopped")
	return exitOK
}

// pass re-reads the config and runs one pass, unless one is running.
func (d *daemon) pass(ctx context.Context) {
	if !d.passMu.TryLock() {
		d.log.Info("a pass is still running: skipping this one")
		return
	}
	defer d.passMu.Unlock()
	if ctx.Err() != nil {
		return
	}
	d.reload(ctx)
	d.mu.Lock()
	eng, cfg := d.eng, d.cfg
	d.mu.Unlock()

	rep, err := eng.Pass(ctx)
	if err != nil && rep == nil {
		d.log.Error("pass failed", "error", err)
		return
	}
	d.metrics.Pass(rep)
	d.report(ctx, cfg, rep)
	c := rep.Counts
	attrs := []any{"run_id", rep.RunID.String(), "status", rep.Status, "listed", c.Listed, "selected", c.Selected,
		"deleted", c.Deleted, "already_gone", c.AlreadyGone, "marked", c.Marked, "skipped", c.Skipped,
		"failed", c.Failed, "blocked", c.Blocked, "duration_seconds", rep.Finished.Sub(rep.Started).Seconds()}
	if err != nil {
		d.log.Error("pass summary", append(attrs, "error", err)...)
		return
	}
	for _, a := range rep.Accounts {
		if a.Stopped {
			d.log.Warn("account stopped before any change", "run_id", rep.RunID.String(), "account", a.Name, "guard", a.Guard, "reason", a.Reason)
		}
	}
	d.log.Info("pass summary", attrs...)
}

// report sends the notifications a pass calls for and notes lease trouble
// for /readyz.
func (d *daemon) report(ctx context.Context, cfg *policy.Config, rep *engine.Report) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.leaseErr = ""
	for _, a := range rep.Accounts {
		if a.Stopped && a.Guard == engine.GuardLease {
			d.leaseErr = fmt.Sprintf("account %s: %s", a.Name, a.Reason)
		}
	}
	if d.notifier == nil {
		return
	}
	if m, due := notify.ForPass(rep); due {
		d.notifier.Go(ctx, m)
	}
	for _, a := range rep.Accounts {
		if !monitor.Listed(a) {
			continue
		}
		if m, due := d.quota.Observe(a.Name, a.Listed, monitor.QuotaLimit, cfg.Notify.QuotaWarn, rep.Finished); due {
			d.notifier.Go(ctx, m)
		}
	}
}

// reload re-reads the config file. A file with problems is refused: they are
// logged, counted and notified, and the config in force stays. A valid file
// whose bytes changed replaces it (a new engine: its per-account caches start
// cold); an unchanged one changes nothing.
func (d *daemon) reload(ctx context.Context) {
	cfg, err := policy.Load(d.path)
	if err == nil {
		err = cfg.ValidateSchedule()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		d.metrics.Reload(false)
		first := d.reloadErr == nil || d.reloadErr.Error() != err.Error()
		d.reloadErr = err
		lines := problemLines(d.path, err)
		for _, l := range strings.Split(lines, "\n") {
			d.log.Error("config problem", "problem", l)
		}
		d.log.Error("config refused; the last good config stays in force", "config", d.path)
		if first && d.notifier != nil {
			// Once per distinct problem, not before every pass.
			d.notifier.Go(ctx, notify.ForReload(d.path, errors.New(lines), d.e.now()))
		}
		return
	}
	d.reloadErr = nil
	h := fileHash(d.path)
	if h == d.cfgHash {
		return
	}
	old := d.cfg
	if cfg.Database.URL != old.Database.URL || cfg.StateDir != old.StateDir {
		d.log.Warn("database.url and state_dir take effect at the next start; keeping the store in use", "config", d.path)
	}
	if cfg.HTTP.Listen != old.HTTP.Listen {
		d.log.Warn("http.listen takes effect at the next start", "config", d.path)
	}
	if cfg.Schedule != old.Schedule && d.cron != nil {
		id, err := d.cron.AddFunc(cfg.Schedule, func() { d.pass(ctx) })
		if err != nil {
			d.metrics.Reload(false)
			d.reloadErr = fmt.Errorf("schedule: %w", err)
			d.log.Error("config refused; the last good config stays in force", "config", d.path, "error", err)
			return
		}
		d.cron.Remove(d.entry)
		d.entry = id
	}
	d.metrics.Reload(true)
	d.applyLocked(cfg, h)
	d.log.Info("config reloaded", "config", d.path, "schedule", cfg.Schedule, "accounts", len(cfg.Accounts), "policies", len(cfg.Policies))
}

// apply puts cfg in force: a new engine, notifier and account series.
func (d *daemon) apply(cfg *policy.Config, h [32]byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.applyLocked(cfg, h)
}

func (d *daemon) applyLocked(cfg *policy.Config, h [32]byte) {
	url := cfg.Notify.WebhookURL.Reveal()
	if d.cfg == nil || url != d.cfg.Notify.WebhookURL.Reveal() {
		d.notifier = nil
		if url != "" {
			d.notifier = notify.New(notify.Options{URL: url, Logger: d.log, Observe: d.metrics.Notification})
			d.notifiers = append(d.notifiers, d.notifier)
		}
	}
	d.cfg, d.cfgHash = cfg, h
	names := make([]string, len(cfg.Accounts))
	for i, a := range cfg.Accounts {
		names[i] = a.Name
	}
	d.metrics.Accounts(names)
	observe := func(account string, ri pc.RequestInfo) {
		d.metrics.Request(account, ri.Endpoint, ri.StatusCode, ri.Throttled)
	}
	d.eng = engine.New(engine.Options{Config: cfg, Store: d.st, Connect: connectObserved(cfg, d.st, d.log, observe),
		Logger: d.log, Now: d.e.now, OnEvent: d.metrics.Event})
}

func (d *daemon) configProblem() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.reloadErr != nil {
		return fmt.Errorf("%s was refused, running on the last good config: %s", d.path, problemLines(d.path, d.reloadErr))
	}
	return nil
}

func (d *daemon) leaseProblem() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.leaseErr != "" {
		return errors.New(d.leaseErr)
	}
	return nil
}

// problemLines is a config error as printed by validate: one FILE:LINE: field: message a line.
func problemLines(path string, err error) string {
	var probs policy.Problems
	if !errors.As(err, &probs) {
		return err.Error()
	}
	lines := make([]string, len(probs))
	for i, p := range probs {
		lines[i] = formatProblem(path, p)
	}
	return strings.Join(lines, "\n")
}

// fileHash is the hash of the file's bytes (zero when unreadable: then the
// next successful read counts as a change).
func fileHash(path string) [32]byte {
	b, err := os.ReadFile(path)
	if err != nil {
		return [32]byte{}
	}
	return sha256.Sum256(b)
}

// cronLogger routes robfig/cron's logs to slog. Its Info is chatty (every
// schedule and wake-up), so it goes to debug.
type cronLogger struct{ l *slog.Logger }

func (c cronLogger) Info(msg string, kv ...any) { c.l.Debug("cron: "+msg, kv...) }
func (c cronLogger) Error(err error, msg string, kv ...any) {
	c.l.Error("cron: "+msg, append(kv, "error", err)...)
}
