package pc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// ListCustomers returns every customer of the partner, all pages. Any page
// failing fails the call: never a partial list.
func (c *Client) ListCustomers(ctx context.Context) ([]Customer, error) {
	first := c.root.String() + "/v1/customers?size=" + strconv.Itoa(c.pageSize)
	return listAll(ctx, c, "list customers", EndpointCustomers, first, c.maxListed, checkCustomer)
}

func checkCustomer(cu Customer) error {
	if cu.ID == "" {
		return errors.New("customer without id")
	}
	return nil
}

// ListOrders returns every order of a customer, all pages.
func (c *Client) ListOrders(ctx context.Context, customerID string) ([]Order, error) {
	op := "list orders of customer " + customerID
	p, err := c.path(op, "customers", customerID, "orders")
	if err != nil {
		return nil, err
	}
	return listAll(ctx, c, op, EndpointOrders, p, c.maxListed, checkOrder)
}

func checkOrder(o Order) error {
	if o.ID == "" {
		return errors.New("order without id")
	}
	return nil
}

// GetOrder returns one order of a customer.
func (c *Client) GetOrder(ctx context.Context, customerID, orderID string) (Order, error) {
	op := fmt.Sprintf("get order %s of customer %s", orderID, customerID)
	p, err := c.path(op, "customers", customerID, "orders", orderID)
	if err != nil {
		return Order{}, err
	}
	return c.orderCall(ctx, newCall(ctx, op, EndpointOrder, http.MethodGet, p))
}

// ListEntitlements returns a customer's entitlements, all pages. The contract
// documents it for App+User tokens only: an app-only token may get 403
// (code 900150), and the orders are then the fallback source of order ids.
func (c *Client) ListEntitlements(ctx context.Context, customerID string) ([]Entitlement, error) {
	op := "list entitlements of customer " + customerID
	p, err := c.path(op, "customers", customerID, "entitlements")
	if err != nil {
		return nil, err
	}
	return listAll[Entitlement](ctx, c, op, EndpointEntitlements, p, c.maxListed, nil)
}

// CancelOrder asks Partner Center to cancel an order (integration sandbox
// only) and returns the order as answered; its status may still be pending,
// so the caller polls GetOrder until it reads cancelled.
func (c *Client) CancelOrder(ctx context.Context, customerID, orderID string) (Order, error) {
	op := fmt.Sprintf("cancel order %s of customer %s", orderID, customerID)
	p, err := c.path(op, "customers", customerID, "orders", orderID)
	if err != nil {
		return Order{}, err
	}
	body, err := json.Marshal(struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	}{orderID, StatusCancelled})
	if err != nil {
		return Order{}, fmt.Errorf("%s: %w", op, err)
	}
	cl := newCall(ctx, op, EndpointOrder, http.MethodPatch, p)
	cl.body = body
	return c.orderCall(ctx, cl)
}

func (c *Client) orderCall(ctx context.Context, cl *call) (Order, error) {
	resp, err := c.do(ctx, cl)
	if err != nil {
		return Order{}, err
	}
	o, err := decodeOrder(resp.body)
	if err != nil {
		return Order{}, decodeError(cl, resp, err)
	}
	return o, nil
}

// decodeOrder decodes an order answer; an order without id is an error.
func decodeOrder(body []byte) (Order, error) {
	var o Order
	if err := decodeObject(body, &o); err != nil {
		return Order{}, err
	}
	if err := checkOrder(o); err != nil {
		return Order{}, err
	}
	return o, nil
}

// DeleteCustomer removes a customer (DELETE with Content-Length: 0). It
// returns nil on 204. A customer already gone (404, or 403 code 20002) gives
// an *Error for which IsAlreadyGone is true, also when an earlier attempt of
// the same request was lost and its retry found the deletion done.
func (c *Client) DeleteCustomer(ctx context.Context, customerID string) error {
	op := "delete customer " + customerID
	p, err := c.path(op, "customers", customerID)
	if err != nil {
		return err
	}
	_, err = c.do(ctx, newCall(ctx, op, EndpointCustomer, http.MethodDelete, p))
	return err
}

// activityPerListed: the activity log records every operation of 90 days, so
// it may hold many more records than the account has customers.
const activityPerListed = 100

// ListActivity returns the partner activity log (audit records) between start
// and end, all pages. Partner Center keeps 90 days.
func (c *Client) ListActivity(ctx context.Context, start, end time.Time) ([]ActivityRecord, error) {
	s, e := start.UTC().Format(time.RFC3339), end.UTC().Format(time.RFC3339)
	op := fmt.Sprintf("list activity from %s to %s", s, e)
	first := c.root.String() + "/v1/auditrecords?startDate=" + url.QueryEscape(s) + "&endDate=" + url.QueryEscape(e)
	return listAll[ActivityRecord](ctx, c, op, EndpointAuditRecords, first, activityPerListed*c.maxListed, nil)
}

// path builds {root}/v1/{segments} with each id escaped. Ids are checked
// first: an empty or dot id would turn a DELETE of one customer into a
// request on a collection or a parent path.
func (c *Client) path(op string, segments ...string) (string, error) {
	var b strings.Builder
	b.WriteString(c.root.String())
	b.WriteString("/v1")
	for i, s := range segments {
		if i%2 == 1 { // odd positions are ids
			if err := checkID(s); err != nil {
				return "", fmt.Errorf("%s: %w", op, err)
			}
		}
		b.WriteString("/")
		b.WriteString(url.PathEscape(s))
	}
	return b.String(), nil
}

func checkID(id string) error {
	switch {
	case strings.TrimSpace(id) == "":
		return errors.New("empty id")
	case id == "." || id == "..":
		return fmt.Errorf("invalid id %q", id)
	case len(id) > 256:
		return errors.New("id longer than 256 characters")
	case strings.IndexFunc(id, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }) >= 0:
		return fmt.Errorf("invalid id %q", id)
	}
	return nil
}
