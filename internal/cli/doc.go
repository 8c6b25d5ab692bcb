// Package cli is the reaper command: argument parsing, signal handling and
// the human (or JSON) output around the engine.
//
// Main is what cmd/reaper calls. It turns the first SIGINT/SIGTERM into a
// cancelled context (the engine then drains in-flight steps and stops) and the
// second into an immediate exit 1. Run is the same without signals, for tests.
//
//	args ──► cobra root ──► command (one file each; flags before or after positionals)
//	           │
//	           ├─ policy.Load ──► *policy.Config (exit 2 on any problem, FILE:LINE each)
//	           ├─ store.Open + Migrate (Postgres URL, or SQLite in state_dir)
//	           ├─ engine.New(Options{Connect: pc.New per account + ratelimit.Window})
//	           │     └─ OnEvent ──► one progress line per audit row
//	           └─ *engine.Report ──► plan table, summary, exit code (0, 1; 2 = config/usage)
//
// `reaper run` wraps the same pass in a robfig/cron schedule that never lets two
// passes overlap; `reaper demo` and `reaper sim` serve internal/pcsim on a
// loopback listener so the whole path can be tried without a Tip account.
//
// A command is one file: an init function registers its constructor (see
// register in cli.go), and its body returns an exit code.
package cli
