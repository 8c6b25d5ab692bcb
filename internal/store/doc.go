// Package store is tipreaper's memory: the audit trail of every step it takes and the state of every
// customer it has seen, kept so that a crash or restart resumes where it left off and so that people can
// answer "what happened to customer X" with plain SQL.
//
// One interface, Store, has two implementations chosen by Open from the configured database url:
//
//	database.url ""            ──▶ SQLite file <state dir>/reaper.db (modernc.org/sqlite, pure Go), WAL;
//	                               several processes may share it
//	database.url postgres://…  ──▶ PostgreSQL through a pgx pool; several processes may share it
//
// The tables (see package migrations for the schema and its comments):
//
//	reaper_runs       one row per pass: mode, status, counts, owning instance
//	reaper_events     append-only audit rows; each Partner Center call is written twice,
//	                  first as intent, then with its result
//	reaper_customers  per (account, customer): first/last sighting and state-machine position
//	reaper_keep       protections added by hand
//	reaper_plans      dry-run plans, carried out later by apply
//
// How a pass uses it: Sight upserts every listed customer (first_seen is the reaper's own record of a
// customer's age); then for each step on a customer the engine calls Transition twice, once to record
// the intent (pending_action, an intent event) before the API call and once to record the result, each
// time writing the customer row and its events in one transaction, so the state never disagrees with
// the audit trail. After a crash the pending_* columns say which call may or may not have happened.
//
// Leadership: a lease row per account (reaper_leases) lets one pass work an account at a time, in any
// number of processes: AcquireLease elects (INSERT … ON CONFLICT … WHERE expired), RenewLease extends,
// ReleaseLease ends it. Every acquisition raises the account's fencing token. TransitionIf and
// AppendEventsIf check, in the write's own transaction, that the lease is still the writer's (and, for
// an intent, that no reaper_keep row protects the customer), so a holder that lost the lease writes
// nothing more. Each Store is an instance with a uuid; runs and leases record their instance, and
// CloseDeadRuns marks running runs of instances that are gone as interrupted (Postgres: their instance
// advisory lock is free; SQLite: its flock on <state dir>/instances/<instance>.lock is free); a lease
// whose instance is gone is taken over at once instead of at its expiry.
//
// Conventions both implementations keep, checked by the shared conformance suite in storetest: times are
// UTC with microsecond precision (SQLite: fixed-width RFC 3339 text, so text order is time order); zero
// times, empty strings and zero numbers of optional fields are NULL; enumerations are CHECK-constrained.
package store
