package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tipreaper/tipreaper/internal/bench"
)

func init() { register(newBenchCmd) }

// newBenchCmd is `reaper bench`: the scenarios of internal/bench against the
// in-process simulator, one table of results on stdout, progress on stderr.
func newBenchCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench [flags]",
		Short: "measure a pass against the simulator (see BENCHMARKS.md)",
		Args:  noArgs,
	}
	name := cmd.Flags().String("scenario", "all", "`scenario`: "+strings.Join(bench.Names(), ", "))
	quick := cmd.Flags().Bool("quick", false, "scale every scenario down to run in seconds (a smoke test, not a measurement)")
	sample := cmd.Flags().Bool("sample", true, "also run the sample algorithm where the scenario compares with it (--sample=false saves ~10 min on full)")
	concurrency := cmd.Flags().Int("concurrency", bench.DefaultConcurrency, "the engine's limits.concurrency (calls and steps in flight per account); unset, the defaults scenarios use the engine's default")
	cmd.RunE = e.run(func(ctx context.Context, _ []string) int {
		c := *concurrency
		if !cmd.Flags().Changed("concurrency") {
			c = 0 // each scenario's own (the defaults scenarios: the engine's default)
		}
		return runBench(ctx, e, *name, *quick, *sample, c)
	})
	return cmd
}

func runBench(ctx context.Context, e *env, name string, quick, sample bool, concurrency int) int {
	// The fleet scenario starts this executable again to serve its
	// simulators outside the measured process.
	if child, err := bench.ServeFleetIfChild(e.stdin, e.stdout); child {
		if err != nil {
			fmt.Fprintf(e.stderr, "reaper bench: fleet simulators: %v\n", err)
			return exitPartial
		}
		return exitOK
	}
	scenarios, err := bench.Lookup(name, quick)
	if err == nil && concurrency < 0 {
		err = fmt.Errorf("--concurrency must be at least 1")
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "reaper bench: %v\n", err)
		return exitUsage
	}
	var results []bench.Result
	for _, s := range scenarios {
		s.Baseline = s.Baseline && sample
		if concurrency > 0 {
			s.Concurrency = concurrency
		}
		fmt.Fprintf(e.stderr, "%s: %s\n", s.Name, s.Description)
		rs, err := bench.Run(ctx, s, e.stderr)
		if err != nil {
			fmt.Fprintf(e.stderr, "reaper bench: %v\n", err)
			if len(results) > 0 {
				bench.WriteTable(e.stdout, results)
			}
			return exitPartial
		}
		results = append(results, rs...)
	}
	bench.WriteTable(e.stdout, results)
	for _, r := range results {
		if len(r.Problems) > 0 {
			return exitPartial
		}
	}
	return exitOK
}
