// Package pgrows reads query results the way every reader of the retention schema does (the
// store, the report, the audit): run the query, scan each row, and wrap any error with what was
// being read.
package pgrows

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Querier is what a pool, a connection and a transaction offer.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Each runs sql with args on q, scans each row into scans and calls each after the scan. An
// error, the query's or a row's, is wrapped with what.
func Each(ctx context.Context, q Querier, what, sql string, args, scans []any, each func()) error {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if _, err := pgx.ForEachRow(rows, scans, func() error { each(); return nil }); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// Strings runs sql, which selects one text column, with args on q and returns its values. An
// error, the query's or a row's, is wrapped with what.
func Strings(ctx context.Context, q Querier, what, sql string, args ...any) ([]string, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}
