package pgtest_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/convai-retention/retention/internal/pgtest"
	"github.com/convai-retention/retention/migrations"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(pgtest.Wrap(m))
}

func TestNewGivesEachTestItsOwnDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	names := make(chan string, 2)
	// The parent waits for both parallel subtests before it reads the channel.
	t.Run("pair", func(t *testing.T) {
		for _, character := range []string{"a", "b"} {
			t.Run(character, func(t *testing.T) {
				t.Parallel()
				db := pgtest.New(t)
				names <- db.Name

				_, err := db.Pool.Exec(ctx,
					"INSERT INTO retention.sessions (character_id, session_id, last_active_at) VALUES ($1, 's1', now())",
					character)
				require.NoError(t, err)

				var seen []string
				rows, err := db.Pool.Query(ctx, "SELECT character_id FROM retention.sessions")
				require.NoError(t, err)
				seen, err = pgx.CollectRows(rows, pgx.RowTo[string])
				require.NoError(t, err)
				require.Equal(t, []string{character}, seen, "a database must not see another test's rows")
			})
		}
	})
	close(names)
	a, b := <-names, <-names
	require.NotEmpty(t, a)
	require.NotEqual(t, a, b)
}

func TestNewHasTheLatestSchema(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)

	v, err := migrations.Check(ctx, db.Pool)
	require.NoError(t, err)
	require.Equal(t, migrations.Latest(), v)

	var current string
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT current_database()").Scan(&current))
	require.Equal(t, db.Name, current)
}

func TestURLConnectsToTheSameDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)

	conn, err := pgx.Connect(ctx, db.URL)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })

	var current string
	require.NoError(t, conn.QueryRow(ctx, "SELECT current_database()").Scan(&current))
	require.Equal(t, db.Name, current)
}

func TestNewEmptyHasNoSchema(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.NewEmpty(t)

	_, err := migrations.Check(ctx, db.Pool)
	require.ErrorIs(t, err, migrations.ErrSchemaMissing)

	// And it can be migrated, as `retention migrate` would.
	conn, err := pgx.Connect(ctx, db.URL)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	from, to, err := migrations.Migrate(ctx, conn)
	require.NoError(t, err)
	require.Equal(t, int32(0), from)
	require.Equal(t, migrations.Latest(), to)
}

func TestDatabaseIsDroppedWhenTheTestEnds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	observer := pgtest.NewEmpty(t)

	var (
		name      string
		lingering *pgx.Conn
	)
	t.Run("owner", func(t *testing.T) {
		db := pgtest.New(t)
		name = db.Name
		// A session left open must not stop the drop.
		var err error
		lingering, err = pgx.Connect(ctx, db.URL)
		require.NoError(t, err)
	})
	if lingering != nil {
		t.Cleanup(func() { _ = lingering.Close(context.Background()) })
	}

	var exists bool
	require.NoError(t, observer.Pool.QueryRow(ctx,
		"SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists))
	require.False(t, exists, "database %s still exists after its test ended", name)
}
