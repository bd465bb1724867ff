package pgrows_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/convai-retention/retention/internal/pgrows"
	"github.com/convai-retention/retention/internal/pgtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(pgtest.Wrap(m)) }

func TestEach(t *testing.T) {
	t.Parallel()
	db := pgtest.NewEmpty(t)
	ctx := context.Background()

	t.Run("ScansEveryRowInOrder", func(t *testing.T) {
		t.Parallel()
		var n int64
		var s string
		var got []string
		err := pgrows.Each(ctx, db.Pool, "read numbers", `SELECT n, 'x' || n FROM generate_series(1, $1::int) AS n`,
			[]any{3}, []any{&n, &s}, func() { got = append(got, s) })
		require.NoError(t, err)
		require.Equal(t, []string{"x1", "x2", "x3"}, got)
		require.EqualValues(t, 3, n)
	})

	t.Run("WrapsTheQueryError", func(t *testing.T) {
		t.Parallel()
		err := pgrows.Each(ctx, db.Pool, "read nothing", `SELECT * FROM no_such_table`, nil, nil, func() {})
		require.ErrorContains(t, err, "read nothing: ")
		var pgErr *pgconn.PgError
		require.ErrorAs(t, err, &pgErr)
		require.Equal(t, "42P01", pgErr.Code)
	})

	t.Run("WrapsARowError", func(t *testing.T) {
		t.Parallel()
		var n int64
		err := pgrows.Each(ctx, db.Pool, "divide", `SELECT 1 / (2 - n) FROM generate_series(1, 3) AS n`, nil,
			[]any{&n}, func() {})
		require.ErrorContains(t, err, "divide: ")
		var pgErr *pgconn.PgError
		require.ErrorAs(t, err, &pgErr)
		require.Equal(t, "22012", pgErr.Code)
	})
}

func TestStrings(t *testing.T) {
	t.Parallel()
	db := pgtest.NewEmpty(t)
	ctx := context.Background()

	got, err := pgrows.Strings(ctx, db.Pool, "read letters", `SELECT unnest($1::text[])`, []string{"b", "a"})
	require.NoError(t, err)
	require.Equal(t, []string{"b", "a"}, got)

	got, err = pgrows.Strings(ctx, db.Pool, "read none", `SELECT 'a' WHERE false`)
	require.NoError(t, err)
	require.Empty(t, got)

	_, err = pgrows.Strings(ctx, db.Pool, "read nulls", `SELECT NULL::text`)
	require.ErrorContains(t, err, "read nulls: ", "a NULL cannot be a string")
}
