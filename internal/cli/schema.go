package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tipreaper/tipreaper/internal/policy"
)

func init() { register(newSchemaCmd) }

// newSchemaCmd prints the JSON Schema of the config file, the one the
// decoder is tested to agree with, for editors and CI validators.
func newSchemaCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "schema",
		Short: "print the JSON Schema (2020-12) of the config file",
		Args:  noArgs,
	}
	cmd.RunE = e.run(func(_ context.Context, _ []string) int {
		if _, err := e.stdout.Write(policy.Schema()); err != nil {
			fmt.Fprintf(e.stderr, "reaper schema: %v\n", err)
			return exitPartial
		}
		return exitOK
	})
	return cmd
}
