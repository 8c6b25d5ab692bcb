package deploy

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tipreaper/tipreaper/internal/store/storetest"
)

// The paths the manifests probe and annotate for scraping are the ones `reaper run` serves on
// http.listen: the daemon runs with the Deployment's own arguments (only the config path differs) on a
// config that listens on a free loopback port.
func TestDaemonServesTheProbedPaths(t *testing.T) {
	objs := manifests(t)
	c := findObject(t, objs, "Deployment", "tipreaper").Spec.Template.Spec.Containers[0]

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())

	sb := newSandbox(t)
	path := sb.writeConfig(t, storetest.PostgresURL(t))
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString("http:\n  listen: " + addr + "\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())

	args := slices.Clone(c.Args)
	args[slices.Index(args, "--config")+1] = path
	ctx, stop := context.WithTimeout(t.Context(), 2*time.Minute)
	defer stop()
	done := make(chan result, 1)
	go func() { done <- reaper(ctx, args...) }()

	get := func(p string) (int, string) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+p, nil)
		require.NoError(t, err)
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body) // a short read only shortens the failure message
		return resp.StatusCode, string(b)
	}
	for _, p := range []string{daemonLivePath, daemonReadyPath} {
		require.Eventually(t, func() bool { code, _ := get(p); return code == http.StatusOK }, time.Minute, 50*time.Millisecond,
			"%s never answered 200", p)
	}
	code, body := get(daemonMetricsPath)
	require.Equal(t, http.StatusOK, code)
	require.True(t, strings.Contains(body, "reaper_") && strings.Contains(body, "# TYPE"), "Prometheus text on %s", daemonMetricsPath)
	code, _ = get("/no-such-path")
	require.Equal(t, http.StatusNotFound, code, "the checks above would pass against a server that answers everything")

	stop()
	r := <-done
	require.Zero(t, r.code, "reaper run stopped as SIGTERM stops it:\n%s", r)
}
