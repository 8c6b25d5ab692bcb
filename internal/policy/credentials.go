package policy

import (
	"crypto/tls"
	"encoding/base64"
	"net"
	"net/url"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// tokenKeySize is the refresh-token encryption key's length: AES-256.
const tokenKeySize = 32

// credentials decodes an account's credential keys. Exactly one form is
// allowed: a client secret; a certificate and its key; or a refresh token
// together with the client secret (App+User). Each secret may be written in
// the file (better as ${VAR}) or read from a *_file.
func (d *decoder) credentials(n *yaml.Node, m map[string]*yaml.Node, path string, a *Account) {
	secret, secretAt := d.secretPair(m, path, "client_secret", "client_secret_file")
	token, tokenAt := d.secretPair(m, path, "refresh_token", "refresh_token_file")
	certNode, keyNode := m["client_certificate_file"], m["client_key_file"]
	if isNull(resolve(certNode)) {
		certNode = nil
	}
	if isNull(resolve(keyNode)) {
		keyNode = nil
	}
	const forms = "an account takes one credential: client_secret (or client_secret_file); client_certificate_file with client_key_file; or refresh_token (or refresh_token_file) with client_secret"

	switch {
	case certNode != nil || keyNode != nil:
		a.Credential = CredentialCertificate
		at, field := certNode, "client_certificate_file"
		if at == nil {
			at, field = keyNode, "client_key_file"
		}
		switch {
		case secretAt != nil:
			d.addf(secretAt, path+"."+resolveKey(m, "client_secret", "client_secret_file"), "is set together with %s: %s", field, forms)
			return
		case tokenAt != nil:
			d.addf(tokenAt, path+"."+resolveKey(m, "refresh_token", "refresh_token_file"), "is set together with %s: %s", field, forms)
			return
		case certNode == nil:
			d.addf(keyNode, path+".client_certificate_file", "is required with client_key_file (the certificate whose key it is)")
			return
		case keyNode == nil:
			d.addf(certNode, path+".client_key_file", "is required with client_certificate_file (the certificate's private key)")
			return
		}
		certPath, ok1 := d.filePath(certNode, path+".client_certificate_file")
		keyPath, ok2 := d.filePath(keyNode, path+".client_key_file")
		if !ok1 || !ok2 {
			return
		}
		cert, certPath, msg := readSecretFile(d.file, certPath)
		if msg != "" {
			d.addf(certNode, path+".client_certificate_file", "%s", msg)
			return
		}
		key, _, msg := readSecretFile(d.file, keyPath)
		if msg != "" {
			d.addf(keyNode, path+".client_key_file", "%s", msg)
			return
		}
		// tls.X509KeyPair's errors describe the PEM structure, never the key.
		if _, err := tls.X509KeyPair([]byte(cert), []byte(key)); err != nil {
			d.addf(certNode, path+".client_certificate_file", "%s and client_key_file do not hold a PEM certificate and its private key: %s",
				certPath, strings.TrimPrefix(err.Error(), "tls: "))
			return
		}
		a.ClientCertificate, a.ClientKey = []byte(cert), Secret(key)
	case tokenAt != nil:
		a.Credential = CredentialRefreshToken
		if secretAt == nil {
			if _, given := m["client_secret"]; !given {
				d.addf(tokenAt, path+".client_secret", "is required with %s: the refresh-token grant authenticates the app with its secret too",
					resolveKey(m, "refresh_token", "refresh_token_file"))
			}
			return
		}
		a.ClientSecret, a.RefreshToken = secret, token
	case secretAt != nil:
		a.Credential = CredentialSecret
		a.ClientSecret = secret
	default:
		// Nothing usable: report where. A key present but empty or broken has
		// its own problem already.
		if _, given := m["client_secret"]; given {
			return
		}
		if _, given := m["client_secret_file"]; given {
			return
		}
		if _, given := m["refresh_token"]; given {
			return
		}
		if _, given := m["refresh_token_file"]; given {
			return
		}
		d.addf(resolve(n), path+".client_secret", "is required (or client_secret_file, or client_certificate_file with client_key_file)")
	}
}

// secretPair reads a secret written either as key (a value, better ${VAR})
// or as key_file (a file holding it). It returns the node it came from, nil
// when neither is set usably (a problem is recorded when one is set wrongly).
func (d *decoder) secretPair(m map[string]*yaml.Node, path, key, fileKey string) (Secret, *yaml.Node) {
	v, f := m[key], m[fileKey]
	if v != nil && f != nil {
		d.addf(f, join(path, fileKey), "set either %s or %s, not both", key, fileKey)
		return "", nil
	}
	switch {
	case v != nil:
		if isNull(resolve(v)) {
			d.addf(v, join(path, key), "must not be empty")
			return "", nil
		}
		s, ok := d.scalar(v, join(path, key))
		if !ok {
			return "", nil
		}
		if s == "" {
			d.addf(v, join(path, key), "must not be empty")
			return "", nil
		}
		d.literal(v, join(path, key))
		return Secret(s), v
	case f != nil:
		p, ok := d.filePath(f, join(path, fileKey))
		if !ok {
			return "", nil
		}
		s, p, msg := readSecretFile(d.file, p)
		if msg != "" {
			d.addf(f, join(path, fileKey), "%s", msg)
			return "", nil
		}
		if strings.TrimSpace(s) == "" {
			d.addf(f, join(path, fileKey), "%s is empty", p)
			return "", nil
		}
		return Secret(s), f
	}
	return "", nil
}

// filePath reads a required file name.
func (d *decoder) filePath(n *yaml.Node, path string) (string, bool) {
	s, ok := d.scalar(n, path)
	if !ok {
		return "", false
	}
	if s == "" {
		d.addf(n, path, "must name a file")
		return "", false
	}
	return s, true
}

// literal records that n holds a secret written in the file itself, for
// Load's warning about a file others can read: a value without any ${VAR},
// or one whose ${VAR:-default} has a default (the default is in the file).
func (d *decoder) literal(n *yaml.Node, path string) {
	if fromEnv(n) && !hasDefault(resolve(n).Value) {
		return
	}
	d.literals = append(d.literals, Problem{File: d.file, Line: resolve(n).Line, Field: path})
}

// hasDefault reports whether a raw value has a ${VAR:-default} with a
// non-empty default.
func hasDefault(raw string) bool {
	for rest := raw; ; {
		i := strings.Index(rest, "${")
		if i < 0 {
			return false
		}
		rest = rest[i+2:]
		end := strings.IndexByte(rest, '}')
		if end < 0 {
			return false
		}
		if _, def, ok := strings.Cut(rest[:end], ":-"); ok && def != "" {
			return true
		}
		rest = rest[end+1:]
	}
}

// resolveKey returns the first of keys present in m, for messages about
// either spelling of a setting.
func resolveKey(m map[string]*yaml.Node, keys ...string) string {
	for _, k := range keys {
		if m[k] != nil {
			return k
		}
	}
	return keys[0]
}

// tokenKey decodes token_key / token_key_file into cfg.TokenKey. It returns
// the node that set it (nil when unset or broken), so that accounts needing
// the key are only told it is missing when it is.
func (d *decoder) tokenKey(m map[string]*yaml.Node, cfg *Config) *yaml.Node {
	s, at := d.secretPair(m, "", "token_key", "token_key_file")
	if at == nil {
		if m["token_key"] != nil || m["token_key_file"] != nil {
			return resolveNode(m, "token_key", "token_key_file") // a problem is already recorded
		}
		return nil
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s.Reveal()))
	if err != nil || len(key) != tokenKeySize {
		d.addf(at, resolveKey(m, "token_key", "token_key_file"),
			"must be %d random bytes in base64 (make one with: openssl rand -base64 %d)", tokenKeySize, tokenKeySize)
		return at
	}
	cfg.TokenKey = Secret(key)
	return at
}

func resolveNode(m map[string]*yaml.Node, keys ...string) *yaml.Node {
	return m[resolveKey(m, keys...)]
}

func (d *decoder) http(n *yaml.Node, h *HTTP) {
	m := d.fields(n, "http", httpKeys...)
	if v := m["listen"]; v != nil {
		if s, ok := d.scalar(v, "http.listen"); ok && s != "" {
			if msg := checkListen(s); msg != "" {
				d.addf(v, "http.listen", "%s %s", show(v, s), msg)
				return
			}
			h.Listen = s
		}
	}
}

// checkListen accepts host:port with a numeric port, as net.Listen takes it.
func checkListen(s string) string {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return "is not host:port (e.g. 127.0.0.1:9464, or :9464 for every interface)"
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return "needs a port number from 1 to 65535"
	}
	return ""
}

func (d *decoder) notify(n *yaml.Node, nt *Notify) {
	m := d.fields(n, "notify", notifyKeys...)
	if v := m["webhook_url"]; v != nil {
		if s, ok := d.scalar(v, "notify.webhook_url"); ok && s != "" {
			if msg := checkWebhookURL(s); msg != "" {
				d.addf(v, "notify.webhook_url", "%s", msg)
			} else {
				d.literal(v, "notify.webhook_url")
				nt.WebhookURL = Secret(s)
			}
		}
	}
	if v := m["quota_warn"]; v != nil {
		if s, ok := d.scalar(v, "notify.quota_warn"); ok && s != "" {
			f, err := strconv.ParseFloat(s, 64)
			if err != nil || !(f > 0 && f <= 1) {
				d.addf(v, "notify.quota_warn", "%s must be a number greater than 0 and at most 1 (0.9 = warn at 90%% of the 75 customers a Tip account holds)", show(v, s))
			} else {
				nt.QuotaWarn = f
			}
		}
	}
}

// checkWebhookURL never quotes the URL: webhook URLs carry their token in
// the path or query.
func checkWebhookURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Opaque != "" || u.Host == "" || u.Hostname() == "" {
		return "is not an absolute URL (https://host/path)"
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopback(u.Hostname()) {
			return "must use https:// (http:// is allowed only for localhost or a loopback address): the URL carries a token"
		}
	default:
		return "must use https:// (http:// is allowed only for localhost or a loopback address)"
	}
	return ""
}

// hasPassword reports whether a database URL carries a password, in its user
// info or a password= parameter.
func hasPassword(s string) bool {
	u, err := url.Parse(s)
	if err != nil {
		return false
	}
	if _, set := u.User.Password(); set {
		return true
	}
	return u.Query().Has("password")
}
