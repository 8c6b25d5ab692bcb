package store_test

import (
	"testing"

	"github.com/tipreaper/tipreaper/internal/store/storetest"
)

func TestPostgres(t *testing.T) {
	storetest.Run(t, storetest.Postgres, storetest.MultiInstance())
}
