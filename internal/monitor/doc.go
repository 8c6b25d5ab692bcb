// Package monitor is what an operator's tooling sees of the daemon: the
// Prometheus metrics, the health endpoints and the HTTP server that serves
// them on http.listen.
//
//	engine.OnEvent ──► Metrics.Event   (deletions, cancelled orders, live)
//	engine Report  ──► Metrics.Pass    (passes, durations, quota, guard stops)
//	pc observer    ──► Metrics.Request (API requests by endpoint and code, 429s)
//	store          ◄── scrape          (reaper_customers{account,state})
//	notify, reload ──► Metrics.Notification, Metrics.Reload
//
//	Handler: /metrics (Prometheus text), /healthz (the loop runs), /readyz
//	(every readiness check passes: 200, else 503 with a JSON reason).
//
// Counters only grow for the life of the process; gauges say the last value
// seen. Nothing here makes a pass wait: every update is an in-memory
// increment, and the store is only read when Prometheus scrapes.
package monitor
