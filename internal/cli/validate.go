package cli

import (
	"context"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tipreaper/tipreaper/internal/policy"
	"github.com/tipreaper/tipreaper/migrations"
)

func init() {
	register(newValidateCmd)
	register(newMigrateCmd)
}

// newValidateCmd checks a config without touching the store or Partner
// Center, so it is safe in CI and in a pre-commit hook.
func newValidateCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "validate [flags]",
		Short: "check a config file; every problem as FILE:LINE: message",
		Args:  noArgs,
	}
	cmd.RunE = e.run(func(ctx context.Context, _ []string) int {
		cfg, ok := e.loadConfig(e.config)
		if !ok {
			return exitUsage
		}
		fmt.Fprintf(e.stdout, "%s: ok (%d accounts, %d policies)\n", e.config, len(cfg.Accounts), len(cfg.Policies))
		return exitOK
	})
	return cmd
}

// newMigrateCmd creates or upgrades the audit tables and says which version the schema is at.
func newMigrateCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate [flags]",
		Short: "create or upgrade the audit tables",
		Args:  noArgs,
	}
	cmd.RunE = e.run(func(ctx context.Context, _ []string) int { return runMigrate(ctx, e) })
	return cmd
}

func runMigrate(ctx context.Context, e *env) int {
	cfg, ok := e.loadConfig(e.config)
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
