package cli

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/tipreaper/tipreaper/internal/pcsim"
	"github.com/tipreaper/tipreaper/internal/store/storetest"
)

// daemonRun is a `reaper run` started in this process, its HTTP server on a free port.
type daemonRun struct {
	t      *testing.T
	cancel context.CancelFunc
	done   chan int
	stderr *syncBuffer
	base   string // http://127.0.0.1:port
	once   sync.Once
	code   int
}

var listenRE = regexp.MustCompile(`listen=(127\.0\.0\.1:\d+)`)

func startDaemon(t *testing.T, args ...string) *daemonRun {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	d := &daemonRun{t: t, cancel: cancel, done: make(chan int, 1), stderr: &syncBuffer{}}
	go func() {
		d.done <- Run(ctx, append([]string{"run", "--listen", "127.0.0.1:0"}, args...), strings.NewReader(""), &syncBuffer{}, d.stderr)
	}()
	require.Eventually(t, func() bool { return listenRE.MatchString(d.stderr.String()) },
		30*time.Second, 10*time.Millisecond, "the daemon starts: %s", d.stderr)
	d.base = "http://" + listenRE.FindStringSubmatch(d.stderr.String())[1]
	t.Cleanup(func() {
		cancel()
		select {
		case <-d.stopped():
		case <-time.After(time.Minute):
			t.Error("the daemon did not stop")
		}
		if t.Failed() {
			t.Logf("daemon stderr:\n%s", d.stderr)
		}
		http.DefaultClient.CloseIdleConnections()
	})
	return d
}

// stopped is closed once the daemon returned; its exit code is then d.code.
func (d *daemonRun) stopped() <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		d.once.Do(func() { d.code = <-d.done })
		close(ch)
	}()
	return ch
}

func (d *daemonRun) stop() int {
	d.cancel()
	<-d.stopped()
	return d.code
}

func (d *daemonRun) get(path string) (int, string) {
	d.t.Helper()
	resp, err := http.Get(d.base + path)
	require.NoError(d.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(d.t, err)
	return resp.StatusCode, string(b)
}

// metrics scrapes /metrics and parses it with the Prometheus text parser.
func (d *daemonRun) metrics() map[string]*dto.MetricFamily {
	d.t.Helper()
	code, body := d.get("/metrics")
	require.Equal(d.t, http.StatusOK, code)
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	require.NoError(d.t, err)
	return fams
}

// sample is the value of family name's series whose labels include labels; ok false when none.
func sample(fams map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	f, ok := fams[name]
	if !ok {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range labels {
			if have[k] != v {
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

func (d *daemonRun) value(name string, labels map[string]string) float64 {
	d.t.Helper()
	v, ok := sample(d.metrics(), name, labels)
	require.True(d.t, ok, "no series %s%v", name, labels)
	return v
}

// webhook receives notifications.
type webhook struct {
	mu   sync.Mutex
	got  []map[string]any
	srv  *httptest.Server
	seen chan struct{}
}

func newWebhook(t *testing.T) *webhook {
	w := &webhook{seen: make(chan struct{}, 100)}
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		var m map[string]any
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			rw.WriteHeader(http.StatusBadRequest)
			return
		}
		w.mu.Lock()
		w.got = append(w.got, m)
		w.mu.Unlock()
	}))
	t.Cleanup(w.srv.Close)
	return w
}

func (w *webhook) kind(k string) []map[string]any {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []map[string]any
	for _, m := range w.got {
		if m["kind"] == k {
			out = append(out, m)
		}
	}
	return out
}

const far = "schedule: '0 0 1 1 *'\n" // no tick during a test: passes come from --now

func TestDaemonServesMetricsHealthAndNotifiesAPass(t *testing.T) {
	// Slow cancellations keep the pass running long enough to be scraped during it.
	sim := pcsim.New(pcsim.Config{PartnerTenantID: testTenant, ClientID: testClientID, ClientSecret: testSecret,
		CancelDelay: [2]time.Duration{1500 * time.Millisecond, 2 * time.Second}, Seed: 1})
	for _, c := range testSeed(time.Now(), true) {
		_, err := sim.AddCustomer(c)
		require.NoError(t, err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	hook := newWebhook(t)
	path := writeConfig(t, &sandbox{sim: sim, url: srv.URL}, far+"notify:\n  webhook_url: "+hook.srv.URL+"/hooks/T0/secret\n  quota_warn: 0.05\n")

	d := startDaemon(t, "--now", "--config", path)

	// During the pass: the loop is live, the listing is counted, no pass has finished.
	code, _ := d.get("/healthz")
	require.Equal(t, http.StatusOK, code)
	require.Eventually(t, func() bool {
		_, ok := sample(d.metrics(), "reaper_api_requests_total", map[string]string{"account": "tip", "endpoint": "customers", "code": "200"})
		return ok
	}, 30*time.Second, 20*time.Millisecond)
	fams := d.metrics()
	_, finished := sample(fams, "reaper_passes_total", nil)
	require.False(t, finished, "the pass is still waiting for its cancellations")
	v, _ := sample(fams, "reaper_quota_limit", map[string]string{"account": "tip"})
	require.Equal(t, 75.0, v)

	// After it.
	require.Eventually(t, func() bool { return strings.Contains(d.stderr.String(), "pass summary") },
		60*time.Second, 20*time.Millisecond, d.stderr)
	require.Equal(t, 1.0, d.value("reaper_passes_total", nil))
	require.Equal(t, 1.0, d.value("reaper_pass_duration_seconds", nil))
	require.Equal(t, 2.0, d.value("reaper_customers_deleted_total", map[string]string{"account": "tip", "policy": "ci-leftovers"}))
	require.Equal(t, 2.0, d.value("reaper_orders_cancelled_total", map[string]string{"account": "tip"}))
	require.Equal(t, 6.0, d.value("reaper_quota_used", map[string]string{"account": "tip"}))
	require.Equal(t, 2.0, d.value("reaper_customers", map[string]string{"account": "tip", "state": "deleted"}))
	require.Equal(t, 1.0, d.value("reaper_customers", map[string]string{"account": "tip", "state": "blocked"}))
	require.Equal(t, 0.0, d.value("reaper_api_throttled_total", map[string]string{"account": "tip"}))
	require.Positive(t, d.value("reaper_last_pass_timestamp_seconds", nil))
	require.Positive(t, d.value("go_goroutines", nil))
	code, body := d.get("/readyz")
	require.Equal(t, http.StatusOK, code, body)

	// The webhook got the pass, with the right customers, and the quota crossing.
	require.Eventually(t, func() bool { return len(hook.kind("pass")) == 1 && len(hook.kind("quota")) == 1 },
		30*time.Second, 20*time.Millisecond)
	require.Eventually(t, func() bool { return d.value("reaper_notifications_total", map[string]string{"result": "sent"}) == 2 },
		10*time.Second, 20*time.Millisecond)
	msg := hook.kind("pass")[0]
	require.Contains(t, msg["text"], "2 deleted")
	outcomes := map[string]string{}
	for _, c := range msg["customers"].([]any) {
		c := c.(map[string]any)
		outcomes[c["customer_id"].(string)] = c["outcome"].(string)
	}
	require.Equal(t, map[string]string{idOld1: "deleted", idOld2: "deleted", idAncient: "blocked"}, outcomes)
	require.Equal(t, 6.0, hook.kind("quota")[0]["quota_used"])

	require.Equal(t, 0, d.stop())
	_, err := http.Get(d.base + "/healthz")
	require.Error(t, err, "the server stops with the daemon")
	require.NotContains(t, d.stderr.String(), "secret", "the webhook URL is a secret")
}

func TestSIGHUPWithABrokenConfigKeepsTheLastGoodOneAndAFixedOneIsPickedUp(t *testing.T) {
	hook := newWebhook(t)
	sb := newSandbox(t, testSeed(time.Now(), false))
	extra := far + "notify:\n  webhook_url: " + hook.srv.URL + "\n"
	path := writeConfig(t, sb, extra)
	good, err := os.ReadFile(path)
	require.NoError(t, err)

	d := startDaemon(t, "--config", path)
	code, _ := d.get("/readyz")
	require.Equal(t, http.StatusOK, code)

	require.NoError(t, os.WriteFile(path, append(good, []byte("bogus_key: 1\n")...), 0o600))
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGHUP))
	require.Eventually(t, func() bool {
		return d.value("reaper_config_reloads_total", map[string]string{"result": "failure"}) == 1
	}, 30*time.Second, 20*time.Millisecond)
	require.Regexp(t, regexp.QuoteMeta(path)+`:\d+: bogus_key`, d.stderr.String(), "the problem is logged as FILE:LINE")
	code, body := d.get("/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, body, `"config"`)
	require.Contains(t, body, "bogus_key")
	code, _ = d.get("/healthz")
	require.Equal(t, http.StatusOK, code, "the daemon goes on with the last good config")
	require.Eventually(t, func() bool { return len(hook.kind("config_reload")) == 1 }, 30*time.Second, 20*time.Millisecond)
	require.Contains(t, hook.kind("config_reload")[0]["problems"], "bogus_key")

	// A fixed file, with a second account, is in force after the next SIGHUP.
	second := strings.Replace(string(good), "accounts:\n", "accounts:\n  - name: tip2\n    partner_tenant_id: 99999999-9999-4999-8999-999999999999"+
		"\n    client_id: "+testClientID+"\n    client_secret: x\n    base_url: "+sb.url+"\n    authority: "+sb.url+"\n", 1)
	require.NoError(t, os.WriteFile(path, []byte(second), 0o600))
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGHUP))
	require.Eventually(t, func() bool {
		return d.value("reaper_config_reloads_total", map[string]string{"result": "success"}) == 1
	}, 30*time.Second, 20*time.Millisecond)
	require.Equal(t, 75.0, d.value("reaper_quota_limit", map[string]string{"account": "tip2"}), "the new account is configured")
	code, _ = d.get("/readyz")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, 0, d.stop())
}

// proxy forwards TCP connections to target until stopped; it can be started
// again on the same address.
type proxy struct {
	t      *testing.T
	addr   string
	target string
	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
	wg     sync.WaitGroup
}

func (p *proxy) start() {
	ln, err := net.Listen("tcp", p.addr)
	require.NoError(p.t, err)
	p.addr = ln.Addr().String()
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			p.wg.Go(func() { _, _ = io.Copy(up, c); up.Close() })
			p.wg.Go(func() { _, _ = io.Copy(c, up); c.Close() })
		}
	})
}

func (p *proxy) stop() {
	p.mu.Lock()
	p.ln.Close()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}

func TestReadyzIsUnavailableWhileTheStoreIsUnreachable(t *testing.T) {
	dbURL := storetest.PostgresURL(t) // skips without a server, fails under CI
	u, err := url.Parse(dbURL)
	require.NoError(t, err)
	p := &proxy{t: t, addr: "127.0.0.1:0", target: u.Host}
	p.start()
	t.Cleanup(p.stop)
	u.Host = p.addr
	t.Setenv("REAPER_TEST_DATABASE_URL", u.String())
	sb := newSandbox(t, testSeed(time.Now(), false))
	path := writeConfig(t, sb, far+"database:\n  url: ${REAPER_TEST_DATABASE_URL}\n")

	d := startDaemon(t, "--config", path)
	code, body := d.get("/readyz")
	require.Equal(t, http.StatusOK, code, body)

	p.stop()
	code, body = d.get("/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, body, `"store"`)
	code, _ = d.get("/healthz")
	require.Equal(t, http.StatusOK, code, "a store outage does not make the process unhealthy")
	_, ok := sample(d.metrics(), "reaper_customers", nil)
	require.False(t, ok, "the scrape goes on without the store's gauge")

	p.start()
	require.Eventually(t, func() bool { code, _ := d.get("/readyz"); return code == http.StatusOK },
		30*time.Second, 50*time.Millisecond, "ready again once the store answers")
	require.Equal(t, 0, d.stop())
}

func TestAKeepAddedToTheFileTakesEffectAtTheNextPassWithoutARestart(t *testing.T) {
	sb := newSandbox(t, testSeed(time.Now(), false))
	path := writeConfig(t, sb, "schedule: '@every 5s'\n")
	d := startDaemon(t, "--config", path)

	// The daemon has read its config; the first pass comes with the first tick.
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString("keep:\n  customer_ids: ['" + idOld2 + "']\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())

	require.Eventually(t, func() bool { return strings.Contains(d.stderr.String(), "pass summary") },
		time.Minute, 20*time.Millisecond, d.stderr)
	left := present(sb.sim)
	require.False(t, left[idOld1], "expired and not protected")
	require.True(t, left[idOld2], "protected by the keep added to the file after the daemon started")
	require.Contains(t, d.stderr.String(), "config reloaded")
	require.Equal(t, 0, d.stop())
}
