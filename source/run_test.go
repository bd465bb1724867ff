package source_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/internal/pgtest"
	"github.com/convai-retention/retention/job"
	"github.com/convai-retention/retention/policy"
	"github.com/convai-retention/retention/source"
)

// store is a Store on a fresh database whose retention.sessions holds n sessions of character
// "c", expired under a default policy of one day.
func store(t *testing.T, n int) (*source.Store, *pgxpool.Pool) {
	t.Helper()
	db := pgtest.New(t)
	ctx := context.Background()
	_, err := db.Pool.Exec(ctx, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '1 day')`)
	require.NoError(t, err)
	_, err = db.Pool.Exec(ctx, `INSERT INTO retention.sessions
		SELECT 'c', 's' || i, now() - interval '2 days' FROM generate_series(1, $1::int) i`, n)
	require.NoError(t, err)
	rel, err := source.ParseRelation(source.DefaultRelation)
	require.NoError(t, err)
	src, err := source.Inspect(ctx, db.Pool, rel)
	require.NoError(t, err)
	return source.New(db.Pool, src, source.Config{WriteRetry: time.Second}), db.Pool
}

// chunk is a chunk of character "c" with the sessions' last activity as the source has it (a
// session not in the source gets two days ago).
func chunk(t *testing.T, pool *pgxpool.Pool, ids ...string) job.Chunk {
	t.Helper()
	c := job.Chunk{CharacterID: "c", Policy: policy.Policy{ID: 1, MaxAge: "1 day"}}
	for _, id := range ids {
		at := time.Now().Add(-48 * time.Hour)
		_ = pool.QueryRow(context.Background(), `SELECT last_active_at FROM retention.sessions WHERE character_id = 'c' AND session_id = $1`, id).Scan(&at)
		c.Sessions = append(c.Sessions, policy.Record{CharacterID: "c", SessionID: id, LastActive: at})
	}
	return c
}

func count(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}

// The contract of a run's handle: one run per shard; a claim leaves out held and deleted
// sessions; outcomes are written once, in the claim's order; the finish closes what has no
// outcome, seals everything, and the run row is final.
func TestRunStoreContract(t *testing.T) {
	t.Parallel()
	s, pool := store(t, 6)
	ctx := context.Background()
	rs, info, err := s.StartRun(ctx, job.RunStart{Shard: job.Shard{Count: 1}, Source: source.DefaultRelation})
	require.NoError(t, err)
	defer rs.Close(ctx) //nolint:errcheck // closed below too; safe twice
	require.Positive(t, info.ID)
	require.WithinDuration(t, time.Now(), info.Cutoff, time.Minute)

	_, _, err = s.StartRun(ctx, job.RunStart{Shard: job.Shard{Count: 1}, Source: "x"})
	require.ErrorIs(t, err, job.ErrLocked, "one run per shard")

	_, err = pool.Exec(ctx, `INSERT INTO retention.holds (character_id, session_id, reason) VALUES ('c', 's2', 'kept')`)
	require.NoError(t, err)
	claim, err := rs.Claim(ctx, chunk(t, pool, "s1", "s2", "s3"))
	require.NoError(t, err)
	require.Equal(t, []string{"s1", "s3"}, claim.SessionIDs, "the held session is left out")
	held, err := rs.Held(ctx, "c", []string{"s1", "s2"})
	require.NoError(t, err)
	require.Equal(t, []string{"s2"}, held)
	require.Equal(t, 2, count(t, pool, `SELECT count(*) FROM retention.deletions WHERE status = 'pending'`))

	// Outcomes must match the claim, one per session, in its order.
	require.Error(t, rs.Record(ctx, claim, []job.Outcome{{SessionID: "s1", Deleted: true}}))
	require.Error(t, rs.Record(ctx, claim, []job.Outcome{{SessionID: "s3", Deleted: true}, {SessionID: "s1", Deleted: true}}))
	outs := []job.Outcome{{SessionID: "s1", Deleted: true, Attempts: 1, HTTPStatus: 200}, {SessionID: "s3", Attempts: 5, HTTPStatus: 503, Error: "HTTP 503"}}
	require.NoError(t, rs.Record(ctx, claim, outs))
	require.NoError(t, rs.Record(ctx, claim, outs), "a retried record changes nothing")
	require.Equal(t, 1, count(t, pool, `SELECT count(*) FROM retention.deletions WHERE status = 'deleted'`))
	require.Equal(t, 1, count(t, pool, `SELECT count(*) FROM retention.deletions WHERE status = 'failed' AND error = 'HTTP 503'`))
	require.Zero(t, count(t, pool, `SELECT count(*) FROM retention.sessions WHERE session_id = 's1'`), "a confirmed session leaves the built-in source")
	require.Equal(t, 1, count(t, pool, `SELECT count(*) FROM retention.sessions WHERE session_id = 's3'`), "a failed one stays")

	// A deleted session is never claimed again; a failed one may be.
	again, err := rs.Claim(ctx, chunk(t, pool, "s1", "s3", "s4", "s5"))
	require.NoError(t, err)
	require.Equal(t, []string{"s3", "s4", "s5"}, again.SessionIDs)
	_, err = rs.Claim(ctx, chunk(t, pool, "s6", "s6"))
	require.Error(t, err, "a session twice in one claim")

	require.NoError(t, rs.Seal(ctx))
	require.Equal(t, 1, count(t, pool, `SELECT size FROM retention.log_head`))

	// The finish closes the claim without outcomes, seals it, and writes the row as given.
	fin, err := rs.Finish(ctx, job.RunEnd{Status: job.StatusPartial, Selected: 5, Deleted: 1, Failed: 4, Skipped: 1,
		SkippedByReason: map[string]int64{"held": 1}})
	require.NoError(t, err)
	require.EqualValues(t, 3, fin.Closed)
	require.EqualValues(t, 2, fin.Checkpoint.TreeSize)
	require.Len(t, fin.Checkpoint.Root, 64)
	require.False(t, fin.Checkpoint.Signed)
	require.Equal(t, 1, count(t, pool, `SELECT count(*) FROM retention.runs WHERE id = $1 AND status = 'partial'
		AND finished_at IS NOT NULL AND failed = 4 AND skipped_by_reason = '{"held": 1}'`, info.ID))
	require.Equal(t, 3, count(t, pool, `SELECT count(*) FROM retention.deletions WHERE run_id = $1
		AND status = 'failed' AND error = 'no outcome could be recorded; the session will be sent again'`, info.ID))
	require.Equal(t, 1, count(t, pool, `SELECT count(*) FROM retention.checkpoints WHERE size = 2 AND run_id = $1`, info.ID))

	// A finished run's handle writes nothing more.
	_, err = rs.Claim(ctx, chunk(t, pool, "s6"))
	require.ErrorContains(t, err, "finished")
	_, err = rs.Finish(ctx, job.RunEnd{Status: job.StatusSucceeded})
	require.ErrorContains(t, err, "finished")
	require.NoError(t, rs.Close(ctx))
	require.NoError(t, rs.Close(ctx), "safe twice")

	// The lock is free again.
	next, _, err := s.StartRun(ctx, job.RunStart{Shard: job.Shard{Count: 1}, Source: "x"})
	require.NoError(t, err)
	require.NoError(t, next.Close(ctx))
}

// A claim after the lock's connection died writes nothing and says the lock was lost.
func TestClaimAfterTheLockIsLost(t *testing.T) {
	t.Parallel()
	s, pool := store(t, 2)
	ctx := context.Background()
	rs, info, err := s.StartRun(ctx, job.RunStart{Shard: job.Shard{Count: 1}, Source: source.DefaultRelation})
	require.NoError(t, err)
	defer rs.Close(ctx) //nolint:errcheck // the connection is gone; nothing to release
	var killed bool
	require.NoError(t, pool.QueryRow(ctx, `SELECT pg_terminate_backend(lock_pid) FROM retention.run_keys WHERE run_id = $1`, info.ID).Scan(&killed))
	require.True(t, killed)
	require.Eventually(t, func() bool { return rs.CheckLock(ctx) != nil }, 10*time.Second, 20*time.Millisecond)
	require.ErrorIs(t, rs.CheckLock(ctx), job.ErrLockLost)
	require.Eventually(t, func() bool {
		// This database's run locks only: other tests hold theirs in databases of their own.
		return count(t, pool, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = 1380275269
			AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`) == 0
	}, 10*time.Second, 20*time.Millisecond)
	_, err = rs.Claim(ctx, chunk(t, pool, "s1"))
	require.ErrorIs(t, err, job.ErrLockLost)
	require.Zero(t, count(t, pool, `SELECT count(*) FROM retention.claims`))
}
