package pcsim

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // x5t is the SHA-1 thumbprint by definition
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"
)

const clientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// RefreshToken returns the refresh token the simulator accepts now (the
// contract's rotation: each refresh-token grant answers a new one and voids
// the old), "" when the grant is not configured.
func (s *Server) RefreshToken() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refresh
}

// checkRefreshGrant checks a refresh-token grant and rotates the token.
// It returns the new refresh token, or the error answer.
func (s *Server) checkRefreshGrant(form url.Values) (string, reply, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refresh == "" || !equalSecret(form.Get("refresh_token"), s.refresh) {
		return "", tokenError(http.StatusBadRequest, "invalid_grant", 70000, "The provided refresh token is invalid or has been used."), false
	}
	s.refresh = randomToken(32)
	return s.refresh, reply{}, true
}

// checkAssertion verifies a client assertion against Config.ClientCertificate:
// RS256 signature by its key, x5t its thumbprint, iss and sub the client id,
// aud the token endpoint that was called, and within its validity.
func (s *Server) checkAssertion(r *http.Request, form url.Values, clientID string, now time.Time) (reply, bool) {
	bad := func(msg string) (reply, bool) {
		return tokenError(http.StatusUnauthorized, "invalid_client", 700027, "Client assertion failed signature validation: "+msg), false
	}
	cert := s.cfg.ClientCertificate
	if form.Get("client_assertion_type") != clientAssertionType {
		return bad("client_assertion_type must be " + clientAssertionType + ".")
	}
	parts := strings.Split(form.Get("client_assertion"), ".")
	if len(parts) != 3 {
		return bad("not a JWT.")
	}
	enc := base64.RawURLEncoding
	var header struct{ Alg, X5t string }
	var claims struct {
		Aud, Iss, Sub string
		Exp, Nbf      int64
	}
	hb, err1 := enc.DecodeString(parts[0])
	cb, err2 := enc.DecodeString(parts[1])
	sig, err3 := enc.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil || json.Unmarshal(hb, &header) != nil || json.Unmarshal(cb, &claims) != nil {
		return bad("undecodable.")
	}
	sum := sha1.Sum(cert.Raw) //nolint:gosec // see import
	if header.Alg != "RS256" || header.X5t != enc.EncodeToString(sum[:]) {
		return bad("unknown key (x5t) or algorithm.")
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if !ok || rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig) != nil {
		return bad("signature does not verify.")
	}
	aud := "http://" + r.Host + r.URL.Path
	if r.TLS != nil {
		aud = "https://" + r.Host + r.URL.Path
	}
	switch {
	case claims.Iss != clientID || claims.Sub != clientID:
		return bad("iss and sub must be the client id.")
	case claims.Aud != aud:
		return bad("aud must be the token endpoint.")
	case now.Unix() >= claims.Exp || now.Unix() < claims.Nbf-300:
		return bad("expired or not yet valid.")
	}
	return reply{}, true
}
