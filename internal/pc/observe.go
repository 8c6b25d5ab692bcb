package pc

import "time"

// Endpoint names of RequestInfo: one per route of the contract, few and
// stable, so they can be metric labels.
const (
	EndpointToken        = "token"        // POST {authority}/{tenant}/oauth2/token
	EndpointCustomers    = "customers"    // GET /v1/customers (every page)
	EndpointCustomer     = "customer"     // DELETE /v1/customers/{id}
	EndpointOrders       = "orders"       // GET /v1/customers/{id}/orders (every page)
	EndpointOrder        = "order"        // GET, PATCH /v1/customers/{id}/orders/{orderId}
	EndpointEntitlements = "entitlements" // GET /v1/customers/{id}/entitlements (every page)
	EndpointAuditRecords = "auditrecords" // GET /v1/auditrecords (every page)
)

// RequestInfo describes one HTTP attempt, for Config.Observe. It holds no
// id, token or URL: only what can be counted.
type RequestInfo struct {
	Endpoint   string        // one of the Endpoint* names
	Method     string        // HTTP method
	StatusCode int           // HTTP status; 0 when no answer arrived (transport failure, cut-off body)
	Attempt    int           // 1 for the first attempt of a logical call, 2 for its first retry…
	Throttled  bool          // the answer was a 429
	Duration   time.Duration // from sending the request to the end of its body
}

// observe reports one attempt to the configured observer, if any.
func (c *Client) observe(ri RequestInfo) {
	if c.observer != nil {
		c.observer(ri)
	}
}
