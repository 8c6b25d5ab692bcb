package pcsim

import (
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Partner Center API roots a token may be requested for: public and usgov share one, china has its own.
var partnerCenterResources = []string{
	"https://api.partnercenter.microsoft.com",
	"https://partner.partnercenterapi.microsoftonline.cn",
}

// graphResource is the audience Partner Center stopped accepting in 2025.
const graphResource = "https://graph.windows.net"

type token struct {
	tenant  string // the partner tenant it was issued for: the rate-limit key
	expires time.Time
	revoked bool
}

// ExpireTokens makes every token issued so far invalid, so the next API call
// with one answers 401 (tests of refresh-on-401).
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.tokens {
		t.revoked = true
	}
}

func tokenError(status int, kind string, code int, description string) reply {
	return jsonReply(status, wireTokenError{
		Error:            kind,
		ErrorDescription: fmt.Sprintf("AADSTS%d: %s", code, description),
		ErrorCodes:       []int{code},
		Timestamp:        time.Now().UTC().Format("2006-01-02 15:04:05Z"),
		TraceID:          newGUID(),
		CorrelationID:    newGUID(),
	})
}

// serveToken answers POST /{tenant}/oauth2/token (v1: numbers as strings,
// `resource`) and /{tenant}/oauth2/v2.0/token (v2: numbers, `scope`).
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request, tenant string, v2 bool) int {
	s.mu.Lock()
	s.stats.count(r.Method, route{kind: kindToken})
	fail, failing := s.takeFailure(r.Method, r.URL.Path, false)
	if failing {
		s.stats.failures++
	}
	s.mu.Unlock()

	var rp reply
	if !failing || fail.after {
		rp = s.issueToken(r, tenant, v2)
	}
	if failing {
		rp = tokenError(fail.status, "temporarily_unavailable", 90033, "A transient error has occurred. Please try again.")
	}
	rp.write(w)
	return rp.status
}

func (s *Server) issueToken(r *http.Request, tenant string, v2 bool) reply {
	if r.Method != http.MethodPost {
		return tokenError(http.StatusMethodNotAllowed, "invalid_request", 900561, "The endpoint only accepts POST requests.")
	}
	if err := r.ParseForm(); err != nil {
		return tokenError(http.StatusBadRequest, "invalid_request", 900144, "The request body must be a form.")
	}
	form := r.PostForm
	grant := form.Get("grant_type")
	if grant != "client_credentials" && (grant != "refresh_token" || s.cfg.RefreshToken == "") {
		return tokenError(http.StatusBadRequest, "unsupported_grant_type", 70003, fmt.Sprintf("The app requested an unsupported grant type %q.", grant))
	}
	clientID := form.Get("client_id")
	if clientID == "" {
		return tokenError(http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'client_id'.")
	}
	if s.cfg.PartnerTenantID != "" && !strings.EqualFold(tenant, s.cfg.PartnerTenantID) {
		return tokenError(http.StatusUnauthorized, "invalid_client", 90002, "Tenant not found.")
	}
	if s.cfg.ClientID != "" && !equalSecret(clientID, s.cfg.ClientID) {
		return tokenError(http.StatusUnauthorized, "invalid_client", 700016, "Application was not found in the directory.")
	}
	if grant == "client_credentials" && s.cfg.ClientCertificate != nil {
		if rp, ok := s.checkAssertion(r, form, clientID, s.now()); !ok {
			return rp
		}
	} else if s.cfg.ClientSecret != "" && !equalSecret(form.Get("client_secret"), s.cfg.ClientSecret) {
		return tokenError(http.StatusUnauthorized, "invalid_client", 7000215, "Invalid client secret provided.")
	}
	var newRefresh string
	if grant == "refresh_token" {
		var rp reply
		var ok bool
		if newRefresh, rp, ok = s.checkRefreshGrant(form); !ok {
			return rp
		}
	}

	var resource string
	if v2 {
		scope := form.Get("scope")
		if !strings.HasSuffix(scope, "/.default") {
			return tokenError(http.StatusBadRequest, "invalid_scope", 1002012, fmt.Sprintf("The provided value for scope %q is not valid.", scope))
		}
		resource = strings.TrimSuffix(scope, "/.default")
	} else {
		resource = form.Get("resource")
	}
	resource = strings.TrimSuffix(resource, "/")
	if strings.EqualFold(resource, graphResource) {
		return tokenError(http.StatusUnauthorized, "invalid_resource", 900420, "The Azure AD Graph audience is no longer accepted by Partner Center.")
	}
	known := false
	for _, pc := range partnerCenterResources {
		known = known || strings.EqualFold(resource, pc)
	}
	if !known {
		return tokenError(http.StatusBadRequest, "invalid_resource", 500011, fmt.Sprintf("The resource principal named %q was not found in the tenant.", resource))
	}

	s.mu.Lock()
	now := s.now()
	tid := s.tokenTID
	if tid == "" {
		tid = tenant
	}
	exp := now.Add(s.cfg.TokenTTL)
	access := newJWT(jwtClaims{
		Aud: resource, Iss: "https://sts.windows.net/" + tid + "/", Iat: now.Unix(), Nbf: now.Unix(),
		Exp: exp.Unix(), AppID: clientID, AppIDAcr: "1", Tid: tid, Ver: "1.0",
	})
	valid := exp
	if ch := s.cfg.Chaos; ch != nil && ch.TokenLife > 0 && ch.TokenLife < s.cfg.TokenTTL {
		valid = now.Add(ch.TokenLife) // announced for TokenTTL, refused (401) after TokenLife
	}
	s.tokens[access] = &token{tenant: strings.ToLower(tenant), expires: valid}
	s.mu.Unlock()

	ttl := int64(s.cfg.TokenTTL / time.Second)
	if v2 {
		return jsonReply(http.StatusOK, wireTokenV2{TokenType: "Bearer", ExpiresIn: ttl, ExtExpiresIn: ttl, AccessToken: access, RefreshToken: newRefresh})
	}
	return jsonReply(http.StatusOK, wireTokenV1{
		RefreshToken: newRefresh,
		TokenType:    "Bearer",
		ExpiresIn:    strconv.FormatInt(ttl, 10),
		ExtExpiresIn: strconv.FormatInt(ttl, 10),
		ExpiresOn:    strconv.FormatInt(exp.Unix(), 10),
		NotBefore:    strconv.FormatInt(now.Unix(), 10),
		Resource:     resource,
		AccessToken:  access,
	})
}

func equalSecret(got, want string) bool {
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

type jwtClaims struct {
	Aud      string `json:"aud"`
	Iss      string `json:"iss"`
	Iat      int64  `json:"iat"`
	Nbf      int64  `json:"nbf"`
	Exp      int64  `json:"exp"`
	AppID    string `json:"appid"`
	AppIDAcr string `json:"appidacr"`
	Tid      string `json:"tid"`
	Ver      string `json:"ver"`
}

// newJWT returns a JWT-shaped token: real header and claims, random bytes for
// the signature. Clients may read the claims but cannot verify it, like any
// client of a token meant for another audience.
func newJWT(c jwtClaims) string {
	enc := base64.RawURLEncoding
	header, _ := json.Marshal(map[string]string{"typ": "JWT", "alg": "RS256", "kid": "pcsim"})
	payload, _ := json.Marshal(c)
	return enc.EncodeToString(header) + "." + enc.EncodeToString(payload) + "." + randomToken(64)
}

// authenticate checks the bearer token of an API request. Callers hold s.mu.
func (s *Server) authenticate(r *http.Request, at time.Time) (tenant string, rp reply, ok bool) {
	unauthorized := func(msg string) (string, reply, bool) {
		rp := errorReply(http.StatusUnauthorized, codeUnauthorized, msg)
		rp.header.Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		return "", rp, false
	}
	scheme, access, found := strings.Cut(r.Header.Get("Authorization"), " ")
	if !found || !strings.EqualFold(scheme, "Bearer") || access == "" {
		return unauthorized("Authorization: Bearer <token> is required.")
	}
	t, known := s.tokens[access]
	switch {
	case !known:
		return unauthorized("The access token is not valid.")
	case t.revoked || !at.Before(t.expires):
		return unauthorized("The access token has expired.")
	}
	return t.tenant, reply{}, true
}
