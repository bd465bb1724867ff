package migrations_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/internal/pgtest"
)

// TestWriteFunctionsPlanWithTheirArguments: every SECURITY DEFINER plpgsql function (what the job
// writes through) runs its statements with custom plans, whatever the session's settings: the
// job no longer sets plan_cache_mode for its sessions, which a pooler would not keep. A
// migration that replaces one of these functions restates the setting (012_pooler.sql).
func TestWriteFunctionsPlanWithTheirArguments(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	rows, err := db.Pool.Query(context.Background(), `
		SELECT p.oid::regprocedure::text FROM pg_proc p
		WHERE p.pronamespace = 'retention'::regnamespace AND p.prosecdef
		  AND p.prolang = (SELECT oid FROM pg_language WHERE lanname = 'plpgsql')
		  AND NOT coalesce('plan_cache_mode=force_custom_plan' = ANY (p.proconfig), false)
		ORDER BY 1`)
	require.NoError(t, err)
	missing, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Empty(t, missing, "add SET plan_cache_mode = force_custom_plan to these functions")
	require.Positive(t, countOf(t, db, `SELECT count(*) FROM pg_proc
		WHERE pronamespace = 'retention'::regnamespace AND 'plan_cache_mode=force_custom_plan' = ANY (proconfig)`))
}

// TestStartRunNamesTheLockHolder: start_run may run on another connection than the lock's (the
// lock lives in a transaction that stays open for the run); it names the server process that
// holds the lock, which must hold it now and be a session of the caller's role.
func TestStartRunNamesTheLockHolder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)
	caller, other := testRole(t, db), testRole(t, db)
	_, err := db.Pool.Exec(ctx, "GRANT USAGE ON SCHEMA retention TO "+caller+", "+other)
	require.NoError(t, err)

	// other holds shard 0 of 1's lock in an open transaction.
	lock := connectAs(t, db, other)
	tx, err := lock.Begin(ctx)
	require.NoError(t, err)
	var lockPID int32
	require.NoError(t, tx.QueryRow(ctx, `SELECT pg_backend_pid() FROM (SELECT pg_advisory_xact_lock(1380275269, 65536)) l`).Scan(&lockPID))

	conn := connectAs(t, db, caller)
	start := `SELECT run_id FROM retention.start_run(0, 1, 'retention.sessions', '{}', 'h', 1, 'v', $1)`
	var ownPID int32
	require.NoError(t, conn.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&ownPID))
	_, err = conn.Exec(ctx, start, ownPID)
	require.ErrorContains(t, err, "does not hold the run lock of shard 0 of 1", "a process that holds no lock")
	_, err = conn.Exec(ctx, start, lockPID)
	require.ErrorContains(t, err, "does not hold the run lock of shard 0 of 1 in a session of role "+caller,
		"the lock is held, but by a session of a role the caller is not a member of")
	_, err = conn.Exec(ctx, `SELECT * FROM retention.start_run(0, 1, 'retention.sessions', '{}', 'h', 1, 'v')`)
	require.ErrorContains(t, err, "does not hold the run lock", "the old start_run checks the caller's own process")
	require.Zero(t, countOf(t, db, `SELECT count(*) FROM retention.runs`))

	_, err = db.Pool.Exec(ctx, "GRANT "+other+" TO "+caller)
	require.NoError(t, err)
	var run int64
	require.NoError(t, conn.QueryRow(ctx, start, lockPID).Scan(&run))
	require.Equal(t, 1, countOf(t, db, `SELECT count(*) FROM retention.run_keys WHERE run_id = $1 AND lock_pid = $2`, run, lockPID),
		"the run's claims check the process that holds the lock")

	// The lock ends with its transaction: the run is then found dead by the next start, which
	// the old start_run, on the connection holding the lock, can still make.
	require.NoError(t, tx.Rollback(ctx))
	_, err = lock.Exec(ctx, `SELECT pg_advisory_lock(1380275269, 65536)`)
	require.NoError(t, err)
	var recovered []int64
	require.NoError(t, lock.QueryRow(ctx, `SELECT recovered FROM retention.start_run(0, 1, 'retention.sessions', '{}', 'h', 1, 'v')`).Scan(&recovered))
	require.Equal(t, []int64{run}, recovered)
}

// testRole creates a login role for the test, dropped when it ends.
func testRole(t *testing.T, db *pgtest.Database) string {
	t.Helper()
	var suffix [4]byte
	_, err := rand.Read(suffix[:])
	require.NoError(t, err)
	name := "rt_pooler_" + hex.EncodeToString(suffix[:])
	_, err = db.Pool.Exec(context.Background(), "CREATE ROLE "+name+" LOGIN")
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, stmt := range []string{"DROP OWNED BY " + name, "DROP ROLE " + name} {
			if _, err := db.Pool.Exec(ctx, stmt); err != nil {
				t.Errorf("drop the test's role: %s: %v", stmt, err)
				return
			}
		}
	})
	return name
}

// connectAs connects to db as role, until the test ends.
func connectAs(t *testing.T, db *pgtest.Database, role string) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(db.URL)
	require.NoError(t, err)
	cfg.User = role
	conn, err := pgx.ConnectConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func countOf(t *testing.T, db *pgtest.Database, sql string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, db.Pool.QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}
