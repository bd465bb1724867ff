package main

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/cmd/retention/exitcode"
	"github.com/convai-retention/retention/internal/pgtest"
	"github.com/convai-retention/retention/migrations"
)

func schemaVersion(t *testing.T, db *pgtest.Database) int32 {
	t.Helper()
	var v int32
	require.NoError(t, db.Pool.QueryRow(context.Background(), `SELECT version FROM `+migrations.VersionTable).Scan(&v))
	return v
}

func TestSchemaMissing(t *testing.T) {
	t.Parallel()
	db := pgtest.NewEmpty(t)
	env := map[string]string{"DATABASE_URL": db.URL, "CONVAI_API_KEY": testKey}
	for _, args := range [][]string{{"run"}, {"run", "--dry-run"}} {
		r := run(t, env, args...)
		require.Equal(t, exitcode.Usage, r.code, "%v: %s", args, r)
		require.Contains(t, r.stderr, "run retention migrate", "%v", args)
	}
	var n int
	require.NoError(t, db.Pool.QueryRow(context.Background(),
		`SELECT count(*) FROM pg_namespace WHERE nspname = 'retention'`).Scan(&n))
	require.Zero(t, n, "run does not create the schema")
}

func TestSchemaOutdated(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.exec(t, `UPDATE `+migrations.VersionTable+` SET version = version - 1`)
	r := b.run(t, "run")
	require.Equal(t, exitcode.Usage, r.code, "%s", r)
	require.Contains(t, r.stderr, fmt.Sprintf("needs %d: run retention migrate", migrations.Latest()))
	require.Zero(t, b.count(t, `SELECT count(*) FROM retention.runs`))
}

func TestMigrateTwice(t *testing.T) {
	t.Parallel()
	db := pgtest.NewEmpty(t)
	env := map[string]string{"DATABASE_URL": db.URL}
	latest := migrations.Latest()

	r := run(t, env, "migrate")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Equal(t, fmt.Sprintf("schema version %d (was 0)\n", latest), r.stdout)
	require.Contains(t, r.stderr, "schema migrated")

	r = run(t, env, "migrate", "--log-level", "debug")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Equal(t, fmt.Sprintf("schema version %d (was %d)\n", latest, latest), r.stdout)
	require.Contains(t, r.stderr, "schema is up to date")
	require.Equal(t, latest, schemaVersion(t, db))

	r = run(t, env, "run", "--dry-run")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
}

func TestMigrateConcurrently(t *testing.T) {
	t.Parallel()
	db := pgtest.NewEmpty(t)
	env := map[string]string{"DATABASE_URL": db.URL}
	results := make([]result, 3)
	var wg sync.WaitGroup
	for i := range results {
		wg.Go(func() { results[i] = run(t, env, "migrate") })
	}
	wg.Wait()
	fresh := 0
	for _, r := range results {
		require.Equal(t, exitcode.OK, r.code, "%s", r)
		if r.stdout == fmt.Sprintf("schema version %d (was 0)\n", migrations.Latest()) {
			fresh++
		}
	}
	require.Equal(t, 1, fresh, "exactly one migrate applied the migrations")
	require.Equal(t, migrations.Latest(), schemaVersion(t, db))
	var tables int
	require.NoError(t, db.Pool.QueryRow(context.Background(), `
		SELECT count(*) FROM pg_tables WHERE schemaname = 'retention'
		  AND tablename IN ('policies', 'holds', 'sessions', 'runs', 'deletions_v1', 'claims', 'outcomes', 'log_leaves')`).Scan(&tables))
	require.Equal(t, 8, tables)
}
