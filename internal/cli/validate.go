package cli

import (
	"context"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/tipreaper/tipreaper/internal/policy"
	"github.com/tipreaper/tipreaper/migrations"
)

// runValidate checks a config without touching the store or Partner Center,
// so it is safe in CI and in a pre-commit hook.
func runValidate(ctx context.Context, e *env, args []string) int {
	fs := e.newFlagSet("validate")
	cfgPath := e.configFlag(fs)
	if _, code, ok := e.parse(fs, args, "[--config FILE]", 0); !ok {
		return code
	}
	cfg, ok := e.loadConfig(*cfgPath)
	if !ok {
		return exitUsage
	}
	fmt.Fprintf(e.stdout, "%s: ok (%d accounts, %d policies)\n", *cfgPath, len(cfg.Accounts), len(cfg.Policies))
	return exitOK
}

// runMigrate creates or upgrades the audit tables and says which version the schema is at.
func runMigrate(ctx context.Context, e *env, args []string) int {
	fs := e.newFlagSet("migrate")
	cfgPath := e.configFlag(fs)
	if _, code, ok := e.parse(fs, args, "[--config FILE]", 0); !ok {
		return code
	}
	cfg, ok := e.loadConfig(*cfgPath)
	if !ok {
		return exitUsage
	}
	st, ok := e.openMigrated(ctx, cfg)
	if !ok {
		return exitPartial
	}
	defer st.Close()
	fmt.Fprintf(e.stdout, "%s: migrated (%s)\n", describeStore(cfg), schemaVersion(cfg))
	return exitOK
}

// schemaVersion names the newest migration, which a successful Migrate has
// applied. The Store interface does not expose goose's version table, and the
// embedded files are the same ones Migrate ran.
func schemaVersion(cfg *policy.Config) string {
	fsys := migrations.SQLite()
	if cfg.Database.URL != "" {
		fsys = migrations.Postgres()
	}
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil || len(names) == 0 {
		return "version unknown"
	}
	latest := 0
	for _, n := range names {
		digits := n[:len(n)-len(strings.TrimLeft(n, "0123456789"))]
		if v, err := strconv.Atoi(digits); err == nil && v > latest {
			latest = v
		}
	}
	return fmt.Sprintf("schema version %d", latest)
}
