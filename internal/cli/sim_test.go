package cli

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSimPrintsAnAccountBlockThatWorksInAConfig(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, []string{"sim", "--listen", "127.0.0.1:0", "--latency", "0s", "--cancel-delay", "10ms-20ms"},
			strings.NewReader(""), &stdout, &stderr)
	}()
	require.Eventually(t, func() bool { return strings.Contains(stdout.String(), "Stop it with Ctrl-C") },
		10*time.Second, 10*time.Millisecond, stderr.String())
	out := stdout.String()
	block := regexp.MustCompile(`(?s)(accounts:\n.*?)\n\n`).FindStringSubmatch(out)
	require.NotNil(t, block, out)

	dir := t.TempDir()
	cfg := "state_dir: " + filepath.Join(dir, "state") + "\n" + block[1] + `
policies:
  - name: ci
    account: sim
    select: {domain: '^ci-'}
    older_than: 72h
`
	path := filepath.Join(dir, "reaper.yaml")
	require.NoError(t, os.WriteFile(path, []byte(cfg), 0o600))
	r := reaper(t, "validate", "--config", path)
	require.Equal(t, 0, r.code, r)
	r = reaper(t, "once", "--dry-run", "--config", path)
	// The demo sandbox holds a customer with an order too old to cancel: the
	// plan says it would be blocked, and a dry run that planned its account exits 0.
	require.Equal(t, 0, r.code, r)
	require.Regexp(t, `listed [1-9]\d*\s+selected [1-9]`, r.stdout)
	require.Contains(t, r.stdout, "would_delete")

	cancel()
	require.Equal(t, 0, <-done, stderr.String())
}

func TestMainStopsTheDaemonOnSIGINT(t *testing.T) {
	sb := newSandbox(t, testSeed(time.Now(), false))
	path := writeConfig(t, sb, "schedule: '0 0 1 1 *'\n")

	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Main(t.Context(), []string{"run", "--config", path}, strings.NewReader(""), &stdout, &stderr)
	}()
	// "reaper started" is logged after Main installed its handler, so the
	// signal cannot reach the test process's default action.
	require.Eventually(t, func() bool { return strings.Contains(stderr.String(), "reaper started") },
		10*time.Second, 10*time.Millisecond, stderr.String())
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGINT))
	require.Equal(t, 0, <-done, stderr.String())
	require.Contains(t, stderr.String(), "stopping after in-flight steps")
}

func TestASecondSignalExitsAtOnce(t *testing.T) {
	tests := []struct {
		name    string
		signals int
		exit    []int
	}{
		{"one signal cancels the context and does not exit", 1, nil},
		{"a second signal exits 1 without waiting", 2, []int{1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sigs := make(chan os.Signal, 2)
			done := make(chan struct{})
			cancelled := make(chan struct{})
			exited := make(chan int, 1)
			var stderr syncBuffer
			finished := make(chan struct{})
			go func() {
				defer close(finished)
				handleSignals(sigs, done, func() { close(cancelled) }, &stderr, func(code int) { exited <- code })
			}()
			for range tt.signals {
				sigs <- syscall.SIGTERM
			}
			<-cancelled
			if tt.exit != nil {
				require.Equal(t, tt.exit[0], <-exited)
			}
			close(done)
			<-finished
			require.Len(t, exited, 0)
			require.Contains(t, stderr.String(), "stopping after in-flight steps")
		})
	}
}

func TestSimChaosServesFaults(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, []string{"sim", "--chaos", "--listen", "127.0.0.1:0", "--latency", "0s", "--rate", "0"},
			strings.NewReader(""), &stdout, &stderr)
	}()
	require.Eventually(t, func() bool { return strings.Contains(stdout.String(), "Stop it with Ctrl-C") },
		10*time.Second, 10*time.Millisecond, stderr.String())
	require.Contains(t, stdout.String(), "Chaos mode:")
	base := regexp.MustCompile(`base_url: (\S+)`).FindStringSubmatch(stdout.String())
	require.NotNil(t, base, stdout.String())

	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {simClientID}, "client_secret": {"x"},
		"resource": {"https://api.partnercenter.microsoft.com"}}
	res, err := http.PostForm(base[1]+"/"+simTenantID+"/oauth2/token", form)
	require.NoError(t, err)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	require.NoError(t, json.NewDecoder(res.Body).Decode(&tok))
	_ = res.Body.Close()

	// The same listing, again and again: chaos answers some of them with a
	// fault (5xx or 429) or a repeated customer. A perfect server never does.
	faults := 0
	for i := 0; i < 200 && faults == 0; i++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base[1]+"/v1/customers?size=40", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		var page struct {
			Items []struct{ ID string }
		}
		_ = json.NewDecoder(res.Body).Decode(&page)
		_ = res.Body.Close()
		seen := map[string]bool{}
		for _, c := range page.Items {
			if seen[c.ID] {
				faults++
			}
			seen[c.ID] = true
		}
		if res.StatusCode >= 429 {
			faults++
		}
		if res.StatusCode == http.StatusUnauthorized {
			break // the token's 5 s are over; enough was asked
		}
	}
	require.Positive(t, faults, "chaos mode served no fault")

	cancel()
	require.Equal(t, 0, <-done, stderr.String())
}
