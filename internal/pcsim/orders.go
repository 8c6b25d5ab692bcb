package pcsim

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
)

// Offer and product ids of the simulated catalogue (shaped like real ones).
var offers = map[string]struct{ offerID, productID, skuID, name, billing string }{
	TypeSoftware:         {"DG7GMGF0FKZV:0001:DG7GMGF0FLHB", "DG7GMGF0FKZV", "0001", "Windows Server 2022 Standard", "one_time"},
	TypeReservedInstance: {"DZH318Z0BQ3Q:00CH:DZH318Z0BQ3Q", "DZH318Z0BQ3Q", "00CH", "Reserved VM Instance, Standard_D2s_v5, 1 year", "one_time"},
	TypeSubscription:     {"CFQ7TTC0LH18:0001:CFQ7TTC0LH18", "CFQ7TTC0LH18", "0001", "Microsoft 365 Business Basic", "monthly"},
}

func (s *Server) wireOrder(c *customer, o *order, status string) wireOrder {
	off := offers[o.typ]
	items := []wireLineItem{{LineItemNumber: 0, OfferID: off.offerID, FriendlyName: off.name, Quantity: 1}}
	if o.typ == TypeReservedInstance {
		// Two line items, so entitlements name the order twice.
		items = append(items, wireLineItem{LineItemNumber: 1, OfferID: off.offerID, FriendlyName: off.name, Quantity: 1})
	}
	if o.typ == TypeSubscription {
		items[0].SubscriptionID = strings.ToUpper(o.alternateID)
	}
	return wireOrder{
		ID:                  o.id,
		AlternateID:         o.alternateID,
		ReferenceCustomerID: c.id,
		BillingCycle:        off.billing,
		CurrencyCode:        "USD",
		LineItems:           items,
		CreationDate:        wireTime(o.createdAt),
		Status:              status,
		Links:               wireLinks{Self: &wireLink{URI: "/customers/" + c.id + "/orders/" + o.id, Method: http.MethodGet, Headers: []wireHeader{}}},
		Attributes:          wireAttributes{ObjectType: "Order"},
	}
}

func orderNotFound(id string) reply {
	return errorReply(http.StatusNotFound, codeNotFound, "Order "+id+" was not found.")
}

// listOrders serves GET /v1/customers/{id}/orders: the whole collection in one page.
func (s *Server) listOrders(r *http.Request, id string) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.present(id)
	if c == nil {
		return s.gone(id)
	}
	now := s.now()
	items := []any{}
	for _, o := range c.orders {
		items = append(items, s.wireOrder(c, o, o.statusAt(now)))
	}
	return jsonReply(http.StatusOK, wireCollection{
		TotalCount: len(items),
		Items:      items,
		Links:      wireLinks{Self: &wireLink{URI: r.URL.RequestURI(), Method: http.MethodGet, Headers: []wireHeader{}}},
		Attributes: wireAttributes{ObjectType: "Collection"},
	})
}

func (s *Server) getOrder(id, orderID string) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.present(id)
	if c == nil {
		return s.gone(id)
	}
	o := c.order(orderID)
	if o == nil {
		return orderNotFound(orderID)
	}
	return jsonReply(http.StatusOK, s.wireOrder(c, o, o.statusAt(s.now())))
}

// cancelOrder serves PATCH /v1/customers/{id}/orders/{orderId} with body
// {"id": orderId, "status": "cancelled"}. An accepted cancel answers the order
// as pending; it reads cancelled once its delay has passed.
func (s *Server) cancelOrder(r *http.Request, id, orderID string) reply {
	var body struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	if err != nil {
		return errorReply(http.StatusBadRequest, codeBadRequest, "The request body could not be read.")
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		return errorReply(http.StatusBadRequest, codeBadRequest, "The request body must be a JSON order.")
	}
	if body.ID != orderID || body.Status != StatusCancelled {
		return errorReply(http.StatusBadRequest, codeBadRequest, `The body must be {"id": "`+orderID+`", "status": "cancelled"}.`)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.present(id)
	if c == nil {
		return s.gone(id)
	}
	o := c.order(orderID)
	if o == nil {
		return orderNotFound(orderID)
	}
	now := s.now()
	status := o.statusAt(now)
	switch {
	case o.typ == TypeSubscription:
		return errorReply(http.StatusBadRequest, codeSubscriptionOrder, "The order is subscription-based: cancel the subscription instead.")
	case status == StatusCancelled:
		return jsonReply(http.StatusOK, s.wireOrder(c, o, status))
	case now.Sub(o.createdAt) > cancelWindow:
		return errorReply(http.StatusBadRequest, codeWindowPassed, "The cancellation window has passed: sandbox orders older than 60 days cannot be cancelled.")
	case status == StatusPending:
		return errorReply(http.StatusConflict, codeInProgress, "The order is in progress.")
	case status == StatusUnknown:
		return errorReply(http.StatusBadRequest, codeCannotCancel, "The order cannot be cancelled.")
	}
	o.cancelRequested = now
	return jsonReply(http.StatusOK, s.wireOrder(c, o, StatusPending))
}

// listEntitlements serves GET /v1/customers/{id}/entitlements, derived from
// the orders that do not read cancelled: a software order yields one
// entitlement, a reserved-instance order two (the first also names the order
// in includedEntitlements), so one order is named several times.
func (s *Server) listEntitlements(r *http.Request, id string) reply {
	if s.cfg.EntitlementsAppOnlyForbidden {
		return errorReply(http.StatusForbidden, codeRoleForbidden, "The supplied role does not have the rights to perform the requested operation.")
	}
	filter := r.URL.Query().Get("entitlementType")
	if filter != "" && !strings.EqualFold(filter, TypeSoftware) && !strings.EqualFold(filter, TypeReservedInstance) {
		return errorReply(http.StatusBadRequest, codeBadRequest, "entitlementType must be software or reservedInstance.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.present(id)
	if c == nil {
		return s.gone(id)
	}
	now := s.now()
	items := []any{}
	for _, o := range c.orders {
		if o.typ == TypeSubscription || o.statusAt(now) == StatusCancelled {
			continue
		}
		if filter != "" && !strings.EqualFold(filter, o.typ) {
			continue
		}
		for _, e := range entitlementsOf(o) {
			items = append(items, e)
		}
	}
	return jsonReply(http.StatusOK, wireCollection{
		TotalCount: len(items),
		Items:      items,
		Links:      wireLinks{Self: &wireLink{URI: r.URL.RequestURI(), Method: http.MethodGet, Headers: []wireHeader{}}},
		Attributes: wireAttributes{ObjectType: "Collection"},
	})
}

func entitlementsOf(o *order) []wireEntitlement {
	off := offers[o.typ]
	one := func(lineItem string) wireEntitlement {
		return wireEntitlement{
			ReferenceOrder:       wireOrderRef{ID: o.id, LineItemID: lineItem, AlternateID: o.alternateID},
			ProductID:            off.productID,
			SkuID:                off.skuID,
			Quantity:             1,
			EntitlementType:      o.typ,
			FulfillmentState:     "fulfilled",
			IncludedEntitlements: []wireEntitlement{},
			Attributes:           wireAttributes{ObjectType: "Entitlement"},
		}
	}
	if o.typ != TypeReservedInstance {
		return []wireEntitlement{one("0")}
	}
	first := one("0")
	first.IncludedEntitlements = []wireEntitlement{one("0")}
	return []wireEntitlement{first, one("1")}
}
