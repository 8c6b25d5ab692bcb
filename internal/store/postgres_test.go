package store_test

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tipreaper/tipreaper/internal/store"
	"github.com/tipreaper/tipreaper/internal/store/storetest"
)

func TestPostgres(t *testing.T) {
	storetest.Run(t, storetest.Postgres, storetest.MultiInstance())
}

func TestPostgresMigrationsStartedTogetherBothSucceed(t *testing.T) {
	url := storetest.PostgresURL(t)
	stores := make([]store.Store, 3)
	for i := range stores {
		s, err := store.Open(t.Context(), url, "")
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		stores[i] = s
	}
	errs := make([]error, len(stores))
	var wg sync.WaitGroup
	for i, s := range stores {
		wg.Go(func() { errs[i] = s.Migrate(t.Context()) })
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	keeps, err := stores[0].Keeps(t.Context())
	require.NoError(t, err)
	require.Empty(t, keeps)
}
