package pcsim

import (
	"net/http"
	"strings"
)

// Route kinds, as counted in Stats.Requests ("GET customers", "PATCH order", …).
const (
	kindToken        = "token"
	kindCustomers    = "customers"
	kindCustomer     = "customer"
	kindOrders       = "orders"
	kindOrder        = "order"
	kindEntitlements = "entitlements"
	kindAuditRecords = "auditrecords"
	kindUnknown      = "unknown"
)

type route struct {
	kind       string
	customerID string
	orderID    string
}

// rateLimited reports whether the route falls under the Customer and Order
// resources' per-tenant limit (/v1/customers* and /customers*).
func (rt route) rateLimited() bool {
	switch rt.kind {
	case kindCustomers, kindCustomer, kindOrders, kindOrder, kindEntitlements:
		return true
	}
	return false
}

// parseRoute maps an API path to a route. The /v1 prefix is optional because
// Partner Center's own next links drop it.
func parseRoute(path string) route {
	p := path
	if strings.HasPrefix(p, "/v1/") {
		p = p[len("/v1"):]
	}
	p = strings.TrimSuffix(strings.TrimPrefix(p, "/"), "/")
	seg := strings.Split(p, "/")
	for _, s := range seg {
		if s == "" {
			return route{kind: kindUnknown}
		}
	}
	switch {
	case len(seg) == 1 && seg[0] == "customers":
		return route{kind: kindCustomers}
	case len(seg) == 1 && seg[0] == "auditrecords":
		return route{kind: kindAuditRecords}
	case seg[0] != "customers":
		return route{kind: kindUnknown}
	case len(seg) == 2:
		return route{kind: kindCustomer, customerID: seg[1]}
	case len(seg) == 3 && seg[2] == "orders":
		return route{kind: kindOrders, customerID: seg[1]}
	case len(seg) == 4 && seg[2] == "orders":
		return route{kind: kindOrder, customerID: seg[1], orderID: seg[3]}
	case len(seg) == 3 && seg[2] == "entitlements":
		return route{kind: kindEntitlements, customerID: seg[1]}
	}
	return route{kind: kindUnknown}
}

// tokenRoute recognises POST /{tenant}/oauth2/token (v1) and
// /{tenant}/oauth2/v2.0/token (v2).
func tokenRoute(path string) (tenant string, v2, ok bool) {
	seg := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case len(seg) == 3 && seg[1] == "oauth2" && seg[2] == "token" && seg[0] != "":
		return seg[0], false, true
	case len(seg) == 4 && seg[1] == "oauth2" && seg[2] == "v2.0" && seg[3] == "token" && seg[0] != "":
		return seg[0], true, true
	}
	return "", false, false
}

// dispatch performs the action of an authenticated, admitted API request.
func (s *Server) dispatch(r *http.Request, rt route) reply {
	allow := func(methods ...string) (reply, bool) {
		for _, m := range methods {
			if r.Method == m {
				return reply{}, true
			}
		}
		rp := errorReply(http.StatusMethodNotAllowed, "MethodNotAllowed", "The method "+r.Method+" is not allowed on "+r.URL.Path+".")
		rp.header.Set("Allow", strings.Join(methods, ", "))
		return rp, false
	}
	switch rt.kind {
	case kindCustomers:
		if rp, ok := allow(http.MethodGet); !ok {
			return rp
		}
		return s.listCustomers(r)
	case kindCustomer:
		if rp, ok := allow(http.MethodGet, http.MethodDelete); !ok {
			return rp
		}
		if r.Method == http.MethodDelete {
			return s.deleteCustomer(r, rt.customerID)
		}
		return s.getCustomer(rt.customerID)
	case kindOrders:
		if rp, ok := allow(http.MethodGet); !ok {
			return rp
		}
		return s.listOrders(r, rt.customerID)
	case kindOrder:
		if rp, ok := allow(http.MethodGet, http.MethodPatch); !ok {
			return rp
		}
		if r.Method == http.MethodPatch {
			return s.cancelOrder(r, rt.customerID, rt.orderID)
		}
		return s.getOrder(rt.customerID, rt.orderID)
	case kindEntitlements:
		if rp, ok := allow(http.MethodGet); !ok {
			return rp
		}
		return s.listEntitlements(r, rt.customerID)
	case kindAuditRecords:
		if rp, ok := allow(http.MethodGet); !ok {
			return rp
		}
		return s.listAuditRecords(r)
	}
	return errorReply(http.StatusNotFound, codeNotFound, "No resource at "+r.URL.Path+".")
}
