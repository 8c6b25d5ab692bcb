package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// checkTimeout bounds one readiness check, so /readyz answers even when the
// store hangs.
const checkTimeout = 3 * time.Second

// Check is one readiness condition: nil when it holds, else why not.
type Check struct {
	Name  string
	Check func(ctx context.Context) error
}

// Health is what /healthz and /readyz report.
type Health struct {
	live   atomic.Bool
	mu     sync.Mutex
	checks []Check
}

// SetLive says whether the daemon's loop runs: /healthz answers 200 while it does.
func (h *Health) SetLive(live bool) { h.live.Store(live) }

// AddCheck adds a readiness check; /readyz is 200 when every check passes.
func (h *Health) AddCheck(c Check) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.checks = append(h.checks, c)
}

// Ready runs every check and returns the reasons of those that fail, by check
// name; empty when ready. The checks run one after another: there are a few,
// and the store's is the only one that does I/O.
func (h *Health) Ready(ctx context.Context) map[string]string {
	h.mu.Lock()
	checks := append([]Check(nil), h.checks...)
	h.mu.Unlock()
	failed := map[string]string{}
	if !h.live.Load() {
		failed["loop"] = "the daemon's loop is not running"
	}
	for _, c := range checks {
		cctx, cancel := context.WithTimeout(ctx, checkTimeout)
		err := c.Check(cctx)
		cancel()
		if err != nil {
			failed[c.Name] = err.Error()
		}
	}
	return failed
}

type healthBody struct {
	Status  string            `json:"status"`
	Reasons map[string]string `json:"reasons,omitempty"`
}

func writeHealth(w http.ResponseWriter, reasons map[string]string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	b := healthBody{Status: "ok"}
	code := http.StatusOK
	if len(reasons) > 0 {
		b.Status, b.Reasons, code = "unavailable", reasons, http.StatusServiceUnavailable
	}
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(b) // a client that went away is not ours to report
}

// Handler serves /metrics, /healthz and /readyz.
func Handler(m *Metrics, h *Health) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.Registry(), promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if !h.live.Load() {
			writeHealth(w, map[string]string{"loop": "the daemon's loop is not running"})
			return
		}
		writeHealth(w, nil)
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		writeHealth(w, h.Ready(r.Context()))
	})
	return mux
}

// shutdownTimeout bounds the graceful shutdown of the server: a scrape in
// progress gets this long.
const shutdownTimeout = 5 * time.Second

// Serve serves h on ln until ctx is done, then shuts the server down
// gracefully and returns. It returns an error only when serving failed.
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
