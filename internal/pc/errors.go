package pc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode"
)

// Error is the one error type of the client: an HTTP answer that was not a
// success, a transport failure, or an undecodable success. Callers branch on
// it with the Is* helpers, never on its text.
type Error struct {
	Op            string        // what was attempted: "delete customer 1234…"
	StatusCode    int           // HTTP status; 0 for a transport failure
	Code          string        // Partner Center error code (string or number on the wire)
	Description   string        // the server's description (secrets removed)
	RequestID     string        // MS-RequestId sent
	CorrelationID string        // MS-CorrelationId sent
	CV            string        // MS-CV received
	RetryAfter    time.Duration // for 429
	Err           error         // underlying transport or decoding error, if any
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Op)
	b.WriteString(": ")
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, "HTTP %d", e.StatusCode)
		if text := http.StatusText(e.StatusCode); text != "" {
			b.WriteString(" " + text)
		}
		if e.Code != "" {
			b.WriteString(", code " + e.Code)
		}
		if e.Description != "" {
			b.WriteString(": " + e.Description)
		}
		if e.Err != nil {
			b.WriteString(": " + e.Err.Error())
		}
	} else if e.Err != nil {
		b.WriteString(e.Err.Error())
	} else {
		b.WriteString("failed")
	}
	var ids []string
	if e.RequestID != "" {
		ids = append(ids, "MS-RequestId "+e.RequestID)
	}
	if e.CV != "" {
		ids = append(ids, "MS-CV "+e.CV)
	}
	if len(ids) > 0 {
		b.WriteString(" (" + strings.Join(ids, ", ") + ")")
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

func asError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// IsNotFound reports a 404.
func IsNotFound(err error) bool {
	e, ok := asError(err)
	return ok && e.StatusCode == http.StatusNotFound
}

// codeNoRelationship is what Partner Center answers (403) for a customer the
// partner no longer has a relationship with.
const codeNoRelationship = "20002"

// IsAlreadyGone reports that the customer no longer exists for this partner:
// a 404, or a 403 with code 20002. A DELETE answered so has had its effect.
func IsAlreadyGone(err error) bool {
	e, ok := asError(err)
	if !ok {
		return false
	}
	return e.StatusCode == http.StatusNotFound ||
		(e.StatusCode == http.StatusForbidden && e.Code == codeNoRelationship)
}

// IsThrottled reports a 429.
func IsThrottled(err error) bool {
	e, ok := asError(err)
	return ok && e.StatusCode == http.StatusTooManyRequests
}

// IsRetryable reports a failure that may pass later: a 5xx, a network error
// or a timeout. A cancelled context is not retryable.
func IsRetryable(err error) bool {
	e, ok := asError(err)
	if !ok {
		return false
	}
	if e.StatusCode >= 500 {
		return true
	}
	return e.StatusCode == 0 && e.Err != nil && !errors.Is(e.Err, context.Canceled) && !errors.Is(e.Err, errNotRetryable)
}

// IsUnauthorized reports a 401, or a 403 other than "no relationship".
func IsUnauthorized(err error) bool {
	e, ok := asError(err)
	if !ok {
		return false
	}
	return e.StatusCode == http.StatusUnauthorized ||
		(e.StatusCode == http.StatusForbidden && e.Code != codeNoRelationship)
}

// ErrorCode returns the Partner Center error code of err, "" unless *Error.
func ErrorCode(err error) string {
	if e, ok := asError(err); ok {
		return e.Code
	}
	return ""
}

// StatusCode returns the HTTP status of err, 0 unless *Error.
func StatusCode(err error) int {
	if e, ok := asError(err); ok {
		return e.StatusCode
	}
	return 0
}

// errNotRetryable marks transport failures that another attempt cannot fix
// (a refused certificate, a redirect we do not follow).
var errNotRetryable = errors.New("not retryable")

// errorBody is the union of the two error bodies of the contract: the
// business envelope {"code", "description", ...} and the throttling body
// {"statusCode", "message"}.
type errorBody struct {
	Code        json.RawMessage `json:"code"`
	Description string          `json:"description"`
	Message     string          `json:"message"`
}

// decodeErrorBody fills code and description from a non-2xx body. A body in
// neither form yields a short printable excerpt, so the status is never
// reported alone when the server said something.
func decodeErrorBody(body []byte) (code, description string) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return "", ""
	}
	var eb errorBody
	if trimmed[0] == '{' && json.Unmarshal(trimmed, &eb) == nil {
		code = rawScalar(eb.Code)
		description = eb.Description
		if description == "" {
			description = eb.Message
		}
		if code != "" || description != "" {
			return code, description
		}
	}
	return "", excerpt(trimmed)
}

// rawScalar renders a JSON string or number as a string ("20002" for both
// 20002 and "20002"); anything else is "".
func rawScalar(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return ""
	}
	switch {
	case raw[0] == '"':
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
	case raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9'):
		var n json.Number
		if json.Unmarshal(raw, &n) == nil {
			return n.String()
		}
	}
	return ""
}

// excerpt returns at most 200 printable characters of body.
func excerpt(body []byte) string {
	const max = 200
	s := strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return ' '
	}, string(body))
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > max {
		s = string(r[:max]) + "…"
	}
	return s
}
