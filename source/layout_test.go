package source_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/job"
)

// TestShardLayoutsNeverOverlap: while a run of one shard layout holds its lock, a run of another
// layout is refused, also when it calls start_run itself on a connection holding its own shard
// lock (skipping the store's own check of the locks), and two starts at once cannot both pass.
func TestShardLayoutsNeverOverlap(t *testing.T) {
	t.Parallel()
	s, pool := store(t, 4)
	ctx := context.Background()
	whole, _, err := s.StartRun(ctx, job.RunStart{Shard: job.Shard{Index: 0, Count: 1}, Source: "retention.sessions"})
	require.NoError(t, err)
	defer whole.Close(ctx)

	_, _, err = s.StartRun(ctx, job.RunStart{Shard: job.Shard{Index: 0, Count: 2}, Source: "retention.sessions"})
	require.ErrorIs(t, err, job.ErrLocked)

	// The database refuses it too.
	conn, err := pgx.Connect(ctx, pool.Config().ConnConfig.ConnString())
	require.NoError(t, err)
	defer conn.Close(ctx)
	var ok bool
	require.NoError(t, conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(1380275269, (2 << 16) | 0)`).Scan(&ok))
	require.True(t, ok)
	_, err = conn.Exec(ctx, `SELECT * FROM retention.start_run(0, 2, 'retention.sessions', '{}', 'thief', 1, 'x')`)
	require.ErrorContains(t, err, "runs of another shard layout are in progress")
	require.Equal(t, 1, count(t, pool, `SELECT count(*) FROM retention.runs WHERE status = 'running'`))

	// Once the first run is gone, the other layout may start.
	require.NoError(t, whole.Close(ctx))
	_, err = conn.Exec(ctx, `SELECT * FROM retention.start_run(0, 2, 'retention.sessions', '{}', 'next', 1, 'x')`)
	require.NoError(t, err)
}

// TestRecordKeepsAChunkWhenAnotherClaimRecordedASession: two live runs claimed the same session
// (a claim does not check the shard of its character) and both got a confirmation. The first
// outcome stands; the second run's other outcomes are kept, and its confirmation of the shared
// session is written failed with a note, instead of failing the whole record.
func TestRecordKeepsAChunkWhenAnotherClaimRecordedASession(t *testing.T) {
	t.Parallel()
	s, pool := store(t, 4)
	ctx := context.Background()
	a, _, err := s.StartRun(ctx, job.RunStart{Shard: job.Shard{Index: 0, Count: 2}, Source: "retention.sessions"})
	require.NoError(t, err)
	defer a.Close(ctx)
	b, _, err := s.StartRun(ctx, job.RunStart{Shard: job.Shard{Index: 1, Count: 2}, Source: "retention.sessions"})
	require.NoError(t, err)
	defer b.Close(ctx)

	ca, err := a.Claim(ctx, chunk(t, pool, "s1", "s2"))
	require.NoError(t, err)
	cb, err := b.Claim(ctx, chunk(t, pool, "s2", "s3"))
	require.NoError(t, err)
	require.Equal(t, []string{"s2", "s3"}, cb.SessionIDs)

	require.NoError(t, a.Record(ctx, ca, []job.Outcome{{SessionID: "s1", Deleted: true, Attempts: 1, HTTPStatus: 200},
		{SessionID: "s2", Deleted: true, Attempts: 1, HTTPStatus: 200}}))
	require.NoError(t, b.Record(ctx, cb, []job.Outcome{{SessionID: "s2", Deleted: true, Attempts: 1, HTTPStatus: 200},
		{SessionID: "s3", Deleted: true, Attempts: 1, HTTPStatus: 200}}))

	require.Equal(t, 3, count(t, pool, `SELECT count(*) FROM retention.outcomes WHERE status = 'deleted'`))
	require.Equal(t, 1, count(t, pool, `SELECT count(*) FROM retention.outcomes
		WHERE claim_id = $1 AND session_id = 's2' AND status = 'failed' AND error LIKE 'confirmed again, but another claim already recorded%'`, cb.ID))
	require.Equal(t, 1, count(t, pool, `SELECT count(*) FROM retention.outcomes WHERE claim_id = $1 AND session_id = 's3' AND status = 'deleted'`, cb.ID))
	require.Equal(t, 1, count(t, pool, `SELECT count(*) FROM retention.unsealed WHERE claim_id = $1`, cb.ID), "the claim is sealed like any other")
}
