package cli

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tipreaper/tipreaper/internal/pcsim"
)

const testRefreshToken = "rt-initial-never-printed-0815"

func testTokenKey(b byte) string {
	return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, 32))
}

func TestSealedTokensOpenOnlyWithTheirKeyAndAccount(t *testing.T) {
	key, other := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	a, err := sealToken(key, "tip", testRefreshToken)
	require.NoError(t, err)
	b, err := sealToken(key, "tip", testRefreshToken)
	require.NoError(t, err)
	require.NotEqual(t, a, b, "a random nonce: the same token seals differently each time")
	require.NotContains(t, string(a), testRefreshToken)

	got, err := openToken(key, "tip", a)
	require.NoError(t, err)
	require.Equal(t, testRefreshToken, got)

	tampered := bytes.Clone(a)
	tampered[len(tampered)-1] ^= 1
	for name, open := range map[string]func() (string, error){
		"another key":     func() (string, error) { return openToken(other, "tip", a) },
		"another account": func() (string, error) { return openToken(key, "other", a) },
		"altered bytes":   func() (string, error) { return openToken(key, "tip", tampered) },
		"too short":       func() (string, error) { return openToken(key, "tip", a[:10]) },
	} {
		_, err := open()
		require.ErrorIs(t, err, errTokenKey, name)
		require.NotContains(t, err.Error(), testRefreshToken, name)
	}
	_, err = sealToken(key[:16], "tip", testRefreshToken)
	require.Error(t, err, "AES-256 only")
}

// tokenSandbox is a simulator with the rotating refresh-token grant, served
// through a recorder of every token the token endpoint hands out.
type tokenSandbox struct {
	*sandbox
	mu     sync.Mutex
	issued []string // access and refresh tokens, in order
}

func newTokenSandbox(t *testing.T) *tokenSandbox {
	t.Helper()
	sim := pcsim.New(pcsim.Config{
		PartnerTenantID: testTenant,
		ClientID:        testClientID,
		ClientSecret:    testSecret,
		CancelDelay:     [2]time.Duration{20 * time.Millisecond, 80 * time.Millisecond},
		Seed:            1,
		RefreshToken:    testRefreshToken,
	})
	for _, c := range testSeed(time.Now(), false) {
		_, err := sim.AddCustomer(c)
		require.NoError(t, err)
	}
	ts := &tokenSandbox{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		sim.ServeHTTP(rec, r)
		var ans struct {
			AccessToken  string `json:"access_token"`
			RefreshToken string `json:"refresh_token"`
		}
		if json.Unmarshal(rec.Body.Bytes(), &ans) == nil {
			ts.mu.Lock()
			for _, tok := range []string{ans.AccessToken, ans.RefreshToken} {
				if tok != "" {
					ts.issued = append(ts.issued, tok)
				}
			}
			ts.mu.Unlock()
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	}))
	t.Cleanup(srv.Close)
	ts.sandbox = &sandbox{sim: sim, url: srv.URL}
	return ts
}

func (ts *tokenSandbox) tokens() []string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]string(nil), ts.issued...)
}

// writeTokenConfig writes a config whose account signs in with the refresh
// token (App+User) and keeps rotated ones sealed with token_key, all from the
// environment.
func writeTokenConfig(t *testing.T, sb *sandbox, key string) string {
	t.Helper()
	t.Setenv("REAPER_TEST_REFRESH", testRefreshToken)
	t.Setenv("REAPER_TEST_TOKEN_KEY", key)
	path := writeConfig(t, sb, "token_key: ${REAPER_TEST_TOKEN_KEY}\n")
	text, err := os.ReadFile(path)
	require.NoError(t, err)
	out := strings.Replace(string(text), "    client_secret: ${REAPER_TEST_SECRET}\n",
		"    client_secret: ${REAPER_TEST_SECRET}\n    refresh_token: ${REAPER_TEST_REFRESH}\n", 1)
	require.NotEqual(t, string(text), out)
	require.NoError(t, os.WriteFile(path, []byte(out), 0o600))
	return path
}

func TestARotatedRefreshTokenIsKeptSoANewProcessKeepsAccess(t *testing.T) {
	sb := newTokenSandbox(t)
	path := writeTokenConfig(t, sb.sandbox, testTokenKey(7))

	r := reaper(t, "once", "--config", path)
	require.Equal(t, exitOK, r.code, r)
	require.False(t, present(sb.sim)[idOld1], "the first pass deleted with App+User credentials")
	require.NotEqual(t, testRefreshToken, sb.sim.RefreshToken(), "the grant rotated: the config's token is void")

	// A new process: a new store handle on the same state_dir, the config's token void. Without the kept
	// token it would be refused (invalid_grant) and the account stopped.
	before := len(sb.tokens())
	r = reaper(t, "once", "--config", path)
	require.Equal(t, exitOK, r.code, r)
	require.Greater(t, len(sb.tokens()), before, "the second process signed in again")

	// And the one after it, from what the second kept.
	r = reaper(t, "once", "--dry-run", "--config", path)
	require.Equal(t, exitOK, r.code, r)
}

func TestAKeptRefreshTokenUnderAnotherKeyIsAClearErrorNamingTheAccount(t *testing.T) {
	sb := newTokenSandbox(t)
	path := writeTokenConfig(t, sb.sandbox, testTokenKey(7))
	r := reaper(t, "once", "--dry-run", "--config", path)
	require.Equal(t, exitOK, r.code, r)

	t.Setenv("REAPER_TEST_TOKEN_KEY", testTokenKey(8))
	r = reaper(t, "once", "--dry-run", "--config", path)
	require.NotEqual(t, exitOK, r.code, r)
	out := r.stdout + r.stderr
	require.Contains(t, out, "account tip", r)
	require.Contains(t, out, "does not decrypt with token_key", r)
	for _, tok := range append(sb.tokens(), testRefreshToken, testSecret) {
		require.NotContains(t, out, tok)
	}
}

func TestNoSecretOrTokenReachesAnyOutputOfALivePass(t *testing.T) {
	sb := newTokenSandbox(t)
	path := writeTokenConfig(t, sb.sandbox, testTokenKey(7))
	var outputs []string
	for _, args := range [][]string{
		{"once", "--log-level", "debug", "--config", path},
		{"once", "--log-level", "debug", "--log-format", "json", "--json", "--config", path},
		{"once", "--dry-run", "--log-level", "debug", "--json", "--config", path},
		{"why", idGolden, "--log-level", "debug", "--config", path},
	} {
		r := reaper(t, args...)
		outputs = append(outputs, strings.Join(args, " ")+" stdout:\n"+r.stdout, strings.Join(args, " ")+" stderr:\n"+r.stderr)
	}
	require.False(t, present(sb.sim)[idOld1], "a live pass ran: %v", outputs)
	state := filepath.Join(filepath.Dir(path), "state")
	files := 0
	require.NoError(t, filepath.WalkDir(state, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files++
		outputs = append(outputs, p+":\n"+string(b))
		return nil
	}))
	require.NotZero(t, files, "the SQLite database is read")

	secrets := append([]string{testSecret, testRefreshToken}, sb.tokens()...)
	require.Greater(t, len(secrets), 4, "access and rotated refresh tokens were issued")
	for _, out := range outputs {
		for _, s := range secrets {
			require.NotContains(t, out, s, "a secret or token in %.80s", out)
		}
	}
}
