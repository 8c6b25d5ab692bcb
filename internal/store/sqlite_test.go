package store_test

import (
	"testing"

	"github.com/tipreaper/tipreaper/internal/store/storetest"
)

func TestSQLite(t *testing.T) {
	storetest.Run(t, storetest.SQLite, storetest.MultiInstance())
}
