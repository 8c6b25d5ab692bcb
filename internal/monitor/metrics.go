package monitor

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/tipreaper/tipreaper/internal/engine"
	"github.com/tipreaper/tipreaper/internal/store"
)

// QuotaLimit is the number of customers a Tip sandbox account may hold.
const QuotaLimit = 75

// customerCounter is what the metrics need of the store: store.Store has it.
type customerCounter interface {
	CustomerCounts(ctx context.Context) ([]store.StateCount, error)
}

// scrapeTimeout bounds the store query of one scrape, so a store that does not
// answer makes the scrape lack reaper_customers, not hang.
const scrapeTimeout = 5 * time.Second

// Metrics holds the daemon's Prometheus series. Its methods are safe for
// concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	passes          *prometheus.CounterVec
	passDuration    prometheus.Histogram
	lastPass        *prometheus.GaugeVec
	lastSuccess     prometheus.Gauge
	deleted         *prometheus.CounterVec
	ordersCancelled *prometheus.CounterVec
	quotaUsed       *prometheus.GaugeVec
	quotaLimit      *prometheus.GaugeVec
	apiRequests     *prometheus.CounterVec
	apiThrottled    *prometheus.CounterVec
	guardStops      *prometheus.CounterVec
	notifications   *prometheus.CounterVec
	reloads         *prometheus.CounterVec
}

// NewMetrics returns the daemon's metrics on a registry of their own, with the
// Go and process collectors. store (may be nil) is read at each scrape for
// reaper_customers; logger (may be nil) gets a line when that read fails.
func NewMetrics(st customerCounter, logger *slog.Logger) *Metrics {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		passes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reaper_passes_total", Help: "Passes finished, by status (succeeded, partial, failed, interrupted).",
		}, []string{"status"}),
		passDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "reaper_pass_duration_seconds", Help: "How long a pass took, start to finish.",
			// A pass lists in a second and may wait up to limits.cancel_timeout (30 m) for cancellations.
			Buckets: []float64{1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600},
		}),
		lastPass: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "reaper_last_pass_timestamp_seconds", Help: "Unix time the last pass of each status finished.",
		}, []string{"status"}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "reaper_last_success_timestamp_seconds", Help: "Unix time the last succeeded pass finished (0: none since start).",
		}),
		deleted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reaper_customers_deleted_total", Help: "Customers deleted (DELETE answered 204), by account and deciding policy.",
		}, []string{"account", "policy"}),
		ordersCancelled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reaper_orders_cancelled_total", Help: "Orders that read cancelled after tipreaper cancelled them, by account.",
		}, []string{"account"}),
		quotaUsed: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "reaper_quota_used", Help: "Customers the account listed at its last pass (a Tip account holds at most reaper_quota_limit).",
		}, []string{"account"}),
		quotaLimit: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "reaper_quota_limit", Help: "Customers a Tip account may hold.",
		}, []string{"account"}),
		apiRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reaper_api_requests_total", Help: "Partner Center API attempts, by account, endpoint and HTTP status code (0: no answer).",
		}, []string{"account", "endpoint", "code"}),
		apiThrottled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reaper_api_throttled_total", Help: "Partner Center answers 429 (throttled), by account.",
		}, []string{"account"}),
		guardStops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reaper_guard_stops_total", Help: "Account passes a guard stopped before any change, by account and guard.",
		}, []string{"account", "guard"}),
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reaper_notifications_total", Help: "Webhook notifications, by result (sent, failed).",
		}, []string{"result"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reaper_config_reloads_total", Help: "Config re-reads, by result (success: in force; failure: refused, the last good config stays).",
		}, []string{"result"}),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.passes, m.passDuration, m.lastPass, m.lastSuccess, m.deleted, m.ordersCancelled,
		m.quotaUsed, m.quotaLimit, m.apiRequests, m.apiThrottled, m.guardStops, m.notifications, m.reloads,
	)
	if st != nil {
		m.reg.MustRegister(&customersCollector{st: st, log: logger})
	}
	// Series a dashboard expects before the first event of their kind.
	for _, r := range []string{ResultSent, ResultFailed} {
		m.notifications.WithLabelValues(r)
	}
	for _, r := range []string{ResultSuccess, ResultFailure} {
		m.reloads.WithLabelValues(r)
	}
	return m
}

// Results of notifications and config reloads, the values of their `result` label.
const (
	ResultSent    = "sent"
	ResultFailed  = "failed"
	ResultSuccess = "success"
	ResultFailure = "failure"
)

// Registry is the registry the metrics are on.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Accounts declares the configured accounts, so their quota limit and
// zero-valued counters exist before their first pass.
func (m *Metrics) Accounts(names []string) {
	for _, a := range names {
		m.quotaLimit.WithLabelValues(a).Set(QuotaLimit)
		m.ordersCancelled.WithLabelValues(a)
		m.apiThrottled.WithLabelValues(a)
	}
}

// Event takes an audit row as the engine writes it (engine.Options.OnEvent):
// deletions and cancelled orders are counted as they happen, not at the end
// of a pass that may take half an hour.
func (m *Metrics) Event(ev store.Event) {
	switch {
	case ev.Action == store.ActionDelete && ev.Outcome == store.OutcomeOK:
		m.deleted.WithLabelValues(ev.Account, ev.Policy).Inc()
	case ev.Action == store.ActionOrderCancelled && ev.Outcome == store.OutcomeOK:
		m.ordersCancelled.WithLabelValues(ev.Account).Inc()
	}
}

// Pass takes the report of a finished pass.
func (m *Metrics) Pass(r *engine.Report) {
	if r == nil || r.Mode != store.ModeLive {
		return
	}
	status := string(r.Status)
	m.passes.WithLabelValues(status).Inc()
	m.passDuration.Observe(r.Finished.Sub(r.Started).Seconds())
	finished := float64(r.Finished.UnixNano()) / 1e9
	m.lastPass.WithLabelValues(status).Set(finished)
	if r.Status == store.RunSucceeded {
		m.lastSuccess.Set(finished)
	}
	for _, a := range r.Accounts {
		m.quotaLimit.WithLabelValues(a.Name).Set(QuotaLimit)
		if a.Stopped {
			m.guardStops.WithLabelValues(a.Name, a.Guard).Inc()
		}
		if Listed(a) {
			m.quotaUsed.WithLabelValues(a.Name).Set(float64(a.Listed))
		}
	}
}

// Listed says whether the account's pass got a complete listing, so that
// a.Listed is its quota use; an account skipped (another leader) or stopped
// before or while listing says nothing about it.
func Listed(a engine.AccountReport) bool {
	if a.Listed > 0 {
		return true
	}
	return !a.Stopped && a.Reason == ""
}

// Request counts one Partner Center API attempt: endpoint names the route
// (not the URL: ids would make a series per customer), code is the HTTP status
// (0 when no answer came).
func (m *Metrics) Request(account, endpoint string, code int, throttled bool) {
	m.apiRequests.WithLabelValues(account, endpoint, strconv.Itoa(code)).Inc()
	if throttled {
		m.apiThrottled.WithLabelValues(account).Inc()
	}
}

// Notification counts a webhook notification by its result (ResultSent or ResultFailed).
func (m *Metrics) Notification(result string) { m.notifications.WithLabelValues(result).Inc() }

// Reload counts a config re-read: ok is true when the new config is in force.
func (m *Metrics) Reload(ok bool) {
	if ok {
		m.reloads.WithLabelValues(ResultSuccess).Inc()
		return
	}
	m.reloads.WithLabelValues(ResultFailure).Inc()
}

// customersCollector reads reaper_customers from the store at each scrape, so
// the gauge is never older than the scrape, during a pass too.
type customersCollector struct {
	st  customerCounter
	log *slog.Logger
}

var customersDesc = prometheus.NewDesc("reaper_customers",
	"Customers the store knows, by account and state (seen, marked, blocked, failed, reappeared, deleted, …).",
	[]string{"account", "state"}, nil)

func (c *customersCollector) Describe(ch chan<- *prometheus.Desc) { ch <- customersDesc }

func (c *customersCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	counts, err := c.st.CustomerCounts(ctx)
	if err != nil {
		// The scrape goes on without this family; /readyz says the store is down.
		c.log.Warn("metrics: read customer counts", "error", err)
		return
	}
	for _, n := range counts {
		ch <- prometheus.MustNewConstMetric(customersDesc, prometheus.GaugeValue, float64(n.Count), n.Account, n.State)
	}
}
