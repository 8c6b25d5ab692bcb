package pc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Order statuses of the contract.
const (
	StatusCancelled = "cancelled"
	StatusPending   = "pending"
	StatusCompleted = "completed"
	StatusUnknown   = "unknown"
)

// Customer is a customer of the partner. It has no creation date.
type Customer struct {
	ID                    string         `json:"id"`
	CommerceID            string         `json:"commerceId"`
	RelationshipToPartner string         `json:"relationshipToPartner"`
	CompanyProfile        CompanyProfile `json:"companyProfile"`
}

// CompanyProfile is the customer's company profile.
type CompanyProfile struct {
	TenantID    string `json:"tenantId"`
	Domain      string `json:"domain"`
	CompanyName string `json:"companyName"`
}

// Order is a customer's order.
type Order struct {
	ID                  string
	AlternateID         string
	ReferenceCustomerID string
	BillingCycle        string
	Status              string
	CreationDate        time.Time // zero when absent
	LineItems           []LineItem
}

// UnmarshalJSON decodes an order, accepting RFC 3339 creation dates with or
// without fractional seconds (and, leniently, without a zone: UTC).
func (o *Order) UnmarshalJSON(data []byte) error {
	var w struct {
		ID                  string     `json:"id"`
		AlternateID         string     `json:"alternateId"`
		ReferenceCustomerID string     `json:"referenceCustomerId"`
		BillingCycle        string     `json:"billingCycle"`
		Status              string     `json:"status"`
		CreationDate        flexTime   `json:"creationDate"`
		LineItems           []LineItem `json:"lineItems"`
	}
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	*o = Order{
		ID:                  w.ID,
		AlternateID:         w.AlternateID,
		ReferenceCustomerID: w.ReferenceCustomerID,
		BillingCycle:        w.BillingCycle,
		Status:              w.Status,
		CreationDate:        time.Time(w.CreationDate),
		LineItems:           w.LineItems,
	}
	return nil
}

// LineItem is one line of an order.
type LineItem struct {
	LineItemNumber int    `json:"lineItemNumber"`
	OfferID        string `json:"offerId"`
	SubscriptionID string `json:"subscriptionId"`
	Quantity       int    `json:"quantity"`
}

// ReferenceOrder names the order an entitlement came from.
type ReferenceOrder struct {
	ID          string
	LineItemID  string // "0" on the wire; a number is accepted too
	AlternateID string
}

// UnmarshalJSON accepts lineItemId as a string or a number.
func (r *ReferenceOrder) UnmarshalJSON(data []byte) error {
	var w struct {
		ID          string     `json:"id"`
		LineItemID  flexString `json:"lineItemId"`
		AlternateID string     `json:"alternateId"`
	}
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	*r = ReferenceOrder{ID: w.ID, LineItemID: string(w.LineItemID), AlternateID: w.AlternateID}
	return nil
}

// Entitlement is what a customer is entitled to, with the order behind it.
type Entitlement struct {
	ReferenceOrder       ReferenceOrder `json:"referenceOrder"`
	ProductID            string         `json:"productId"`
	SkuID                string         `json:"skuId"`
	EntitlementType      string         `json:"entitlementType"`
	Quantity             int            `json:"quantity"`
	IncludedEntitlements []Entitlement  `json:"includedEntitlements"`
}

// OrderIDs returns the distinct order ids referenced by es and their nested
// included entitlements, in first-seen order: several entitlements can name
// the same order, which must be cancelled once.
func OrderIDs(es []Entitlement) []string {
	seen := map[string]bool{}
	var ids []string
	var walk func([]Entitlement)
	walk = func(es []Entitlement) {
		for _, e := range es {
			if id := e.ReferenceOrder.ID; id != "" && !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
			walk(e.IncludedEntitlements)
		}
	}
	walk(es)
	return ids
}

// ActivityRecord is one record of the partner activity log.
type ActivityRecord struct {
	ID            string
	CustomerID    string
	CustomerName  string
	OperationType string // "add_customer" marks a customer's creation
	OperationDate time.Time
}

// UnmarshalJSON decodes an audit record with a lenient operationDate.
func (a *ActivityRecord) UnmarshalJSON(data []byte) error {
	var w struct {
		ID            string   `json:"id"`
		CustomerID    string   `json:"customerId"`
		CustomerName  string   `json:"customerName"`
		OperationType string   `json:"operationType"`
		OperationDate flexTime `json:"operationDate"`
	}
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	*a = ActivityRecord{
		ID:            w.ID,
		CustomerID:    w.CustomerID,
		CustomerName:  w.CustomerName,
		OperationType: w.OperationType,
		OperationDate: time.Time(w.OperationDate),
	}
	return nil
}

// flexString accepts a JSON string or number (ids the docs show as strings
// and servers sometimes send as numbers).
type flexString string

func (f *flexString) UnmarshalJSON(data []byte) error {
	if bytes.Equal(bytes.TrimSpace(data), []byte("null")) {
		*f = ""
		return nil
	}
	s := rawScalar(data)
	if s == "" && !bytes.Equal(bytes.TrimSpace(data), []byte(`""`)) {
		return fmt.Errorf("want a string or a number, got %.40s", data)
	}
	*f = flexString(s)
	return nil
}

// flexTime is an RFC 3339 timestamp; a missing zone is read as UTC and an
// empty string or null as the zero time.
type flexTime time.Time

var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02T15:04:05",
}

func (f *flexTime) UnmarshalJSON(data []byte) error {
	if bytes.Equal(bytes.TrimSpace(data), []byte("null")) {
		*f = flexTime{}
		return nil
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("timestamp: %w", err)
	}
	s = strings.TrimSpace(s)
	if s == "" {
		*f = flexTime{}
		return nil
	}
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			*f = flexTime(t.UTC())
			return nil
		}
	}
	return fmt.Errorf("timestamp %q is not RFC 3339", s)
}
