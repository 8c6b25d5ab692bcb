package pc

import (
	"context"

	"github.com/google/uuid"
)

type ctxKey int

const (
	requestIDKey ctxKey = iota
	correlationIDKey
)

// WithRequestID sets the MS-RequestId of the next logical call made with ctx
// (the first page of a list), reused on every retry of that call. The caller
// can so record the id before the call is sent.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey, id)
}

// WithCorrelationID sets the MS-CorrelationId of calls made with ctx, tying
// them together for support (tipreaper uses one per customer reaped).
func WithCorrelationID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, correlationIDKey, id)
}

// NewGUID returns a random (version 4) UUID string.
func NewGUID() string { return uuid.NewString() }

func requestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

func correlationIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(correlationIDKey).(string)
	return id
}
