package pc_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tipreaper/tipreaper/internal/pc"
	"github.com/tipreaper/tipreaper/internal/pcsim"
)

// fakeAPI serves tokens from a real simulator and the API from api, for
// answers the simulator never gives (garbled bodies, looping links).
func fakeAPI(t *testing.T, api http.HandlerFunc) (*pc.Client, *atomic.Int64) {
	t.Helper()
	sim := newSim(pcsim.Config{})
	var calls atomic.Int64
	url, hc := startSim(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/oauth2/") {
			sim.ServeHTTP(w, r)
			return
		}
		calls.Add(1)
		api(w, r)
	}))
	return newClient(t, url, hc, nil), &calls
}

func TestAnUndecodableSuccessIsAnErrorNamingTheOperation(t *testing.T) {
	tests := []struct {
		name string
		body string
		call func(*pc.Client) error
		op   string
	}{
		{"a customer page that is not JSON", "<html>oops</html>", listCustomers, "list customers"},
		{"a customer page that is a JSON array", "[]", listCustomers, "list customers"},
		{"a customer page that is null", "null", listCustomers, "list customers"},
		{"a customer page whose items are not a list", `{"items":{"id":"x"}}`, listCustomers, "list customers"},
		{"a customer without id", `{"items":[{"companyProfile":{"domain":"x"}}]}`, listCustomers, "list customers"},
		{"a truncated customer page", `{"items":[{"id":"a"`, listCustomers, "list customers"},
		{"an order without id", `{"status":"pending"}`, getOrder, "get order o1 of customer c1"},
		{"an order with a bad creation date", `{"id":"o1","creationDate":"last week"}`, getOrder, "get order o1 of customer c1"},
		{"a cancel answered with an empty body", ``, cancelOrder, "cancel order o1 of customer c1"},
		{"a next link with another method", `{"items":[],"links":{"next":{"uri":"/customers","method":"POST"}}}`, listCustomers, "list customers"},
		{"a next link without uri", `{"items":[],"links":{"next":{"uri":""}}}`, listCustomers, "list customers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := fakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusOK)
				_, _ = io.WriteString(w, tt.body)
			})
			err := tt.call(c)
			require.Error(t, err)
			require.Contains(t, err.Error(), tt.op)
			require.Equal(t, http.StatusOK, pc.StatusCode(err))
			require.False(t, pc.IsRetryable(err))
		})
	}
}

func listCustomers(c *pc.Client) error {
	got, err := c.ListCustomers(context.Background())
	if err == nil && got != nil {
		return fmt.Errorf("got %d customers", len(got))
	}
	return err
}

func getOrder(c *pc.Client) error {
	_, err := c.GetOrder(context.Background(), "c1", "o1")
	return err
}

func cancelOrder(c *pc.Client) error {
	_, err := c.CancelOrder(context.Background(), "c1", "o1")
	return err
}

func TestAnEmptyCollectionIsAnEmptyList(t *testing.T) {
	c, _ := fakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"totalCount":0,"items":[],"links":{},"attributes":{"objectType":"Collection"}}`)
	})
	got, err := c.ListCustomers(context.Background())
	require.NoError(t, err)
	require.Empty(t, got)
}

func TestAServerRepeatingAContinuationTokenIsRefused(t *testing.T) {
	c, calls := fakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"items":[{"id":"a"}],"links":{"next":{"uri":"/customers?seekOperation=Next","method":"GET",
			"headers":[{"key":"MS-ContinuationToken","value":"same"}]}}}`)
	})
	got, err := c.ListCustomers(context.Background())
	require.ErrorContains(t, err, "looping")
	require.Nil(t, got)
	require.Equal(t, int64(2), calls.Load(), "the repeat is caught on the second page")
}

func TestANextLinkToAnotherHostIsNotFollowed(t *testing.T) {
	var foreign atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { foreign.Add(1) }))
	t.Cleanup(other.Close)
	c, _ := fakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"items":[{"id":"a"}],"links":{"next":{"uri":%q,"headers":[{"key":"MS-ContinuationToken","value":"t"}]}}}`,
			other.URL+"/v1/customers?seekOperation=Next")
	})
	got, err := c.ListCustomers(context.Background())
	require.ErrorContains(t, err, "leaves the API host")
	require.Nil(t, got)
	require.Zero(t, foreign.Load(), "the token was sent to another host")
}

func TestANextLinkCannotReplaceTheAuthorization(t *testing.T) {
	var mu sync.Mutex
	var auths []string
	c, _ := fakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auths = append(auths, r.Header.Get("Authorization"))
		page := len(auths)
		mu.Unlock()
		if page == 1 {
			_, _ = io.WriteString(w, `{"items":[{"id":"a"}],"links":{"next":{"uri":"/customers?seekOperation=Next",
				"headers":[{"key":"MS-ContinuationToken","value":"t"},{"key":"Authorization","value":"Bearer planted"}]}}}`)
			return
		}
		_, _ = io.WriteString(w, `{"items":[{"id":"b"}]}`)
	})
	got, err := c.ListCustomers(context.Background())
	require.NoError(t, err)
	require.Len(t, got, 2)
	require.Len(t, auths, 2)
	require.Equal(t, auths[0], auths[1])
	require.NotEqual(t, "Bearer planted", auths[1])
}

func TestPersistent429sGiveUpAfterMax429Retries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := newSim(pcsim.Config{})
		var calls atomic.Int64
		url, hc, stop := startPipe(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.Contains(r.URL.Path, "/oauth2/") {
				sim.ServeHTTP(w, r)
				return
			}
			calls.Add(1)
			w.Header().Set("Retry-After", "2")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = io.WriteString(w, `{"statusCode":429,"message":"Rate limit is exceeded. Try again in 2 seconds."}`)
		}))
		defer stop()
		c := newClient(t, url, hc, func(cfg *pc.Config) { cfg.Max429Retries = 2 })

		_, err := c.ListCustomers(context.Background())
		require.True(t, pc.IsThrottled(err))
		var pe *pc.Error
		require.ErrorAs(t, err, &pe)
		require.Equal(t, 2*time.Second, pe.RetryAfter)
		require.Equal(t, int64(3), calls.Load())
		require.Equal(t, int64(3), c.Stats().Throttled)
	})
}

// TestDeleteSendsContentLengthZeroOnTheWire reads the raw request bytes.
func TestDeleteSendsContentLengthZeroOnTheWire(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	head := make(chan string, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			head <- ""
			return
		}
		defer conn.Close()
		br := bufio.NewReader(conn)
		var b bytes.Buffer
		for {
			line, err := br.ReadString('\n')
			b.WriteString(line)
			if err != nil || line == "\r\n" {
				break
			}
		}
		_, _ = io.WriteString(conn, "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
		head <- b.String()
	}()

	sim := newSim(pcsim.Config{})
	login, _ := startSim(t, sim)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	c, err := pc.New(pc.Config{
		BaseURL: "http://" + ln.Addr().String(), Authority: login,
		TenantID: tenant, ClientID: clientID, ClientSecret: secret,
		HTTPClient: &http.Client{Transport: tr},
	})
	require.NoError(t, err)

	require.NoError(t, c.DeleteCustomer(context.Background(), "abc"))
	got := <-head
	require.True(t, strings.HasPrefix(got, "DELETE /v1/customers/abc HTTP/1.1\r\n"), got)
	require.Contains(t, got, "\r\nContent-Length: 0\r\n")
	require.NotContains(t, strings.ToLower(got), "transfer-encoding")
}

func TestTheTokenRequestAsksForTheCloudsResource(t *testing.T) {
	tests := []struct {
		cloud    string
		resource string
	}{
		{"public", "https://api.partnercenter.microsoft.com"},
		{"usgov", "https://api.partnercenter.microsoft.com"},
		{"china", "https://partner.partnercenterapi.microsoftonline.cn"},
	}
	for _, tt := range tests {
		t.Run(tt.cloud, func(t *testing.T) {
			forms := make(chan url.Values, 1)
			sim := newSim(pcsim.Config{})
			base, hc := startSim(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.Contains(r.URL.Path, "/oauth2/") {
					body, _ := io.ReadAll(r.Body)
					form, _ := url.ParseQuery(string(body))
					select {
					case forms <- form:
					default:
					}
					require.Equal(t, "/"+tenant+"/oauth2/token", r.URL.Path)
					require.Equal(t, "application/x-www-form-urlencoded", r.Header.Get("Content-Type"))
					r.Body = io.NopCloser(bytes.NewReader(body))
				}
				sim.ServeHTTP(w, r)
			}))
			c := newClient(t, base, hc, func(cfg *pc.Config) { cfg.Cloud = tt.cloud })
			_, err := c.TokenTenantID(context.Background())
			require.NoError(t, err)
			form := <-forms
			require.Equal(t, "client_credentials", form.Get("grant_type"))
			require.Equal(t, clientID, form.Get("client_id"))
			require.Equal(t, secret, form.Get("client_secret"))
			require.Equal(t, tt.resource, form.Get("resource"))
		})
	}
}

func TestTokenAnswersWithNumbersOrWithoutATokenAreHandled(t *testing.T) {
	tests := []struct {
		name    string
		answer  string
		wantErr string
	}{
		{"expires_in as a number is accepted", `{"token_type":"Bearer","expires_in":3599,"access_token":"tok-1"}`, ""},
		{"expires_on alone is accepted", `{"token_type":"Bearer","expires_on":"4102444800","access_token":"tok-1"}`, ""},
		{"an answer without access_token is an error", `{"token_type":"Bearer","expires_in":"3599"}`, "without access_token"},
		{"an undecodable answer is an error", `<html>`, "undecodable token answer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tokens atomic.Int64
			base, hc := startSim(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.Contains(r.URL.Path, "/oauth2/") {
					tokens.Add(1)
					_, _ = io.WriteString(w, tt.answer)
					return
				}
				if r.Header.Get("Authorization") != "Bearer tok-1" {
					w.WriteHeader(http.StatusUnauthorized)
					return
				}
				_, _ = io.WriteString(w, `{"items":[{"id":"a"}]}`)
			}))
			c := newClient(t, base, hc, nil)
			for range 2 {
				_, err := c.ListCustomers(context.Background())
				if tt.wantErr != "" {
					require.ErrorContains(t, err, tt.wantErr)
					require.Contains(t, err.Error(), "fetch token")
					return
				}
				require.NoError(t, err)
			}
			require.Equal(t, int64(1), tokens.Load(), "the token was not cached")
		})
	}
}

func TestATransientTokenFailureIsRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := newSim(pcsim.Config{})
		addCustomers(t, sim, 1)
		url, hc, stop := startPipe(sim)
		defer stop()
		c := newClient(t, url, hc, nil)
		sim.FailNext(http.MethodPost, "/"+tenant+"/oauth2/token", http.StatusServiceUnavailable, 2)

		_, err := c.ListCustomers(context.Background())
		require.NoError(t, err)
		require.Equal(t, int64(3), c.Stats().TokenFetches)
	})
}
