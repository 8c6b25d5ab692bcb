package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
)

func init() { register(newCompletionCmd) }

// newCompletionCmd prints a shell completion script. It replaces cobra's
// default completion command to keep to the shells the README documents and
// to this CLI's exit codes; the scripts themselves are cobra's, which
// complete commands, flags and, through the hidden __complete command, the
// same tree the binary parses.
func newCompletionCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "completion bash|zsh|fish",
		Short: "print the shell completion script",
		Long: `Print the completion script of a shell. Load it with, for example:

  bash:  source <(reaper completion bash)   (or write it to /etc/bash_completion.d/reaper)
  zsh:   reaper completion zsh > "${fpath[1]}/_reaper"
  fish:  reaper completion fish > ~/.config/fish/completions/reaper.fish`,
		Args:      exactArgs(1),
		ValidArgs: []string{"bash", "zsh", "fish"},
	}
	cmd.RunE = e.run(func(_ context.Context, args []string) int {
		root := cmd.Root()
		var err error
		switch args[0] {
		case "bash":
			err = root.GenBashCompletionV2(e.stdout, true)
		case "zsh":
			err = root.GenZshCompletion(e.stdout)
		case "fish":
			err = root.GenFishCompletion(e.stdout, true)
		default:
			fmt.Fprintf(e.stderr, "reaper completion: unknown shell %q (bash, zsh or fish)\n", args[0])
			return exitUsage
		}
		if err != nil {
			fmt.Fprintf(e.stderr, "reaper completion %s: %v\n", args[0], err)
			return exitPartial
		}
		return exitOK
	})
	return cmd
}
