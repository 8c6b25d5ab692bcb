package store_test

import (
	"testing"

	"go.uber.org/goleak"
)

// The stores start goroutines (the pgx pool's health checks, database/sql's connection opener); Close
// must stop them all.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
