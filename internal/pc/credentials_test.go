package pc_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tipreaper/tipreaper/internal/pc"
	"github.com/tipreaper/tipreaper/internal/pcsim"
)

// newCert returns a self-signed certificate and its key, PEM-encoded.
func newCert(t *testing.T) (cert *x509.Certificate, certPEM, keyPEM []byte) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tipreaper"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err = x509.ParseCertificate(der)
	require.NoError(t, err)
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	return cert, certPEM, keyPEM
}

// formRecorder keeps every value of every token request form.
type formRecorder struct {
	mu     sync.Mutex
	values []string
}

func (f *formRecorder) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/oauth2/") && r.ParseForm() == nil {
			f.mu.Lock()
			for k, vs := range r.PostForm {
				if k != "grant_type" && k != "client_id" && k != "resource" && k != "client_assertion_type" {
					f.values = append(f.values, vs...)
				}
			}
			f.mu.Unlock()
		}
		h.ServeHTTP(w, r)
	})
}

func (f *formRecorder) all() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.values...)
}

func TestCertificateCredentialsSignAClientAssertionTheServerVerifies(t *testing.T) {
	cert, certPEM, keyPEM := newCert(t)
	_, otherCertPEM, otherKeyPEM := newCert(t)
	tests := []struct {
		name            string
		certPEM, keyPEM []byte
		ok              bool
	}{
		{"the configured certificate and its key", certPEM, keyPEM, true},
		{"another certificate and its key", otherCertPEM, otherKeyPEM, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim := newSim(pcsim.Config{ClientCertificate: cert})
			addCustomers(t, sim, 1)
			url, hc := startSim(t, sim)
			c := newClient(t, url, hc, func(cfg *pc.Config) {
				cfg.ClientSecret = ""
				cfg.ClientCertificate, cfg.ClientKey = tt.certPEM, tt.keyPEM
			})
			got, err := c.ListCustomers(context.Background())
			if tt.ok {
				require.NoError(t, err)
				require.Len(t, got, 1)
				return
			}
			require.True(t, pc.IsUnauthorized(err), "got %v", err)
			require.Contains(t, err.Error(), "700027")
		})
	}
}

func TestACertificateAndAKeyThatDoNotMatchAreRefused(t *testing.T) {
	_, certPEM, _ := newCert(t)
	_, _, otherKey := newCert(t)
	_, err := pc.New(pc.Config{TenantID: tenant, ClientCertificate: certPEM, ClientKey: otherKey})
	require.ErrorContains(t, err, "does not match the client certificate")
	require.NotContains(t, err.Error(), "PRIVATE KEY")
	_, err = pc.New(pc.Config{TenantID: tenant, ClientCertificate: certPEM, ClientKey: []byte("garbage")})
	require.ErrorContains(t, err, "client key")
}

func TestARotatedRefreshTokenIsUsedNextAndHandedToTheCaller(t *testing.T) {
	sim := newSim(pcsim.Config{RefreshToken: "first-refresh-token-0"})
	addCustomers(t, sim, 1)
	url, hc := startSim(t, sim)
	var (
		mu    sync.Mutex
		saved []string
	)
	c := newClient(t, url, hc, func(cfg *pc.Config) {
		cfg.RefreshToken = "first-refresh-token-0"
		cfg.OnRefreshToken = func(_ context.Context, tok string) error {
			mu.Lock()
			defer mu.Unlock()
			saved = append(saved, tok)
			return nil
		}
	})
	ctx := context.Background()
	_, err := c.ListCustomers(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{sim.RefreshToken()}, saved, "the caller was not given the new refresh token")

	sim.ExpireTokens() // the next call gets 401 and refreshes: with the rotated token, the first is void
	_, err = c.ListCustomers(ctx)
	require.NoError(t, err)
	require.Len(t, saved, 2)
	require.Equal(t, sim.RefreshToken(), saved[1])
	require.NotEqual(t, saved[0], saved[1])
}

func TestAFailureToKeepTheRotatedTokenIsLoggedAndTheCallGoesOn(t *testing.T) {
	sim := newSim(pcsim.Config{RefreshToken: "first-refresh-token-0"})
	url, hc := startSim(t, sim)
	var logs syncBuffer
	c := newClient(t, url, hc, func(cfg *pc.Config) {
		cfg.RefreshToken = "first-refresh-token-0"
		cfg.Logger = debugLogger(&logs)
		cfg.OnRefreshToken = func(context.Context, string) error { return errors.New("disk full") }
	})
	_, err := c.ListCustomers(context.Background())
	require.NoError(t, err)
	require.Contains(t, logs.String(), "rotated refresh token could not be kept")
	require.Contains(t, logs.String(), "disk full")
	require.NotContains(t, logs.String(), sim.RefreshToken())
}

// TestCredentialsNeverReachErrorsOrLogs drives every credential form through
// success and refusal with debug logs on, then looks for every secret value
// sent to the token endpoint (secret, refresh tokens, client assertions), the
// key and every access token in the logs and the errors.
func TestCredentialsNeverReachErrorsOrLogs(t *testing.T) {
	cert, certPEM, keyPEM := newCert(t)
	_, otherCertPEM, otherKeyPEM := newCert(t)
	var forms formRecorder
	var logs syncBuffer
	var errs []string
	rec := &tokenRecorder{base: http.DefaultTransport}
	run := func(simCfg pcsim.Config, edit func(*pc.Config)) {
		sim := newSim(simCfg)
		addCustomers(t, sim, 1)
		url, _ := startSim(t, forms.wrap(sim))
		hc := &http.Client{Transport: rec}
		c := newClient(t, url, hc, func(cfg *pc.Config) {
			cfg.Logger = debugLogger(&logs)
			cfg.MaxRetries = -1
			edit(cfg)
		})
		ctx := context.Background()
		if _, err := c.ListCustomers(ctx); err != nil {
			errs = append(errs, err.Error())
		}
		sim.ExpireTokens()
		if _, err := c.ListCustomers(ctx); err != nil {
			errs = append(errs, err.Error())
		}
		hc.CloseIdleConnections()
	}
	run(pcsim.Config{RefreshToken: "refresh-token-AAAA-0001"}, func(cfg *pc.Config) {
		cfg.RefreshToken = "refresh-token-AAAA-0001"
	})
	run(pcsim.Config{RefreshToken: "refresh-token-BBBB-0001"}, func(cfg *pc.Config) {
		cfg.RefreshToken = "refresh-token-wrong-0001" // refused: invalid_grant
	})
	run(pcsim.Config{ClientCertificate: cert}, func(cfg *pc.Config) {
		cfg.ClientSecret = ""
		cfg.ClientCertificate, cfg.ClientKey = certPEM, keyPEM
	})
	run(pcsim.Config{ClientCertificate: cert}, func(cfg *pc.Config) {
		cfg.ClientSecret = ""
		cfg.ClientCertificate, cfg.ClientKey = otherCertPEM, otherKeyPEM // refused
	})

	secrets := append(forms.all(), rec.seen()...)
	require.GreaterOrEqual(t, len(secrets), 8, "the test saw too few secrets to mean anything")
	require.NotEmpty(t, errs, "the refusals produced no error")
	out := logs.String() + "\n" + strings.Join(errs, "\n")
	require.Contains(t, out, "invalid_grant")
	for _, s := range secrets {
		if len(s) >= 8 {
			require.NotContains(t, out, s)
		}
	}
	require.NotContains(t, out, "PRIVATE KEY")
	require.NotContains(t, out, string(keyPEM[40:80]))
}
