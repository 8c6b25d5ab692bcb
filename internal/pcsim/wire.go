package pcsim

import "time"

// Wire types: the JSON Partner Center sends, written from the contract and
// independent of the client's types on purpose.

// Error codes. The contract says `code` is documented as a string and seen as a
// number; the simulator sends both: numbers for 403/404/409, strings for the rest.
const (
	codeNotFound          = 20000 // 404: customer or order not found
	codeNoRelationship    = 20002 // 403: customer gone, "No relationship between caller and account."
	codeRoleForbidden     = 900150
	codeInProgress        = 800060
	codeCannotCancel      = "800061"
	codeSubscriptionOrder = "800063"
	codeWindowPassed      = "900117"
	codeSandboxLimit      = "800018"
	codeBadRequest        = "BadRequest" // unconfirmed: the simulator's own code for malformed input
	codeUnauthorized      = "Unauthorized"
	codeLengthRequired    = "LengthRequired"
)

// dotNetTime is the timestamp shape .NET services send: UTC with seven fractional digits.
const dotNetTime = "2006-01-02T15:04:05.0000000Z"

func wireTime(t time.Time) string { return t.UTC().Format(dotNetTime) }

type wireError struct {
	Code        any    `json:"code"`
	Description string `json:"description"`
	Data        []any  `json:"data"`
	Source      string `json:"source"`
}

type wireThrottle struct {
	StatusCode int    `json:"statusCode"`
	Message    string `json:"message"`
}

type wireAttributes struct {
	ObjectType string `json:"objectType"`
}

type wireHeader struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

type wireLink struct {
	URI     string       `json:"uri"`
	Method  string       `json:"method"`
	Headers []wireHeader `json:"headers"`
}

type wireLinks struct {
	Self *wireLink `json:"self,omitempty"`
	Next *wireLink `json:"next,omitempty"`
}

type wireCollection struct {
	TotalCount int            `json:"totalCount"`
	Items      []any          `json:"items"`
	Links      wireLinks      `json:"links"`
	Attributes wireAttributes `json:"attributes"`
}

type wireCompanyProfile struct {
	TenantID    string         `json:"tenantId"`
	Domain      string         `json:"domain"`
	CompanyName string         `json:"companyName"`
	Attributes  wireAttributes `json:"attributes"`
}

type wireCustomer struct {
	ID                    string             `json:"id"`
	CommerceID            string             `json:"commerceId"`
	CompanyProfile        wireCompanyProfile `json:"companyProfile"`
	RelationshipToPartner string             `json:"relationshipToPartner"`
	AllowDelegatedAccess  bool               `json:"allowDelegatedAccess"`
	Links                 wireLinks          `json:"links"`
	Attributes            wireAttributes     `json:"attributes"`
}

type wireLineItem struct {
	LineItemNumber int    `json:"lineItemNumber"`
	OfferID        string `json:"offerId"`
	SubscriptionID string `json:"subscriptionId,omitempty"`
	FriendlyName   string `json:"friendlyName"`
	Quantity       int    `json:"quantity"`
}

type wireOrder struct {
	ID                  string         `json:"id"`
	AlternateID         string         `json:"alternateId"`
	ReferenceCustomerID string         `json:"referenceCustomerId"`
	BillingCycle        string         `json:"billingCycle"`
	CurrencyCode        string         `json:"currencyCode"`
	LineItems           []wireLineItem `json:"lineItems"`
	CreationDate        string         `json:"creationDate"`
	Status              string         `json:"status"`
	Links               wireLinks      `json:"links"`
	Attributes          wireAttributes `json:"attributes"`
}

type wireOrderRef struct {
	ID          string `json:"id"`
	LineItemID  string `json:"lineItemId"`
	AlternateID string `json:"alternateId"`
}

type wireEntitlement struct {
	ReferenceOrder       wireOrderRef      `json:"referenceOrder"`
	ProductID            string            `json:"productId"`
	SkuID                string            `json:"skuId"`
	Quantity             int               `json:"quantity"`
	EntitlementType      string            `json:"entitlementType"`
	FulfillmentState     string            `json:"fulfillmentState"`
	IncludedEntitlements []wireEntitlement `json:"includedEntitlements"`
	Attributes           wireAttributes    `json:"attributes"`
}

type wireAuditRecord struct {
	ID              string         `json:"id"`
	CustomerID      string         `json:"customerId"`
	CustomerName    string         `json:"customerName"`
	OperationType   string         `json:"operationType"`
	OperationDate   string         `json:"operationDate"`
	OperationStatus string         `json:"operationStatus"`
	Attributes      wireAttributes `json:"attributes"`
}

type wireTokenV1 struct {
	TokenType    string `json:"token_type"`
	ExpiresIn    string `json:"expires_in"`
	ExtExpiresIn string `json:"ext_expires_in"`
	ExpiresOn    string `json:"expires_on"`
	NotBefore    string `json:"not_before"`
	Resource     string `json:"resource"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token,omitempty"`
}

type wireTokenV2 struct {
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	ExtExpiresIn int64  `json:"ext_expires_in"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token,omitempty"`
}

type wireTokenError struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	ErrorCodes       []int  `json:"error_codes"`
	Timestamp        string `json:"timestamp"`
	TraceID          string `json:"trace_id"`
	CorrelationID    string `json:"correlation_id"`
}
