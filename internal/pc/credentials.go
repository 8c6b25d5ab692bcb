package pc

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // x5t is defined as the SHA-1 thumbprint of the certificate
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"time"
)

// clientAssertionType is the OAuth value that says the client authenticates
// with a signed JWT (the identity platform's certificate credentials).
const clientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// assertionLife is how long a client assertion is valid: it is made afresh
// for every token request, so a short life costs nothing.
const assertionLife = 10 * time.Minute

// certCredential is a certificate and its private key.
type certCredential struct {
	key *rsa.PrivateKey
	x5t string // base64url SHA-1 thumbprint of the DER certificate
}

// parseCertCredential reads a PEM certificate (the first CERTIFICATE block)
// and a PEM RSA private key (PKCS#1 or PKCS#8) and checks that they match.
// Its errors never quote the key.
func parseCertCredential(certPEM, keyPEM []byte) (*certCredential, error) {
	var der []byte
	for rest := certPEM; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			der = b.Bytes
			break
		}
	}
	if der == nil {
		return nil, errors.New("client certificate: no PEM CERTIFICATE block")
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("client certificate: %w", err)
	}
	var key any
	for rest := keyPEM; key == nil; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, errors.New("client key: no PEM private key block")
		}
		switch b.Type {
		case "RSA PRIVATE KEY":
			if key, err = x509.ParsePKCS1PrivateKey(b.Bytes); err != nil {
				return nil, errors.New("client key: not a valid PKCS#1 RSA key")
			}
		case "PRIVATE KEY":
			if key, err = x509.ParsePKCS8PrivateKey(b.Bytes); err != nil {
				return nil, errors.New("client key: not a valid PKCS#8 key")
			}
		}
	}
	rsaKey, ok := key.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("client key: not an RSA key (the identity platform signs client assertions with RS256)")
	}
	if pub, ok := cert.PublicKey.(*rsa.PublicKey); !ok || !pub.Equal(&rsaKey.PublicKey) {
		return nil, errors.New("client key: does not match the client certificate")
	}
	sum := sha1.Sum(cert.Raw) //nolint:gosec // see import
	return &certCredential{key: rsaKey, x5t: base64.RawURLEncoding.EncodeToString(sum[:])}, nil
}

// assertion returns a client assertion for the token endpoint aud: a JWT
// signed RS256 with the key, naming the certificate by x5t.
func (cc *certCredential) assertion(clientID, aud string, now time.Time) (string, error) {
	enc := base64.RawURLEncoding
	header, err := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "x5t": cc.x5t})
	if err != nil {
		return "", err
	}
	claims, err := json.Marshal(map[string]any{
		"aud": aud, "iss": clientID, "sub": clientID, "jti": NewGUID(),
		"nbf": now.Unix(), "iat": now.Unix(), "exp": now.Add(assertionLife).Unix(),
	})
	if err != nil {
		return "", err
	}
	signing := enc.EncodeToString(header) + "." + enc.EncodeToString(claims)
	digest := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, cc.key, crypto.SHA256, digest[:])
	if err != nil {
		return "", errors.New("sign client assertion")
	}
	return signing + "." + enc.EncodeToString(sig), nil
}

// tokenForm is the form of the next token request: the refresh-token grant
// (App+User) when a refresh token is configured, else client credentials
// with a client assertion (certificate) or the client secret.
func (c *Client) tokenForm() (string, error) {
	form := url.Values{"client_id": {c.clientID}, "resource": {c.resource}}
	switch {
	case c.refreshToken() != "":
		form.Set("grant_type", "refresh_token")
		form.Set("refresh_token", c.refreshToken())
		form.Set("client_secret", c.secret)
	case c.cert != nil:
		a, err := c.cert.assertion(c.clientID, c.tokenURL, time.Now())
		if err != nil {
			return "", err
		}
		form.Set("grant_type", "client_credentials")
		form.Set("client_assertion_type", clientAssertionType)
		form.Set("client_assertion", a)
	default:
		form.Set("grant_type", "client_credentials")
		form.Set("client_secret", c.secret)
	}
	return form.Encode(), nil
}

func (c *Client) refreshToken() string {
	c.tokens.mu.Lock()
	defer c.tokens.mu.Unlock()
	return c.tokens.refresh
}

// rotate keeps a refresh token the token endpoint sent in place of the one
// it was given (the old one stops working) and hands it to OnRefreshToken.
// A failure to persist is logged, not returned: the access token is good, and
// the old refresh token is already void, so failing the call would not help.
func (c *Client) rotate(ctx context.Context, newToken string) {
	if newToken == "" {
		return
	}
	c.tokens.mu.Lock()
	if newToken == c.tokens.refresh {
		c.tokens.mu.Unlock()
		return
	}
	c.tokens.oldRefresh = append(c.tokens.oldRefresh, c.tokens.refresh)
	if n := len(c.tokens.oldRefresh); n > 4 {
		c.tokens.oldRefresh = c.tokens.oldRefresh[n-4:]
	}
	c.tokens.refresh = newToken
	c.tokens.mu.Unlock()
	if c.onRefresh == nil {
		return
	}
	if err := c.onRefresh(ctx, newToken); err != nil {
		c.log.WarnContext(ctx, "partner center: the rotated refresh token could not be kept; a restart will need a new one",
			"error", c.redact(err.Error()))
	}
}
