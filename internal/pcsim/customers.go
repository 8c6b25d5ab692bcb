package pcsim

import (
	"net/http"
	"strconv"
	"strings"
)

func (s *Server) wireCustomer(c *customer) wireCustomer {
	return wireCustomer{
		ID:         c.id,
		CommerceID: c.commerceID,
		CompanyProfile: wireCompanyProfile{
			TenantID:    c.id,
			Domain:      c.domain,
			CompanyName: c.company,
			Attributes:  wireAttributes{ObjectType: "CustomerCompanyProfile"},
		},
		RelationshipToPartner: "reseller",
		AllowDelegatedAccess:  true,
		Links:                 wireLinks{Self: &wireLink{URI: "/customers/" + c.id, Method: http.MethodGet, Headers: []wireHeader{}}},
		Attributes:            wireAttributes{ObjectType: "Customer"},
	}
}

// gone answers for an unknown or deleted customer: 404, or 403 code 20002
// when Config.GoneStatus says so (the contract leaves the real answer open).
func (s *Server) gone(id string) reply {
	if s.cfg.GoneStatus == http.StatusForbidden {
		return errorReply(http.StatusForbidden, codeNoRelationship, "No relationship between caller and account.")
	}
	return errorReply(http.StatusNotFound, codeNotFound, "Customer "+id+" was not found.")
}

// listCustomers serves GET /v1/customers?size=N and its continuation
// (seekOperation=Next with the MS-ContinuationToken header).
func (s *Server) listCustomers(r *http.Request) reply {
	if isContinuation(r) {
		return s.continuePaging(r, kindCustomers)
	}
	size, rp, ok := s.pageSize(r)
	if !ok {
		return rp
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// The snapshot is taken here, at the first page: later pages serve it
	// whatever is deleted meanwhile, so paging never skips or repeats.
	var items []any
	for _, c := range s.customers {
		if !c.deleted {
			items = append(items, s.wireCustomer(c))
		}
	}
	items = s.chaosListing(items)
	return s.pages.first(&pager{kind: kindCustomers, path: "customers", items: items, size: size}, r)
}

func isContinuation(r *http.Request) bool {
	return strings.EqualFold(r.URL.Query().Get("seekOperation"), "Next")
}

func (s *Server) continuePaging(r *http.Request, kind string) reply {
	tok := r.Header.Get("MS-ContinuationToken")
	if tok == "" {
		return errorReply(http.StatusBadRequest, codeBadRequest, "seekOperation=Next requires the MS-ContinuationToken header.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rp, ok := s.pages.next(tok, kind, r)
	if !ok {
		return errorReply(http.StatusBadRequest, codeBadRequest, "The continuation token is not valid.")
	}
	return rp
}

// pageSize reads `size`, clamped to Config.MaxPageSize; absent means the maximum.
func (s *Server) pageSize(r *http.Request) (int, reply, bool) {
	raw := r.URL.Query().Get("size")
	if raw == "" {
		return s.cfg.MaxPageSize, reply{}, true
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 {
		return 0, errorReply(http.StatusBadRequest, codeBadRequest, "size must be a positive integer."), false
	}
	return min(n, s.cfg.MaxPageSize), reply{}, true
}

func (s *Server) getCustomer(id string) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.present(id)
	if c == nil {
		return s.gone(id)
	}
	return jsonReply(http.StatusOK, s.wireCustomer(c))
}

// deleteCustomer serves DELETE /v1/customers/{id}: 411 without a
// Content-Length header, 400 while any order does not read cancelled, else 204.
func (s *Server) deleteCustomer(r *http.Request, id string) reply {
	// Go's server keeps a Content-Length header it was sent (and drops the
	// field when absent), so its presence is what the client sent.
	if len(r.Header.Values("Content-Length")) == 0 {
		return errorReply(http.StatusLengthRequired, codeLengthRequired, "DELETE requires a Content-Length: 0 header.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.present(id)
	if c == nil {
		return s.gone(id)
	}
	now := s.now()
	var active []string
	for _, o := range c.orders {
		if o.statusAt(now) != StatusCancelled {
			active = append(active, o.id)
		}
	}
	if len(active) > 0 {
		return errorReply(http.StatusBadRequest, codeBadRequest,
			"Customer relationship cannot be removed due to active Azure reserved instances. Please cancel the following orders: "+strings.Join(active, ", "))
	}
	c.deleted = true
	c.deletedAt = now
	return reply{status: http.StatusNoContent}
}
