package monitor_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/uuid"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/tipreaper/tipreaper/internal/engine"
	"github.com/tipreaper/tipreaper/internal/monitor"
	"github.com/tipreaper/tipreaper/internal/store"
	"github.com/tipreaper/tipreaper/internal/store/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Scrape gets path from h and parses it with the Prometheus text parser.
func Scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(rec.Body)
	require.NoError(t, err)
	return fams
}

// value is the value of the series of family name with exactly these labels;
// ok is false when there is none.
func value(fams map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	f, ok := fams[name]
	if !ok {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		if len(m.GetLabel()) != len(labels) {
			continue
		}
		for _, l := range m.GetLabel() {
			if labels[l.GetName()] != l.GetValue() {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

func requireValue(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels map[string]string, want float64) {
	t.Helper()
	got, ok := value(fams, name, labels)
	require.True(t, ok, "no series %s%v", name, labels)
	require.Equal(t, want, got, "%s%v", name, labels)
}

func TestMetricsFromEventsReportsRequestsAndTheStore(t *testing.T) {
	st := storetest.SQLite(t)
	ctx := t.Context()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i, state := range []string{store.StateSeen, store.StateSeen, store.StateBlocked, store.StateMarked} {
		cs := store.CustomerState{Account: "contoso", CustomerID: string(rune('a' + i)), State: state, StateAt: at, FirstSeen: at, LastSeen: at}
		require.NoError(t, st.Transition(ctx, cs))
	}
	m := monitor.NewMetrics(st, nil)
	m.Accounts([]string{"contoso", "fabrikam"})
	h := monitor.Handler(m, &monitor.Health{})

	for _, ev := range []store.Event{
		{Account: "contoso", Policy: "ci", Action: store.ActionDelete, Outcome: store.OutcomeIntent},
		{Account: "contoso", Policy: "ci", Action: store.ActionDelete, Outcome: store.OutcomeOK},
		{Account: "contoso", Policy: "ci", Action: store.ActionDelete, Outcome: store.OutcomeOK},
		{Account: "contoso", Policy: "old", Action: store.ActionDelete, Outcome: store.OutcomeOK},
		{Account: "contoso", Policy: "ci", Action: store.ActionDelete, Outcome: store.OutcomeDryRun},
		{Account: "contoso", Action: store.ActionOrderCancelled, Outcome: store.OutcomeOK},
		{Account: "contoso", Action: store.ActionCancelOrder, Outcome: store.OutcomeOK},
	} {
		m.Event(ev)
	}
	m.Request("contoso", "list_customers", 200, false)
	m.Request("contoso", "list_customers", 200, false)
	m.Request("contoso", "delete_customer", 429, true)
	m.Notification(monitor.ResultFailed)
	m.Reload(false)
	m.Reload(true)
	m.Reload(true)

	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	m.Pass(&engine.Report{RunID: uuid.New(), Mode: store.ModeLive, Status: store.RunFailed, Started: start, Finished: start.Add(90 * time.Second),
		Accounts: []engine.AccountReport{
			{Name: "contoso", Listed: 71},
			{Name: "fabrikam", Stopped: true, Guard: engine.GuardListing, Reason: "list customers: 503"},
		}})
	m.Pass(&engine.Report{RunID: uuid.New(), Mode: store.ModeLive, Status: store.RunSucceeded, Started: start.Add(time.Hour), Finished: start.Add(time.Hour + 2*time.Second),
		Accounts: []engine.AccountReport{{Name: "contoso", Listed: 68}, {Name: "fabrikam", Listed: 3}}})
	m.Pass(&engine.Report{RunID: uuid.New(), Mode: store.ModeDryRun, Status: store.RunFailed, Started: start, Finished: start,
		Accounts: []engine.AccountReport{{Name: "contoso", Listed: 5}}})

	fams := Scrape(t, h)
	requireValue(t, fams, "reaper_customers_deleted_total", map[string]string{"account": "contoso", "policy": "ci"}, 2)
	requireValue(t, fams, "reaper_customers_deleted_total", map[string]string{"account": "contoso", "policy": "old"}, 1)
	requireValue(t, fams, "reaper_orders_cancelled_total", map[string]string{"account": "contoso"}, 1)
	requireValue(t, fams, "reaper_orders_cancelled_total", map[string]string{"account": "fabrikam"}, 0)
	requireValue(t, fams, "reaper_api_requests_total", map[string]string{"account": "contoso", "endpoint": "list_customers", "code": "200"}, 2)
	requireValue(t, fams, "reaper_api_requests_total", map[string]string{"account": "contoso", "endpoint": "delete_customer", "code": "429"}, 1)
	requireValue(t, fams, "reaper_api_throttled_total", map[string]string{"account": "contoso"}, 1)
	requireValue(t, fams, "reaper_notifications_total", map[string]string{"result": "failed"}, 1)
	requireValue(t, fams, "reaper_notifications_total", map[string]string{"result": "sent"}, 0)
	requireValue(t, fams, "reaper_config_reloads_total", map[string]string{"result": "failure"}, 1)
	requireValue(t, fams, "reaper_config_reloads_total", map[string]string{"result": "success"}, 2)

	// The dry run is not a pass of the daemon: it changes none of these.
	requireValue(t, fams, "reaper_passes_total", map[string]string{"status": "failed"}, 1)
	requireValue(t, fams, "reaper_passes_total", map[string]string{"status": "succeeded"}, 1)
	requireValue(t, fams, "reaper_pass_duration_seconds", nil, 2)
	requireValue(t, fams, "reaper_last_pass_timestamp_seconds", map[string]string{"status": "failed"}, float64(start.Add(90*time.Second).Unix()))
	requireValue(t, fams, "reaper_last_success_timestamp_seconds", nil, float64(start.Add(time.Hour+2*time.Second).Unix()))
	requireValue(t, fams, "reaper_guard_stops_total", map[string]string{"account": "fabrikam", "guard": "listing"}, 1)
	requireValue(t, fams, "reaper_quota_used", map[string]string{"account": "contoso"}, 68)
	requireValue(t, fams, "reaper_quota_used", map[string]string{"account": "fabrikam"}, 3)
	requireValue(t, fams, "reaper_quota_limit", map[string]string{"account": "fabrikam"}, 75)

	requireValue(t, fams, "reaper_customers", map[string]string{"account": "contoso", "state": "seen"}, 2)
	requireValue(t, fams, "reaper_customers", map[string]string{"account": "contoso", "state": "blocked"}, 1)
	requireValue(t, fams, "reaper_customers", map[string]string{"account": "contoso", "state": "marked"}, 1)

	require.Contains(t, fams, "go_goroutines", "the Go collector")
	require.Contains(t, fams, "process_cpu_seconds_total", "the process collector")
}

func TestQuotaUsedIsKeptWhenAnAccountWasNotListed(t *testing.T) {
	m := monitor.NewMetrics(nil, nil)
	h := monitor.Handler(m, &monitor.Health{})
	pass := func(a engine.AccountReport) {
		m.Pass(&engine.Report{Mode: store.ModeLive, Status: store.RunSucceeded, Accounts: []engine.AccountReport{a}})
	}
	pass(engine.AccountReport{Name: "contoso", Listed: 70})
	pass(engine.AccountReport{Name: "contoso", Reason: "another tipreaper holds this account's lock"})
	pass(engine.AccountReport{Name: "contoso", Stopped: true, Guard: engine.GuardListing, Reason: "list customers: 500"})
	requireValue(t, Scrape(t, h), "reaper_quota_used", map[string]string{"account": "contoso"}, 70)

	pass(engine.AccountReport{Name: "contoso"}) // listed, and empty
	requireValue(t, Scrape(t, h), "reaper_quota_used", map[string]string{"account": "contoso"}, 0)
}

type failingCounter struct{}

func (failingCounter) CustomerCounts(context.Context) ([]store.StateCount, error) {
	return nil, errors.New("connection refused")
}

func TestAScrapeWithoutTheStoreLacksOnlyTheCustomerGauge(t *testing.T) {
	m := monitor.NewMetrics(failingCounter{}, nil)
	m.Accounts([]string{"contoso"})
	fams := Scrape(t, monitor.Handler(m, &monitor.Health{}))
	require.NotContains(t, fams, "reaper_customers")
	require.Contains(t, fams, "reaper_quota_limit")
}

func get(t *testing.T, h http.Handler, path string) (int, map[string]any) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	var body map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
	return rec.Code, body
}

func TestHealthAndReadiness(t *testing.T) {
	var storeErr, configErr error
	health := &monitor.Health{}
	health.AddCheck(monitor.Check{Name: "store", Check: func(context.Context) error { return storeErr }})
	health.AddCheck(monitor.Check{Name: "config", Check: func(context.Context) error { return configErr }})
	h := monitor.Handler(monitor.NewMetrics(nil, nil), health)

	code, body := get(t, h, "/healthz")
	require.Equal(t, http.StatusServiceUnavailable, code, "the loop has not started")
	require.Equal(t, "unavailable", body["status"])
	code, body = get(t, h, "/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, body["reasons"], "loop")

	health.SetLive(true)
	code, _ = get(t, h, "/healthz")
	require.Equal(t, http.StatusOK, code)
	code, body = get(t, h, "/readyz")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, map[string]any{"status": "ok"}, body)

	storeErr = errors.New("dial tcp 127.0.0.1:5432: connection refused")
	configErr = errors.New("reaper.yaml:3: schedule: bad cron")
	code, body = get(t, h, "/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Equal(t, map[string]any{"store": storeErr.Error(), "config": configErr.Error()}, body["reasons"])
	code, _ = get(t, h, "/healthz")
	require.Equal(t, http.StatusOK, code, "a store outage does not make the process unhealthy")

	storeErr, configErr = nil, nil
	health.SetLive(false)
	code, _ = get(t, h, "/healthz")
	require.Equal(t, http.StatusServiceUnavailable, code, "the loop stopped")
}

func TestServeStopsWhenTheContextEnds(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	health := &monitor.Health{}
	health.SetLive(true)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- monitor.Serve(ctx, ln, monitor.Handler(monitor.NewMetrics(nil, nil), health)) }()

	resp, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode)

	cancel()
	require.NoError(t, <-done)
	_, err = http.Get("http://" + ln.Addr().String() + "/healthz")
	require.Error(t, err, "the server is closed")
	http.DefaultClient.CloseIdleConnections()
}
