// Package engine runs tipreaper's passes: it lists an account's customers,
// decides with the policies which of them expire, and reaps each expired
// customer through a write-ahead state machine kept in the store.
//
//	list customers ──► sight (first_seen/last_seen) ──► decide (policy) ──► guards
//	                                                                          │
//	     ┌────────────────────────────────────────────────────────────────────┘
//	     ▼            (at most limits.concurrency customers in flight per account)
//	  selected ──► cancelling ──► awaiting_cancel ──► deleting ──► deleted
//	     │              │                │               │
//	     └──────────────┴────────────────┴───────────────┴──► failed | blocked
//
// Every mutating call is preceded by an intent row (with the MS-RequestId it
// will carry) and followed by a result row, both written together with the
// customer's new state. A pass killed at any instant therefore leaves a state
// the next pass resumes from: it reuses the recorded request id, never
// repeats a finished step, and the audit trail has no gap.
//
// Guards run before the first mutating call of an account and stop that
// account's pass when they trip: a listing or paging error, a policy that
// selects more than its max_selected_fraction, or an access token issued for
// another tenant than the configured partner_tenant_id. A dry run follows the
// same path and records "dry_run" where a live pass would call PATCH or DELETE.
package engine
