package notify_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/tipreaper/tipreaper/internal/engine"
	"github.com/tipreaper/tipreaper/internal/notify"
	"github.com/tipreaper/tipreaper/internal/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var finished = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func report(status store.RunStatus, c store.Counts, items ...engine.Item) *engine.Report {
	return &engine.Report{RunID: uuid.MustParse("0192b6a4-0000-7000-8000-000000000001"), Mode: store.ModeLive,
		Status: status, Counts: c, Items: items, Started: finished.Add(-time.Minute), Finished: finished,
		Accounts: []engine.AccountReport{{Name: "contoso", Listed: c.Listed}}}
}

func TestAPassIsNotifiedOnlyWhenItDidSomethingOrWasStopped(t *testing.T) {
	skipped := engine.Item{Account: "contoso", CustomerID: "c-keep", Action: engine.ActionSkip, Outcome: engine.OutcomeSkipped, Reason: "protected"}
	gone := engine.Item{Account: "contoso", CustomerID: "c-gone", Action: engine.ActionDelete, Outcome: engine.OutcomeAlreadyGone}
	stopped := report(store.RunFailed, store.Counts{})
	stopped.Accounts[0].Stopped, stopped.Accounts[0].Guard, stopped.Accounts[0].Reason = true, engine.GuardListing, "list customers: 503"
	dry := report(store.RunSucceeded, store.Counts{Deleted: 1})
	dry.Mode = store.ModeDryRun
	for _, tc := range []struct {
		name string
		r    *engine.Report
		due  bool
	}{
		{"a pass that only skipped is quiet", report(store.RunSucceeded, store.Counts{Listed: 5, Skipped: 1}, skipped), false},
		{"a pass whose customers were already gone is quiet", report(store.RunSucceeded, store.Counts{Listed: 5, AlreadyGone: 1}, gone), false},
		{"a pass that deleted is notified", report(store.RunSucceeded, store.Counts{Deleted: 1}), true},
		{"a pass that marked is notified", report(store.RunSucceeded, store.Counts{Marked: 1}), true},
		{"a pass that blocked is notified", report(store.RunPartial, store.Counts{Blocked: 1}), true},
		{"a pass that failed a customer is notified", report(store.RunPartial, store.Counts{Failed: 1}), true},
		{"a pass a guard stopped is notified", stopped, true},
		{"a dry run is never notified", dry, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, due := notify.ForPass(tc.r)
			require.Equal(t, tc.due, due)
		})
	}
}

func TestAPassMessageListsTheCustomersWithOutcomeReasonAndDeleteTime(t *testing.T) {
	deleteAt := finished.Add(72 * time.Hour)
	r := report(store.RunPartial, store.Counts{Listed: 70, Selected: 3, Deleted: 1, Marked: 1, Blocked: 1, Skipped: 1},
		engine.Item{Account: "contoso", CustomerID: "c-del", Domain: "ci-1.onmicrosoft.com", Policy: "ci", Action: engine.ActionDelete, Outcome: engine.OutcomeDeleted, Reason: "expired"},
		engine.Item{Account: "contoso", CustomerID: "c-mark", Domain: "ci-2.onmicrosoft.com", Policy: "ci", Action: engine.ActionMark, Outcome: engine.OutcomeMarked, Reason: "grace 3d", DeleteAt: deleteAt},
		engine.Item{Account: "contoso", CustomerID: "c-block", Domain: "ci-3\x1b[2J.onmicrosoft.com\nforged line", Policy: "ci", Action: engine.ActionDelete, Outcome: engine.OutcomeBlocked, Error: "order o-1 is older than 60 days"},
		engine.Item{Account: "contoso", CustomerID: "c-keep", Domain: "golden.onmicrosoft.com", Action: engine.ActionSkip, Outcome: engine.OutcomeSkipped, Reason: "protected"},
	)
	m, due := notify.ForPass(r)
	require.True(t, due)
	require.Equal(t, notify.KindPass, m.Kind)
	require.Equal(t, "0192b6a4-0000-7000-8000-000000000001", m.RunID)
	require.Equal(t, "partial", m.Status)
	require.Equal(t, &notify.Counts{Listed: 70, Selected: 3, Deleted: 1, Marked: 1, Blocked: 1, Skipped: 1}, m.Counts)
	byID := map[string]notify.Customer{}
	for _, c := range m.Customers {
		byID[c.CustomerID] = c
	}
	require.Len(t, byID, 3, "the protected customer is not listed")
	require.Equal(t, engine.OutcomeDeleted, byID["c-del"].Outcome)
	require.Equal(t, "ci", byID["c-del"].Policy)
	require.Equal(t, engine.OutcomeMarked, byID["c-mark"].Outcome)
	require.Equal(t, deleteAt, *byID["c-mark"].DeleteAt)
	require.Nil(t, byID["c-del"].DeleteAt)
	require.Equal(t, "order o-1 is older than 60 days", byID["c-block"].Error)

	require.Contains(t, m.Text, "partial: 1 deleted, 1 marked, 1 blocked, 0 failed (70 listed)")
	lines := strings.Split(m.Text, "\n")
	require.Len(t, lines, 4, "summary + one line per customer, no forged line")
	require.True(t, strings.HasPrefix(lines[1], "- blocked "), "the customer needing a person comes first: %q", lines[1])
	require.NotContains(t, m.Text, "\x1b")
	require.Contains(t, m.Text, "deleted after 2026-03-04T12:00:00Z unless `reaper keep add c-mark`")
}

func TestQuotaIsNotifiedWhenItCrossesTheThreshold(t *testing.T) {
	var q notify.QuotaWatch
	steps := []struct {
		used int
		due  bool
	}{{60, false}, {68, true}, {70, false}, {60, false}, {67, false}, {68, true}}
	for i, s := range steps {
		m, due := q.Observe("contoso", s.used, 75, 0.9, finished)
		require.Equal(t, s.due, due, "step %d: %d of 75", i, s.used)
		if due {
			require.Equal(t, notify.KindQuota, m.Kind)
			require.Equal(t, "contoso", m.Account)
			require.Equal(t, s.used, m.QuotaUsed)
			require.Contains(t, m.Text, "contoso holds 68 of its 75 customers (91%, warning at 90%)")
		}
	}
	_, due := q.Observe("fabrikam", 75, 75, 0.9, finished)
	require.True(t, due, "accounts are watched apart; above at first sight counts as crossing")
}

// hook is a webhook receiver: it answers with codes in turn (then 200) and keeps what it received.
type hook struct {
	srv   *httptest.Server
	mu    sync.Mutex
	got   []map[string]any
	codes []int
	calls atomic.Int32
}

func newHook(t *testing.T, codes ...int) *hook {
	h := &hook{codes: codes}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(h.calls.Add(1)) - 1
		if r.Header.Get("Content-Type") != "application/json" {
			w.WriteHeader(http.StatusUnsupportedMediaType)
			return
		}
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if n < len(h.codes) {
			w.WriteHeader(h.codes[n])
			return
		}
		h.mu.Lock()
		h.got = append(h.got, body)
		h.mu.Unlock()
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func newNotifier(url string, results *[]string) *notify.Notifier {
	var mu sync.Mutex
	return notify.New(notify.Options{URL: url + "/services/T000/B000/secret-token", Tries: 3, Backoff: time.Millisecond, MaxWait: 5 * time.Millisecond,
		Observe: func(r string) { mu.Lock(); *results = append(*results, r); mu.Unlock() }})
}

func TestAWebhookReceivesTheBodySlackAndTeamsDisplay(t *testing.T) {
	h := newHook(t, http.StatusServiceUnavailable, http.StatusTooManyRequests)
	var results []string
	n := newNotifier(h.srv.URL, &results)
	m, due := notify.ForPass(report(store.RunSucceeded, store.Counts{Deleted: 1},
		engine.Item{Account: "contoso", CustomerID: "c-del", Domain: "ci-1.onmicrosoft.com", Policy: "ci", Action: engine.ActionDelete, Outcome: engine.OutcomeDeleted}))
	require.True(t, due)

	n.Go(t.Context(), m)
	n.Wait()

	require.Equal(t, int32(3), h.calls.Load(), "a 503 and a 429 are retried")
	require.Equal(t, []string{notify.ResultSent}, results)
	require.Len(t, h.got, 1)
	body := h.got[0]
	require.IsType(t, "", body["text"], "Slack and Teams display `text`")
	require.Contains(t, body["text"], "1 deleted")
	require.Equal(t, "0192b6a4-0000-7000-8000-000000000001", body["run_id"])
	require.Equal(t, "succeeded", body["status"])
	require.Equal(t, float64(1), body["counts"].(map[string]any)["deleted"])
	cs := body["customers"].([]any)
	require.Len(t, cs, 1)
	require.Equal(t, "c-del", cs[0].(map[string]any)["customer_id"])
	require.Equal(t, "deleted", cs[0].(map[string]any)["outcome"])
}

func TestAFailedNotificationIsBoundedCountedAndKeepsTheTokenSecret(t *testing.T) {
	for _, tc := range []struct {
		name  string
		codes []int
		calls int32
	}{
		{"a server that keeps failing is tried a bounded number of times", []int{500, 502, 503, 504, 500}, 3},
		{"a 4xx is not retried", []int{http.StatusNotFound}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHook(t, tc.codes...)
			var results []string
			n := newNotifier(h.srv.URL, &results)
			err := n.Send(t.Context(), notify.ForReload("reaper.yaml", errString("reaper.yaml:3: schedule: bad"), finished))
			require.Error(t, err)
			require.Equal(t, tc.calls, h.calls.Load())
			require.Equal(t, []string{notify.ResultFailed}, results)
			require.NotContains(t, err.Error(), "secret-token")
		})
	}
	t.Run("an unreachable webhook fails without its URL in the error", func(t *testing.T) {
		h := newHook(t)
		url := h.srv.URL
		h.srv.Close()
		var results []string
		err := newNotifier(url, &results).Send(t.Context(), notify.ForReload("reaper.yaml", errString("x"), finished))
		require.Error(t, err)
		require.NotContains(t, err.Error(), "secret-token")
		require.Equal(t, []string{notify.ResultFailed}, results)
	})
}

func TestAReloadMessageNamesTheFileAndItsProblems(t *testing.T) {
	m := notify.ForReload("/etc/reaper.yaml", errString("/etc/reaper.yaml:3: schedule: bad\n/etc/reaper.yaml:9: policies[0].older_than: required"), finished)
	require.Equal(t, notify.KindReload, m.Kind)
	require.Equal(t, "/etc/reaper.yaml", m.ConfigFile)
	require.Contains(t, m.Text, "last good config stays in force")
	require.Contains(t, m.Text, "/etc/reaper.yaml:9: policies[0].older_than: required")
}

type errString string

func (e errString) Error() string { return string(e) }
