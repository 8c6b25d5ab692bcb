package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/tipreaper/tipreaper/internal/engine"
	"github.com/tipreaper/tipreaper/internal/pc"
	"github.com/tipreaper/tipreaper/internal/policy"
	"github.com/tipreaper/tipreaper/internal/ratelimit"
	"github.com/tipreaper/tipreaper/internal/store"
)

// loadConfig loads and validates the config. On failure it prints every
// problem on its own line, FILE:LINE: message, with FILE as the user typed it,
// and returns ok=false: the caller exits 2.
func (e *env) loadConfig(path string) (*policy.Config, bool) {
	cfg, err := policy.Load(path)
	if err != nil {
		e.printConfigError(path, err)
		return nil, false
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintln(e.stderr, "warning: "+formatProblem(path, w))
	}
	return cfg, true
}

func (e *env) printConfigError(path string, err error) {
	var probs policy.Problems
	if errors.As(err, &probs) {
		for _, p := range probs {
			fmt.Fprintln(e.stderr, formatProblem(path, p))
		}
		return
	}
	fmt.Fprintf(e.stderr, "%s: %v\n", path, err)
}

// formatProblem is "FILE:LINE: field: message", with the line left out when
// the problem is about the file as a whole.
func formatProblem(file string, p policy.Problem) string {
	var b strings.Builder
	b.WriteString(file)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
	}
	b.WriteString(": ")
	if p.Field != "" {
		b.WriteString(p.Field)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// openStore opens the configured store: Postgres when database.url is set,
// else SQLite in state_dir (which other reaper processes may use at the same
// time: passes exclude each other per account by lease).
func (e *env) openStore(ctx context.Context, cfg *policy.Config) (store.Store, bool) {
	st, err := store.Open(ctx, cfg.Database.URL.Reveal(), cfg.StateDir)
	if err != nil {
		// store.Open names the store (the URL redacted) in its errors.
		fmt.Fprintf(e.stderr, "reaper: %s\n", oneLine(err.Error()))
		return nil, false
	}
	return st, true
}

// openMigrated opens the store and brings its schema up to date, which every
// command that writes audit rows needs first.
func (e *env) openMigrated(ctx context.Context, cfg *policy.Config) (store.Store, bool) {
	st, ok := e.openStore(ctx, cfg)
	if !ok {
		return nil, false
	}
	if err := st.Migrate(ctx); err != nil {
		fmt.Fprintf(e.stderr, "reaper: %s: %s\n", describeStore(cfg), oneLine(err.Error()))
		_ = st.Close()
		return nil, false
	}
	return st, true
}

// configStore loads the config at path and opens its store, migrated. When
// it fails it has said why on stderr, and code is the exit code: 2 for a bad
// config, 1 for a store that cannot be opened.
func (e *env) configStore(ctx context.Context, path string) (cfg *policy.Config, st store.Store, code int, ok bool) {
	cfg, ok = e.loadConfig(path)
	if !ok {
		return nil, nil, exitUsage, false
	}
	st, ok = e.openMigrated(ctx, cfg)
	if !ok {
		return nil, nil, exitPartial, false
	}
	return cfg, st, exitOK, true
}

// customerCommand checks the customer id argument of a command that takes
// one, loads the config and opens its store. When it fails it has said why,
// and code is the exit code.
func (e *env) customerCommand(ctx context.Context, name, arg string) (id string, cfg *policy.Config, st store.Store, code int, ok bool) {
	id, err := customerID(arg)
	if err != nil {
		fmt.Fprintf(e.stderr, "reaper %s: %v\n", name, err)
		return "", nil, nil, exitUsage, false
	}
	cfg, st, code, ok = e.configStore(ctx, e.config)
	return id, cfg, st, code, ok
}

// describeStore names the store for messages; the URL is redacted because it may hold a password.
func describeStore(cfg *policy.Config) string {
	if cfg.Database.URL == "" {
		return "sqlite in " + cfg.StateDir
	}
	return cfg.Database.Redacted()
}

// connect builds the Partner Center client of an account, with the account's
// own request window so one busy account cannot starve another. An App+User
// account starts from the newest refresh token kept in st (else the
// config's) and keeps each rotated one there, sealed with the token_key.
func connect(cfg *policy.Config, st tokenKeeper, logger *slog.Logger) func(policy.Account) (engine.PartnerCenter, error) {
	return connectObserved(cfg, st, logger, nil)
}

// connectObserved is connect with observe (may be nil) told of every HTTP
// attempt of every account's client: the daemon's request metrics.
func connectObserved(cfg *policy.Config, st tokenKeeper, logger *slog.Logger, observe func(account string, ri pc.RequestInfo)) func(policy.Account) (engine.PartnerCenter, error) {
	return func(a policy.Account) (engine.PartnerCenter, error) {
		var obs func(pc.RequestInfo)
		if observe != nil {
			obs = func(ri pc.RequestInfo) { observe(a.Name, ri) }
		}
		var refresh string
		var onRefresh func(context.Context, string) error
		if a.Credential == policy.CredentialRefreshToken {
			var err error
			if refresh, onRefresh, err = refreshCredential(st, []byte(cfg.TokenKey.Reveal()), a); err != nil {
				return nil, err
			}
		}
		c, err := pc.New(pc.Config{
			Cloud:        a.Cloud,
			BaseURL:      a.BaseURL,
			Authority:    a.Authority,
			TenantID:     a.PartnerTenantID,
			ClientID:     a.ClientID,
			ClientSecret: a.ClientSecret.Reveal(),
			Limiter:      ratelimit.NewWindow(cfg.Limits.RequestsPerMinute, time.Minute),
			Logger:       logger.With("account", a.Name),
			MaxRetryWait: time.Duration(cfg.Limits.MaxRetryWait),
			MaxListed:    cfg.Limits.MaxListed,
			Observe:      obs,
			// Certificate credentials; both empty for the other forms.
			ClientCertificate: a.ClientCertificate,
			ClientKey:         []byte(a.ClientKey.Reveal()),
			// App+User credentials; empty for the other forms.
			RefreshToken:   refresh,
			OnRefreshToken: onRefresh,
		})
		if err != nil {
			return nil, fmt.Errorf("partner center client for account %s: %w", a.Name, err)
		}
		return c, nil
	}
}

// logger is the slog logger of a command on stderr, in --log-format, at
// --log-level or def.
func (e *env) logger(def slog.Level) *slog.Logger {
	// --log-format was checked when parsed: newLogger cannot fail here.
	l, _ := newLogger(e.stderr, e.logFormat, e.logLevel.level(def))
	return l
}

// newLogger returns a slog logger: text or JSON on w.
func newLogger(w io.Writer, format string, level slog.Level) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: level}
	switch format {
	case "", "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("unknown log format %q (text or json)", format)
	}
}
