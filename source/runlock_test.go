package source

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/internal/pgbouncertest"
	"github.com/convai-retention/retention/internal/pgtest"
	"github.com/convai-retention/retention/job"
	"github.com/convai-retention/retention/policy"
)

// testLease is the lock lease of these tests: short, so that its end can be waited for.
const testLease = 3 * time.Second

// TestRunLockLease: directly and through PgBouncer in transaction and in session mode, a run's
// lock lives in a transaction that one server session keeps for the run (no other run gets
// it, however often they try), holds back no vacuum, and is renewed while the run lives. When
// the run stops renewing (a frozen process, a lost node), the server ends the lock's session
// once the lease has passed, and the next run recovers the dead one; the frozen run then finds
// its lock lost and can claim nothing.
func TestRunLockLease(t *testing.T) {
	t.Parallel()
	for _, mode := range []pgbouncertest.Mode{"direct", pgbouncertest.Transaction, pgbouncertest.Session} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := pgtest.New(t)
			_, err := db.Pool.Exec(ctx, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '1 day');
				INSERT INTO retention.sessions SELECT 'c', 's' || i, now() - interval '2 days' FROM generate_series(1, 3) i`)
			require.NoError(t, err)
			url := db.URL
			if mode != "direct" {
				url = pgbouncertest.Start(t, mode).URL(db.URL)
			}
			s := leaseStore(t, url)

			rs, info, err := s.StartRun(ctx, job.RunStart{Shard: job.Shard{Count: 1}, Source: DefaultRelation})
			require.NoError(t, err)
			run := rs.(*Run)
			t.Cleanup(func() { _ = run.Close(context.Background()) })
			var lockPID int32
			require.NoError(t, db.Pool.QueryRow(ctx, `SELECT lock_pid FROM retention.run_keys WHERE run_id = $1`, info.ID).Scan(&lockPID))
			require.Equal(t, run.lock.pid, lockPID)

			for range 20 {
				_, _, err := s.StartRun(ctx, job.RunStart{Shard: job.Shard{Count: 1}, Source: "x"})
				require.ErrorIs(t, err, job.ErrLocked, "one run per shard, whichever server session the pooler picks")
			}
			var state string
			var xmin *int64
			require.NoError(t, db.Pool.QueryRow(ctx, `SELECT state, backend_xmin::text::bigint FROM pg_stat_activity WHERE pid = $1`,
				lockPID).Scan(&state, &xmin))
			require.Equal(t, "idle in transaction", state)
			require.Nil(t, xmin, "the lock's transaction holds no snapshot between statements")

			// Renewed: the lock is still held, by the same session, after twice its lease.
			waitFor(t, "twice the lease passed since the lock was taken", func() bool {
				return count(t, db.Pool, `SELECT count(*) FROM pg_stat_activity WHERE pid = $1
					AND now() - xact_start > 2 * $2::interval`, lockPID, testLease) == 1
			})
			require.Equal(t, []int32{lockPID}, lockHolders(t, db.Pool))
			require.NoError(t, rs.CheckLock(ctx))
			claim, err := rs.Claim(ctx, leaseChunk("s1"))
			require.NoError(t, err)
			require.Equal(t, []string{"s1"}, claim.SessionIDs)

			// Frozen: nothing uses the lock's connection any more.
			run.lock.mu.Lock()
			waitFor(t, "the server ended the lock's session", func() bool { return len(lockHolders(t, db.Pool)) == 0 })
			next, nextInfo, err := s.StartRun(ctx, job.RunStart{Shard: job.Shard{Count: 1}, Source: "x"})
			require.NoError(t, err)
			t.Cleanup(func() { _ = next.Close(context.Background()) })
			require.Equal(t, []int64{info.ID}, nextInfo.Recovered, "the next run finds the frozen one dead")
			run.lock.mu.Unlock()

			require.ErrorIs(t, rs.CheckLock(ctx), job.ErrLockLost)
			_, err = rs.Claim(ctx, leaseChunk("s2"))
			require.Error(t, err, "the frozen run's credentials no longer open its run")
			require.NoError(t, rs.Close(ctx))
			require.Equal(t, 1, count(t, db.Pool, `SELECT count(*) FROM retention.claims`), "only the claim made while the lock was held")

			// The next run's lock goes as soon as it is closed.
			require.NoError(t, next.Close(ctx))
			require.Empty(t, lockHolders(t, db.Pool))
		})
	}
}

// leaseStore is a Store on url, with the job's statement mode (no named prepared statements)
// and the test's short lease.
func leaseStore(t *testing.T, url string) *Store {
	t.Helper()
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(url)
	require.NoError(t, err)
	cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeCacheDescribe
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	rel, err := ParseRelation(DefaultRelation)
	require.NoError(t, err)
	src, err := Inspect(ctx, pool, rel)
	require.NoError(t, err)
	return New(pool, src, Config{WriteRetry: time.Second, LockLease: testLease})
}

// leaseChunk is a chunk of character "c" under the default policy.
func leaseChunk(ids ...string) job.Chunk {
	c := job.Chunk{CharacterID: "c", Policy: policy.Policy{ID: 1, MaxAge: "1 day"}}
	for _, id := range ids {
		c.Sessions = append(c.Sessions, policy.Record{CharacterID: "c", SessionID: id, LastActive: time.Now().Add(-48 * time.Hour)})
	}
	return c
}

// lockHolders returns the server processes holding a run lock in pool's database.
func lockHolders(t *testing.T, pool *pgxpool.Pool) []int32 {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT pid FROM pg_locks WHERE locktype = 'advisory'
		AND classid = $1::bigint::oid AND granted
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) ORDER BY pid`, lockClass)
	require.NoError(t, err)
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	require.NoError(t, err)
	return pids
}

func count(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}

// waitFor polls cond until it holds, for at most two minutes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		require.True(t, time.Now().Before(deadline), "gave up waiting until %s", what)
		time.Sleep(20 * time.Millisecond)
	}
}
