package pcsim

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func tokenForm(extra ...string) url.Values {
	f := url.Values{"grant_type": {"client_credentials"}, "client_id": {testClient}, "client_secret": {testSecret}, "resource": {pcResource}}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] == "" {
			f.Del(extra[i])
		} else {
			f.Set(extra[i], extra[i+1])
		}
	}
	return f
}

func claimsOf(t *testing.T, access string) map[string]any {
	t.Helper()
	parts := strings.Split(access, ".")
	require.Len(t, parts, 3, "a JWT has three parts")
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	var claims map[string]any
	require.NoError(t, json.Unmarshal(raw, &claims))
	return claims
}

func TestTokens(t *testing.T) {
	t.Run("a v1 token answers expires_in and expires_on as strings", func(t *testing.T) {
		s := newSim(t, Config{})
		res, body := s.postForm("/"+testTenant+"/oauth2/token", tokenForm())
		require.Equal(t, http.StatusOK, res.StatusCode, string(body))
		var got map[string]any
		require.NoError(t, json.Unmarshal(body, &got))
		require.Equal(t, "Bearer", got["token_type"])
		require.Equal(t, "3600", got["expires_in"])
		require.Equal(t, strconv.FormatInt(t0.Add(time.Hour).Unix(), 10), got["expires_on"])
		require.Equal(t, pcResource, got["resource"])
	})

	t.Run("a v2 token answers expires_in as a number", func(t *testing.T) {
		s := newSim(t, Config{})
		res, body := s.postForm("/"+testTenant+"/oauth2/v2.0/token", tokenForm("resource", "", "scope", pcResource+"/.default"))
		require.Equal(t, http.StatusOK, res.StatusCode, string(body))
		var got map[string]any
		require.NoError(t, json.Unmarshal(body, &got))
		require.Equal(t, float64(3600), got["expires_in"])
		require.Equal(t, pcResource, claimsOf(t, got["access_token"].(string))["aud"])
	})

	t.Run("the token carries tid, aud, appid, iat and exp claims", func(t *testing.T) {
		s := newSim(t, Config{})
		c := claimsOf(t, s.token)
		require.Equal(t, testTenant, c["tid"])
		require.Equal(t, pcResource, c["aud"])
		require.Equal(t, testClient, c["appid"])
		require.Equal(t, float64(t0.Unix()), c["iat"])
		require.Equal(t, float64(t0.Add(time.Hour).Unix()), c["exp"])
	})

	t.Run("TokenTenantID and SetTokenTenantID change the tid claim", func(t *testing.T) {
		s := newSim(t, Config{TokenTenantID: "other-tenant"})
		require.Equal(t, "other-tenant", claimsOf(t, s.token)["tid"])
		s.srv.SetTokenTenantID("third-tenant")
		_, body := s.postForm("/"+testTenant+"/oauth2/token", tokenForm())
		var got struct {
			AccessToken string `json:"access_token"`
		}
		require.NoError(t, json.Unmarshal(body, &got))
		require.Equal(t, "third-tenant", claimsOf(t, got.AccessToken)["tid"])
	})

	t.Run("two tokens are never equal", func(t *testing.T) {
		s := newSim(t, Config{})
		_, body := s.postForm("/"+testTenant+"/oauth2/token", tokenForm())
		require.NotContains(t, string(body), s.token)
	})
}

func TestTokenRefusals(t *testing.T) {
	cases := []struct {
		name      string
		path      string
		form      url.Values
		status    int
		errorKind string
		code      float64
	}{
		{"an unknown tenant is refused", "/9f9f9f9f-0000-4000-8000-00000000dead/oauth2/token", tokenForm(), 401, "invalid_client", 90002},
		{"a wrong client secret is refused", "/" + testTenant + "/oauth2/token", tokenForm("client_secret", "wrong-secret"), 401, "invalid_client", 7000215},
		{"a wrong client id is refused", "/" + testTenant + "/oauth2/token", tokenForm("client_id", "someone-else"), 401, "invalid_client", 700016},
		{"the Azure AD Graph audience is refused with 900420", "/" + testTenant + "/oauth2/token", tokenForm("resource", "https://graph.windows.net"), 401, "invalid_resource", 900420},
		{"the Azure AD Graph scope is refused with 900420 on v2", "/" + testTenant + "/oauth2/v2.0/token", tokenForm("resource", "", "scope", "https://graph.windows.net/.default"), 401, "invalid_resource", 900420},
		{"an unknown resource is refused", "/" + testTenant + "/oauth2/token", tokenForm("resource", "https://example.com"), 400, "invalid_resource", 500011},
		{"a grant other than client credentials is refused", "/" + testTenant + "/oauth2/token", tokenForm("grant_type", "password"), 400, "unsupported_grant_type", 70003},
		{"a missing client id is refused", "/" + testTenant + "/oauth2/token", tokenForm("client_id", ""), 400, "invalid_request", 900144},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSim(t, Config{})
			res, body := s.postForm(tc.path, tc.form)
			require.Equal(t, tc.status, res.StatusCode, string(body))
			var got struct {
				Error       string    `json:"error"`
				Description string    `json:"error_description"`
				Codes       []float64 `json:"error_codes"`
			}
			require.NoError(t, json.Unmarshal(body, &got))
			require.Equal(t, tc.errorKind, got.Error)
			require.Equal(t, []float64{tc.code}, got.Codes)
			require.NotContains(t, string(body), "wrong-secret", "a token error never echoes the secret")
			require.NotContains(t, string(body), testSecret)
		})
	}
}

func TestAPIAuthentication(t *testing.T) {
	forged := newJWT(jwtClaims{Aud: pcResource, Tid: testTenant, Exp: t0.Add(time.Hour).Unix()})
	cases := []struct {
		name   string
		prep   func(s *sim)
		header string
		status int
	}{
		{"a token this server issued is accepted", func(*sim) {}, "", http.StatusOK},
		{"a request without a bearer token is refused", func(*sim) {}, "none", http.StatusUnauthorized},
		{"a JWT-shaped token this server did not issue is refused", func(*sim) {}, "Bearer " + forged, http.StatusUnauthorized},
		{"a token past its expiry is refused", func(s *sim) { s.clock.Advance(time.Hour) }, "", http.StatusUnauthorized},
		{"a token is refused after ExpireTokens", func(s *sim) { s.srv.ExpireTokens() }, "", http.StatusUnauthorized},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSim(t, Config{}, ciCustomer("c1", time.Hour))
			tc.prep(s)
			var hdr []string
			switch tc.header {
			case "":
			case "none":
				hdr = []string{"Authorization", ""}
			default:
				hdr = []string{"Authorization", tc.header}
			}
			res, body := s.do(http.MethodGet, "/v1/customers/c1", "", hdr...)
			if tc.status == http.StatusOK {
				require.Equal(t, http.StatusOK, res.StatusCode, string(body))
				return
			}
			requireError(t, res, body, tc.status, codeUnauthorized)
			require.NotEmpty(t, res.Header.Get("WWW-Authenticate"))
		})
	}

	t.Run("a fresh token works again after ExpireTokens", func(t *testing.T) {
		s := newSim(t, Config{}, ciCustomer("c1", time.Hour))
		s.srv.ExpireTokens()
		_, body := s.postForm("/"+testTenant+"/oauth2/token", tokenForm())
		var got struct {
			AccessToken string `json:"access_token"`
		}
		require.NoError(t, json.Unmarshal(body, &got))
		s.token = got.AccessToken
		res, body := s.do(http.MethodGet, "/v1/customers/c1", "")
		require.Equal(t, http.StatusOK, res.StatusCode, string(body))
	})
}

func TestHeaders(t *testing.T) {
	t.Run("every API answer echoes the request and correlation ids and sets MS-CV", func(t *testing.T) {
		s := newSim(t, Config{}, ciCustomer("c1", time.Hour))
		for _, path := range []string{"/v1/customers/c1", "/v1/customers/nope"} {
			res, _ := s.do(http.MethodGet, path, "", "MS-RequestId", "req-1", "MS-CorrelationId", "corr-1")
			require.Equal(t, "req-1", res.Header.Get("MS-RequestId"))
			require.Equal(t, "corr-1", res.Header.Get("MS-CorrelationId"))
			require.NotEmpty(t, res.Header.Get("MS-CV"))
		}
	})

	t.Run("the request log records the ids, Accept and status, and redacts the token", func(t *testing.T) {
		s := newSim(t, Config{}, ciCustomer("c1", time.Hour))
		s.do(http.MethodGet, "/v1/customers/c1", "", "MS-RequestId", "req-1", "MS-CorrelationId", "corr-1")
		s.do(http.MethodGet, "/v1/customers/c1", "", "MS-RequestId", "req-1", "Accept", "text/html")
		log := s.srv.Requests()
		require.Len(t, log, 3, "the token request and two API requests")
		first, second := log[1], log[2]
		require.Equal(t, http.MethodGet, first.Method)
		require.Equal(t, "/v1/customers/c1", first.Path)
		require.Equal(t, "req-1", first.RequestID)
		require.Equal(t, "corr-1", first.CorrelationID)
		require.Equal(t, "application/json", first.Accept)
		require.Equal(t, http.StatusOK, first.Status)
		require.Equal(t, t0, first.At)
		require.Equal(t, "text/html", second.Accept, "a wrong Accept is served but recorded")
		require.Equal(t, "REDACTED", first.Header.Get("Authorization"))
		require.Equal(t, "/"+testTenant+"/oauth2/token", log[0].Path)
	})
}
