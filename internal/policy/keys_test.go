package policy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// writeFile writes content to name in dir with mode 0600 and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

// certPair returns a self-signed certificate and its key, PEM-encoded.
func certPair(t *testing.T) (certPEM, keyPEM string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "reaper"},
		NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1<<32, 0)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
}

// accountWith is account with its client_secret line replaced by cred
// (lines starting at line 5, indented for the account).
func accountWith(cred string) string {
	return strings.Replace(account, "    client_secret: s\n", cred, 1)
}

func parseIn(dir, src string, vars map[string]string) (*Config, error) {
	return Parse(filepath.Join(dir, "reaper.yaml"), []byte(src), env(vars))
}

func TestNewKeysDecode(t *testing.T) {
	key := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", 32)))
	cfg := parse(t, account+`token_key: `+key+`
http:
  listen: 127.0.0.1:9464
notify:
  webhook_url: ${HOOK}
  quota_warn: 0.8
limits:
  max_retry_wait: 30s
  max_listed: 200
  allow_above_documented_rate: true
`, map[string]string{"HOOK": "https://hooks.example.com/T0/B0/xyz"})
	require.Equal(t, "127.0.0.1:9464", cfg.HTTP.Listen)
	require.Equal(t, Notify{WebhookURL: "https://hooks.example.com/T0/B0/xyz", QuotaWarn: 0.8}, cfg.Notify)
	require.Equal(t, Duration(30*time.Second), cfg.Limits.MaxRetryWait)
	require.Equal(t, 200, cfg.Limits.MaxListed)
	require.True(t, cfg.Limits.AllowAboveDocumentedRate)
	require.Equal(t, Secret(strings.Repeat("k", 32)), cfg.TokenKey)
}

func TestSecretFilesAreReadTrimmedAndRelativeToTheConfig(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "secret", "s3cret\n")
	writeFile(t, dir, "token", "rt-1\r\n")
	writeFile(t, dir, "tokenkey", base64.StdEncoding.EncodeToString([]byte(strings.Repeat("x", 32)))+"\n")
	cfg, err := parseIn(dir, accountWith("    client_secret_file: secret\n    refresh_token_file: ${D}/token\n")+"token_key_file: tokenkey\n",
		map[string]string{"D": dir})
	require.NoError(t, err)
	a := cfg.Accounts[0]
	require.Equal(t, CredentialRefreshToken, a.Credential)
	require.Equal(t, Secret("s3cret"), a.ClientSecret)
	require.Equal(t, Secret("rt-1"), a.RefreshToken)
	require.Equal(t, Secret(strings.Repeat("x", 32)), cfg.TokenKey)

	cfg, err = parseIn(dir, accountWith("    client_secret_file: "+dir+"/secret\n"), nil)
	require.NoError(t, err)
	require.Equal(t, CredentialSecret, cfg.Accounts[0].Credential)
	require.Equal(t, Secret("s3cret"), cfg.Accounts[0].ClientSecret)
}

func TestACertificateCredentialIsReadAndChecked(t *testing.T) {
	dir := t.TempDir()
	cert, key := certPair(t)
	_, otherKey := certPair(t)
	writeFile(t, dir, "cert.pem", cert)
	writeFile(t, dir, "key.pem", key)
	writeFile(t, dir, "other.pem", otherKey)

	cfg, err := parseIn(dir, accountWith("    client_certificate_file: cert.pem\n    client_key_file: key.pem\n"), nil)
	require.NoError(t, err)
	a := cfg.Accounts[0]
	require.Equal(t, CredentialCertificate, a.Credential)
	require.Equal(t, strings.TrimSuffix(cert, "\n"), string(a.ClientCertificate))
	require.Equal(t, Secret(strings.TrimSuffix(key, "\n")), a.ClientKey)
	require.Equal(t, Secret(""), a.ClientSecret)

	_, err = parseIn(dir, accountWith("    client_certificate_file: cert.pem\n    client_key_file: other.pem\n"), nil)
	require.ErrorContains(t, err, "reaper.yaml:5: accounts[0].client_certificate_file: "+dir+"/cert.pem and client_key_file do not hold a PEM certificate and its private key: private key does not match public key")
	require.NotContains(t, err.Error(), "PRIVATE KEY")
}

func TestCredentialProblems(t *testing.T) {
	dir := t.TempDir()
	cert, key := certPair(t)
	writeFile(t, dir, "cert.pem", cert)
	writeFile(t, dir, "key.pem", key)
	writeFile(t, dir, "empty", "\n")
	writeFile(t, dir, "big", strings.Repeat("x", 64<<10+1))
	const tk = "token_key: QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=\n" // 32 × "A"
	tests := []struct {
		name, src, want string
	}{
		{"no credential at all", accountWith(""),
			"2: accounts[0].client_secret: is required (or client_secret_file, or client_certificate_file with client_key_file)"},
		{"a secret and a secret file", accountWith("    client_secret: s\n    client_secret_file: x\n"),
			"6: accounts[0].client_secret_file: set either client_secret or client_secret_file, not both"},
		{"a secret file that does not exist", accountWith("    client_secret_file: nope\n"),
			"5: accounts[0].client_secret_file: cannot read " + dir + "/nope: no such file"},
		{"a secret file that is empty", accountWith("    client_secret_file: empty\n"),
			"5: accounts[0].client_secret_file: " + dir + "/empty is empty"},
		{"a secret file that is a directory", accountWith("    client_secret_file: .\n"),
			"5: accounts[0].client_secret_file: cannot read " + dir + ": it is a directory, not a regular file"},
		{"a secret file that is a device", accountWith("    client_secret_file: /dev/zero\n"),
			"5: accounts[0].client_secret_file: cannot read /dev/zero: it is a device, not a regular file"},
		{"a secret file over the cap", accountWith("    client_secret_file: big\n"),
			"5: accounts[0].client_secret_file: cannot read " + dir + "/big: it is larger than 64 KiB"},
		{"a secret file named by nothing", accountWith("    client_secret_file: ''\n"),
			"5: accounts[0].client_secret_file: must name a file"},
		{"a null secret", accountWith("    client_secret: ~\n"),
			"5: accounts[0].client_secret: must not be empty"},
		{"a certificate without its key", accountWith("    client_certificate_file: cert.pem\n"),
			"5: accounts[0].client_key_file: is required with client_certificate_file"},
		{"a key without its certificate", accountWith("    client_key_file: key.pem\n"),
			"5: accounts[0].client_certificate_file: is required with client_key_file"},
		{"a certificate and a secret", account + "    client_certificate_file: cert.pem\n    client_key_file: key.pem\n",
			"5: accounts[0].client_secret: is set together with client_certificate_file: an account takes one credential"},
		{"a certificate and a refresh token", accountWith("    refresh_token: r\n    client_certificate_file: cert.pem\n    client_key_file: key.pem\n") + tk,
			"5: accounts[0].refresh_token: is set together with client_certificate_file: an account takes one credential"},
		{"a file that is no certificate", accountWith("    client_certificate_file: key.pem\n    client_key_file: key.pem\n"),
			"5: accounts[0].client_certificate_file: " + dir + "/key.pem and client_key_file do not hold a PEM certificate and its private key"},
		{"a refresh token without the app secret", accountWith("    refresh_token: r\n") + tk,
			"5: accounts[0].client_secret: is required with refresh_token: the refresh-token grant authenticates the app with its secret too"},
		{"a refresh token without a token key", account + "    refresh_token: r\n",
			"6: accounts[0].refresh_token: needs token_key or token_key_file at the top level"},
		{"a token key that is not base64 of 32 bytes", account + "token_key: c2hvcnQ=\n",
			"6: token_key: must be 32 random bytes in base64 (make one with: openssl rand -base64 32)"},
		{"a token key and a token key file", account + tk + "token_key_file: x\n",
			"7: token_key_file: set either token_key or token_key_file, not both"},
		{"a listen address without a port", account + "http:\n  listen: localhost\n",
			`7: http.listen: "localhost" is not host:port`},
		{"a listen port out of range", account + "http:\n  listen: ':70000'\n",
			`7: http.listen: ":70000" needs a port number from 1 to 65535`},
		{"a webhook over plain http to a remote host", account + "notify:\n  webhook_url: http://hooks.example.com/T/x\n",
			"7: notify.webhook_url: must use https://"},
		{"a webhook that is not a URL", account + "notify:\n  webhook_url: hooks\n",
			"7: notify.webhook_url: is not an absolute URL"},
		{"a quota warning above one", account + "notify:\n  quota_warn: 90\n",
			`7: notify.quota_warn: "90" must be a number greater than 0 and at most 1`},
		{"an unknown notify key", account + "notify:\n  webhook: x\n",
			"7: notify.webhook: unknown field (known: webhook_url, quota_warn)"},
		{"max_listed of zero", account + "limits:\n  max_listed: 0\n",
			`7: limits.max_listed: "0" must be a whole number greater than 0`},
		{"allow_above_documented_rate not a boolean", account + "limits:\n  allow_above_documented_rate: sure\n",
			`7: limits.allow_above_documented_rate: "sure" is not true or false`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseIn(dir, tt.src, nil)
			var ps Problems
			require.ErrorAs(t, err, &ps)
			require.Len(t, ps, 1, "problems:\n%v", ps)
			got := fmt.Sprintf("%d: %s: %s", ps[0].Line, ps[0].Field, ps[0].Message)
			require.True(t, strings.HasPrefix(got, tt.want), "got  %q\nwant %q...", got, tt.want)
		})
	}
}

func TestNewSecretsNeverAppearInProblems(t *testing.T) {
	const secret = "Hunter2Secret"
	dir := t.TempDir()
	writeFile(t, dir, "bad.pem", "-----BEGIN PRIVATE KEY-----\n"+secret+"\n-----END PRIVATE KEY-----\n")
	tests := []struct{ name, src string }{
		{"a webhook over http", account + "notify:\n  webhook_url: http://hooks.example.com/" + secret + "\n"},
		{"a webhook that does not parse", account + "notify:\n  webhook_url: 'https://h/%zz" + secret + "'\n"},
		{"a token key that is not base64", account + "token_key: " + secret + "\n"},
		{"a key file that is not a key", accountWith("    client_certificate_file: bad.pem\n    client_key_file: bad.pem\n")},
		{"a secret and a secret file", accountWith("    client_secret: " + secret + "\n    client_secret_file: bad.pem\n")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseIn(dir, tt.src, nil)
			require.Error(t, err)
			require.NotContains(t, err.Error(), secret)
			require.NotContains(t, fmt.Sprintf("%+v %#v", err, err), secret)
		})
	}
}

func TestLoadWarnsAboutLiteralSecretsInAFileOthersCanRead(t *testing.T) {
	dir := t.TempDir()
	literal := account + "database:\n  url: postgres://reaper:pw@db/reaper\nnotify:\n  webhook_url: https://hooks.example.com/T/B/x\n"
	t.Setenv("REAPER_POLICY_TEST_SECRET", "from-env")
	t.Setenv("REAPER_POLICY_TEST_PW", "from-env")
	fromEnv := accountWith("    client_secret: ${REAPER_POLICY_TEST_SECRET}\n")
	tests := []struct {
		name    string
		src     string
		mode    os.FileMode
		warning []string
	}{
		{"literal secrets in a file others can read", literal, 0o644, []string{
			"5: accounts[0].client_secret", "7: database.url", "9: notify.webhook_url"}},
		{"literal secrets in a file the group can read", literal, 0o640, []string{
			"5: accounts[0].client_secret", "7: database.url", "9: notify.webhook_url"}},
		{"literal secrets in a private file", literal, 0o600, nil},
		{"secrets from the environment in a file others can read", fromEnv, 0o644, nil},
		{"a secret as the default of a variable in a file others can read", accountWith("    client_secret: ${REAPER_POLICY_TEST_UNSET:-s3cret}\n"), 0o644,
			[]string{"5: accounts[0].client_secret"}},
		{"a database password from the environment", fromEnv + "database:\n  url: postgres://reaper:${REAPER_POLICY_TEST_PW}@db/reaper\n", 0o644, nil},
		{"a database url without a password", fromEnv + "database:\n  url: postgres://reaper@db/reaper\n", 0o644, nil},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, fmt.Sprintf("c%d.yaml", i))
			require.NoError(t, os.WriteFile(p, []byte(tt.src), 0o600))
			require.NoError(t, os.Chmod(p, tt.mode))
			cfg, err := Load(p)
			require.NoError(t, err)
			var got []string
			for _, w := range cfg.Warnings {
				got = append(got, fmt.Sprintf("%d: %s", w.Line, w.Field))
				require.Contains(t, w.String(), fmt.Sprintf("holds a secret as written and the file is readable by group or others (mode %04o): chmod 600 %s", tt.mode, p))
				require.NotContains(t, w.String(), "pw@")
			}
			require.Equal(t, tt.warning, got)
		})
	}
}

func TestLoadRefusesWhatIsNotASmallRegularFile(t *testing.T) {
	dir := t.TempDir()
	big := writeFile(t, dir, "big.yaml", account+"#"+strings.Repeat("x", 1<<20)+"\n")
	tests := []struct{ name, path, want string }{
		{"a device that never ends", "/dev/zero", "/dev/zero: is a device, not a regular file"},
		{"a directory", dir, dir + ": is a directory, not a regular file"},
		{"a file over 1 MiB", big, big + ": is larger than 1 MiB, the limit for this file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(tt.path)
			require.EqualError(t, err, tt.want)
			var ps Problems
			require.ErrorAs(t, err, &ps)
		})
	}
}
