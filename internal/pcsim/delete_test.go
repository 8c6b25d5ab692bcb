package pcsim

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDeleteCustomer(t *testing.T) {
	t.Run("a delete answers 400 naming the orders not yet cancelled, then 204 once they are", func(t *testing.T) {
		s := newSim(t, slowCancel, ciCustomer("c1", 24*time.Hour,
			SeedOrder{ID: "ri", Type: TypeReservedInstance}, SeedOrder{ID: "sw", Type: TypeSoftware}, SeedOrder{ID: "done", Type: TypeSoftware, Status: StatusCancelled}))
		res, body := s.do(http.MethodDelete, customerPath("c1"), "")
		e := requireError(t, res, body, http.StatusBadRequest, codeBadRequest)
		require.Equal(t, "Customer relationship cannot be removed due to active Azure reserved instances. Please cancel the following orders: ri, sw", e.Description)

		for _, id := range []string{"ri", "sw"} {
			res, body = s.do(http.MethodPatch, orderPath("c1", id), cancelBody(id))
			require.Equal(t, http.StatusOK, res.StatusCode, string(body))
		}
		res, body = s.do(http.MethodDelete, customerPath("c1"), "")
		require.Equal(t, http.StatusBadRequest, res.StatusCode, "pending is not cancelled: %s", body)
		require.Contains(t, string(body), "ri, sw")

		s.advance(20 * time.Minute)
		res, body = s.do(http.MethodDelete, customerPath("c1"), "")
		require.Equal(t, http.StatusNoContent, res.StatusCode, string(body))
		require.Empty(t, body)
		require.Empty(t, s.srv.Customers())
	})

	t.Run("a deleted customer answers 404 20000 as a number", func(t *testing.T) {
		s := newSim(t, Config{}, ciCustomer("c1", time.Hour))
		res, body := s.do(http.MethodDelete, customerPath("c1"), "")
		require.Equal(t, http.StatusNoContent, res.StatusCode, string(body))
		for _, m := range []string{http.MethodDelete, http.MethodGet} {
			res, body = s.do(m, customerPath("c1"), "")
			requireError(t, res, body, http.StatusNotFound, float64(codeNotFound))
		}
		res, body = s.do(http.MethodGet, customerPath("c1")+"/orders", "")
		requireError(t, res, body, http.StatusNotFound, float64(codeNotFound))
	})

	t.Run("GoneStatus 403 answers a gone customer with 403 20002", func(t *testing.T) {
		s := newSim(t, Config{GoneStatus: http.StatusForbidden}, ciCustomer("c1", time.Hour))
		res, body := s.do(http.MethodDelete, customerPath("c1"), "")
		require.Equal(t, http.StatusNoContent, res.StatusCode, string(body))
		for _, id := range []string{"c1", "never-existed"} {
			res, body = s.do(http.MethodDelete, customerPath(id), "")
			e := requireError(t, res, body, http.StatusForbidden, float64(codeNoRelationship))
			require.Equal(t, "No relationship between caller and account.", e.Description)
		}
	})

	t.Run("a delete frees a unit of sandbox quota", func(t *testing.T) {
		s := newSim(t, Config{}, customersNamed(SandboxLimit)...)
		_, err := s.srv.AddCustomer(ciCustomer("one-more", time.Hour))
		require.ErrorContains(t, err, codeSandboxLimit)
		res, body := s.do(http.MethodDelete, customerPath("c01"), "")
		require.Equal(t, http.StatusNoContent, res.StatusCode, string(body))
		_, err = s.srv.AddCustomer(ciCustomer("one-more", time.Hour))
		require.NoError(t, err)
	})
}

// rawDelete sends a DELETE over a bare connection, with exactly the headers given.
func rawDelete(t *testing.T, s *sim, path string, headers ...string) (int, string) {
	t.Helper()
	conn, err := net.Dial("tcp", s.ts.Listener.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	req := fmt.Sprintf("DELETE %s HTTP/1.1\r\nHost: pcsim\r\nAuthorization: Bearer %s\r\nAccept: application/json\r\nConnection: close\r\n", path, s.token)
	for _, h := range headers {
		req += h + "\r\n"
	}
	_, err = io.WriteString(conn, req+"\r\n")
	require.NoError(t, err)
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, string(body)
}

func TestDeleteContentLength(t *testing.T) {
	cases := []struct {
		name    string
		headers []string
		status  int
	}{
		{"a delete without Content-Length answers 411 and deletes nothing", nil, http.StatusLengthRequired},
		{"a chunked delete answers 411 and deletes nothing", []string{"Transfer-Encoding: chunked"}, http.StatusLengthRequired},
		{"a delete with Content-Length: 0 is served", []string{"Content-Length: 0"}, http.StatusNoContent},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSim(t, Config{}, ciCustomer("c1", time.Hour))
			status, body := rawDelete(t, s, customerPath("c1"), tc.headers...)
			require.Equal(t, tc.status, status, body)
			if tc.status == http.StatusLengthRequired {
				require.Contains(t, body, codeLengthRequired)
				require.Equal(t, []string{"c1"}, s.srv.Customers())
			} else {
				require.Empty(t, s.srv.Customers())
			}
		})
	}

	t.Run("Go's client without TransferEncoding identity sends no Content-Length and gets 411", func(t *testing.T) {
		s := newSim(t, Config{}, ciCustomer("c1", time.Hour))
		req, err := http.NewRequest(http.MethodDelete, s.ts.URL+customerPath("c1"), nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+s.token)
		res, err := s.ts.Client().Do(req)
		require.NoError(t, err)
		res.Body.Close()
		require.Equal(t, http.StatusLengthRequired, res.StatusCode)
		require.True(t, strings.HasPrefix(res.Header.Get("Content-Type"), "application/json"))
	})
}
