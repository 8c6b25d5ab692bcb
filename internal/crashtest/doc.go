// Package crashtest holds the crash test of tipreaper's write-ahead state
// machine: it kills real `reaper once` processes with SIGKILL at random
// instants of a live pass and checks, after a final uninterrupted pass, that
// nothing was done that a crash must never cause. The package has no code of
// its own besides this comment; everything is in its tests.
//
// One trial:
//
//	fresh pcsim (httptest, 127.0.0.1) ◄── recorder: every PATCH/DELETE with the
//	  15–25 customers: expired,             order status it met on arrival;
//	  protected, too young, outside,        network delay both ways
//	  one with an order > 60 days old;    a third of the trials: 2 % injected 5xx;
//	  deleted ones answer 404 or 403      cancellations take 10–500 ms
//	fresh store: SQLite in a temp dir (every 5th trial: a Postgres schema)
//	config file: tiny poll_interval/poll_max
//
//	repeat up to K times:  start `reaper once` ── sleep rand[0, D) ── SIGKILL
//	then:                  `reaper once` to the end
//
//	check, from the simulator's request log and the store's tables (plain SQL):
//	  1. no PATCH or DELETE reached a customer outside the selection
//	  2. every selected customer ends deleted (and is gone), or blocked
//	     (the old-order one: zero PATCH, zero DELETE), or failed with a fail row
//	  3. no PATCH under a new MS-RequestId met an order already cancelled (or
//	     already cancelling); no DELETE met an order not cancelled
//	  4. each customer's audit trail has no gap: every intent is answered by its
//	     result or by a resume row, a resumed step reuses the intent's
//	     MS-RequestId, and the deletion's ok row names a DELETE the simulator got
//	  5. no reaper_runs row is left running
//
// Database faults: next to each trial runs a Postgres trial (CRASH_FAULTS=kill
// leaves them out) in which no process is killed; instead, during one pass,
// the server terminates every session of the reaper (pg_terminate_backend on
// the backends of its application_name) at 1–3 random instants of [0, D).
// That pass must end by itself with exit 0 or 1; a final pass runs and the
// same five checks apply.
//
// D is the duration of an uninterrupted pass, measured before the trials
// with as many passes at once as trials run. TestMain builds cmd/reaper once,
// without -race, so the processes stay fast. PATCH and DELETE take a few
// milliseconds to reach the simulator and their answers as long to come back,
// as over a network, so kills also land between an intent and its call
// arriving, and between a step taking effect and the reaper recording it.
// SQLite state dirs live in /dev/shm where it exists: SIGKILL keeps the page
// cache, so fsync only costs time here.
//
// Short form (CI, the default and -short): 50 kill trials and 50 database-fault
// trials, a few seconds each, four at a time.
// Long form, 500 trials:
//
//	CRASH_TRIALS=500 go test ./internal/crashtest -run TestCrash -v
//
// Each trial logs its seed. A failing trial prints the command that replays
// it (CRASH_SEED=… CRASH_STORE=… CRASH_PASS=…); the seed fixes the sandbox,
// the failure rate and the kill delays, though not the exact instruction the
// kernel stopped the process at. CRASH_STORE=postgres (or sqlite) alone puts
// every trial on that store. Postgres trials use TEST_DATABASE_URL (default
// postgres://postgres@127.0.0.1:5432/postgres) and are skipped when it cannot
// be reached, unless CI is set.
package crashtest
