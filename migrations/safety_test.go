package migrations_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/tern/v2/migrate"
	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/internal/pgtest"
	"github.com/convai-retention/retention/migrations"
)

// A max_age under one hour is refused, saying why: '30' is 30 seconds to PostgreSQL.
func TestPolicyMaxAgeAtLeastOneHour(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)
	for _, age := range []string{"30", "1 microsecond", "59 minutes 59.999999 seconds", "00:30:00"} {
		_, err := db.Pool.Exec(ctx, `INSERT INTO retention.policies (character_id, max_age) VALUES ('c', $1)`, age)
		require.ErrorContains(t, err, "is under one hour: a bare number is seconds in PostgreSQL", age)
	}
	_, err := db.Pool.Exec(ctx, `INSERT INTO retention.policies (character_id, max_age) VALUES ('c', '1 hour'), (NULL, '30 days')`)
	require.NoError(t, err)
	_, err = db.Pool.Exec(ctx, `UPDATE retention.policies SET max_age = '30' WHERE character_id IS NULL`)
	require.ErrorContains(t, err, `max_age '00:00:30' is under one hour`)

	// With the trigger off, the CHECK still holds the rule.
	tx, err := db.Pool.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx) //nolint:errcheck // the test's own transaction
	_, err = tx.Exec(ctx, `ALTER TABLE retention.policies DISABLE TRIGGER policies_max_age_floor`)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `UPDATE retention.policies SET max_age = '1 second'`)
	require.ErrorContains(t, err, "policies_max_age_at_least_one_hour")

	var n int
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT count(*) FROM retention.policies WHERE max_age < '1 hour'`).Scan(&n))
	require.Zero(t, n)
}

// A database holding a policy under one hour is not migrated: the operator is told which.
func TestMigrationRefusesShortPolicies(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.NewEmpty(t)
	conn, err := pgx.Connect(ctx, db.URL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "CREATE SCHEMA retention")
	require.NoError(t, err)
	m, err := migrate.NewMigrator(ctx, conn, migrations.VersionTable)
	require.NoError(t, err)
	require.NoError(t, m.LoadMigrations(migrations.FS()))
	require.NoError(t, m.MigrateTo(ctx, 5))
	_, err = conn.Exec(ctx, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '30'), ('ok', '7 days')`)
	require.NoError(t, err)

	_, _, err = migrations.Migrate(ctx, conn)
	require.ErrorContains(t, err, "max_age values under one hour: policy 1 (the default): max_age '00:00:30'")
	v, err := m.GetCurrentVersion(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 5, v, "nothing of 006 applied")

	_, err = conn.Exec(ctx, `UPDATE retention.policies SET max_age = '30 days' WHERE character_id IS NULL`)
	require.NoError(t, err)
	_, to, err := migrations.Migrate(ctx, conn)
	require.NoError(t, err)
	require.Equal(t, migrations.Latest(), to)
}
