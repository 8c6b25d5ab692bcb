package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// StateCount is how many customers of an account are in a state.
type StateCount struct {
	Account string
	State   string
	Count   int
}

// countByStateSQL is the same for both stores: one aggregate over
// reaper_customers, so a scrape costs one query however many customers
// there are.
const countByStateSQL = `SELECT account, state, count(*) FROM reaper_customers
	GROUP BY account, state ORDER BY account, state`

func (s *postgresStore) CustomerCounts(ctx context.Context) ([]StateCount, error) {
	rows, err := s.pool.Query(ctx, countByStateSQL)
	if err != nil {
		return nil, fmt.Errorf("count customers by state: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (StateCount, error) {
		var c StateCount
		err := r.Scan(&c.Account, &c.State, &c.Count)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("count customers by state: %w", err)
	}
	return out, nil
}

func (s *sqliteStore) CustomerCounts(ctx context.Context) ([]StateCount, error) {
	rows, err := s.db.QueryContext(ctx, countByStateSQL)
	if err != nil {
		return nil, fmt.Errorf("count customers by state: %w", err)
	}
	out, err := collect(rows, func(r scanner) (StateCount, error) {
		var c StateCount
		err := r.Scan(&c.Account, &c.State, &c.Count)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("count customers by state: %w", err)
	}
	return out, nil
}
