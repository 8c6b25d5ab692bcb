// Package notify tells a chat channel or a program what the daemon did, by a
// webhook POST of one JSON body that Slack and Microsoft Teams incoming
// webhooks display as is (its `text` is a short summary for people) and that a
// program reads by its other fields (run_id, status, counts, customers).
//
//	pass report ──► ForPass ──┐
//	quota use   ──► Quota ────┼──► Notifier.Send ──► POST, retried with bounded backoff
//	reload error ─► ForReload ┘         │
//	                                    └──► observe(sent|failed), a log line on failure
//
// The daemon sends in the background (Notifier.Go): a notification never
// fails or delays a pass, and every retry is bounded in count and time.
package notify
