// Package memhttp serves an http.Handler over in-memory connections
// (net.Pipe). Tests use it inside a testing/synctest bubble: the client and
// the server speak real HTTP/1.1, yet no goroutine blocks on a socket, so the
// bubble's fake clock can carry waits such as backoff and Retry-After.
package memhttp

import (
	"context"
	"net"
	"net/http"
	"sync"
)

// URL is the base URL that Start's client reaches the handler at.
const URL = "http://127.0.0.1"

// Start serves h and returns a client that reaches it at URL. Inside a
// synctest bubble, call it inside the bubble and call stop before the bubble
// ends.
func Start(h http.Handler) (hc *http.Client, stop func()) {
	l := &listener{conns: make(chan net.Conn), done: make(chan struct{})}
	srv := &http.Server{Handler: h}
	tr := &http.Transport{DialContext: l.dial}
	go func() { _ = srv.Serve(l) }()
	return &http.Client{Transport: tr}, func() {
		tr.CloseIdleConnections()
		_ = srv.Close()
	}
}

// listener hands the server ends of the client's pipes to http.Server.
type listener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (l *listener) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.done:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (l *listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *listener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *listener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }
