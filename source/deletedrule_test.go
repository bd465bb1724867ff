package source_test

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/job"
	"github.com/convai-retention/retention/migrations"
	"github.com/convai-retention/retention/source"
)

// TestDeletedRuleIsOne: "this session is deleted" is written five times for speed (the page's
// probe, the claim's filter, the rows verify checks, the sync's merge, and retention.is_deleted,
// which the views and the report use). They agree on every state a session can be in: never tried, failed,
// deleted (v2 and v1), and deleted then found present at Convai by a verification (v2 and v1).
// The v2 verification names its deletion by migrations.DeletionID, so a SQL copy of the deletion
// ID that drifted from the Go one would not see the refutation.
func TestDeletedRuleIsOne(t *testing.T) {
	t.Parallel()
	s, pool := store(t, 0)
	ctx := context.Background()
	exec := func(sql string, args ...any) {
		t.Helper()
		_, err := pool.Exec(ctx, sql, args...)
		require.NoError(t, err)
	}
	exec(`INSERT INTO retention.sessions
		SELECT 'c', id, now() - interval '2 days' FROM unnest(ARRAY['new', 'failed', 'v2', 'v2-refuted', 'v1', 'v1-refuted']) AS id`)
	exec(`INSERT INTO retention.runs (id, cutoff, source, status, finished_at) OVERRIDING SYSTEM VALUE
		VALUES (50, now(), 'x', 'running', NULL)`)
	exec(`INSERT INTO retention.claims (run_id, character_id, max_age, session_ids, last_active_at)
		VALUES (50, 'c', '1 day', ARRAY['failed', 'v2', 'v2-refuted'], ARRAY[now(), now(), now()])`)
	exec(`INSERT INTO retention.outcomes (claim_id, ord, character_id, session_id, status, attempts)
		SELECT max(id), o, 'c', (ARRAY['failed', 'v2', 'v2-refuted'])[o], (ARRAY['failed', 'deleted', 'deleted'])[o], 1
		FROM retention.claims, generate_series(1, 3) o GROUP BY o`)
	exec(`INSERT INTO retention.deletions_v1 (run_id, character_id, session_id, last_active_at, max_age)
		VALUES (50, 'c', 'v1', now(), '1 day'), (50, 'c', 'v1-refuted', now(), '1 day')`)
	exec(`UPDATE retention.deletions_v1 SET status = 'deleted', attempts = 1, completed_at = now()`)
	exec(`UPDATE retention.runs SET status = 'succeeded', finished_at = now() WHERE id = 50`)
	// The deletion IDs as Go computes them: v2 and v2-refuted are the claim's 2nd and 3rd sessions.
	var claimID, v1ID int64
	require.NoError(t, pool.QueryRow(ctx, `SELECT max(id) FROM retention.claims`).Scan(&claimID))
	require.NoError(t, pool.QueryRow(ctx, `SELECT id FROM retention.deletions_v1 WHERE session_id = 'v1'`).Scan(&v1ID))
	v2ID, v2RefutedID := migrations.DeletionID(claimID, 2), migrations.DeletionID(claimID, 3)
	exec(`INSERT INTO retention.verify_runs (id, status, finished_at) OVERRIDING SYSTEM VALUE VALUES (90, 'finished', now())`)
	exec(`INSERT INTO retention.verification_batches (seq, verify_id, character_id, listed_at, count, prev_hash, hash)
		VALUES (1, 90, 'c', now(), 2, sha256(''::bytea), sha256(''::bytea))`)
	exec(`INSERT INTO retention.verifications (batch_seq, pos, deletion_id, character_id, session_id, result)
		VALUES (1, 1, $1, 'c', 'v2-refuted', 'present')`, v2RefutedID)
	exec(`INSERT INTO retention.verifications (batch_seq, pos, deletion_id, character_id, session_id, result)
		SELECT 1, 2, d.id, 'c', 'v1-refuted', 'present' FROM retention.deletions_v1 d WHERE d.session_id = 'v1-refuted'`)
	want := []string{"v1", "v2"}

	// is_deleted, as the views and the report see it.
	rows, err := pool.Query(ctx, `SELECT session_id FROM retention.sessions WHERE retention.is_deleted(character_id, session_id) ORDER BY 1`)
	require.NoError(t, err)
	var byFunction []string
	for rows.Next() {
		var id string
		require.NoError(t, rows.Scan(&id))
		byFunction = append(byFunction, id)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, want, byFunction)

	// The page's probe.
	recs, err := s.Page(ctx, job.Cursor{}, time.Now(), 100)
	require.NoError(t, err)
	var byPage []string
	for _, r := range recs {
		if r.Deleted {
			byPage = append(byPage, r.SessionID)
		}
	}
	sort.Strings(byPage)
	require.Equal(t, want, byPage)

	// The rows verify checks: the deleted ones no verification refuted, with their deletion IDs.
	vr, _, err := s.StartVerify(ctx, job.VerifyStart{Host: "test"})
	require.NoError(t, err)
	toVerify := map[string]int64{}
	require.NoError(t, vr.Deleted(ctx, "c", job.VerifyScope{}, func(d job.DeletedSession) error {
		toVerify[d.SessionID] = d.DeletionID
		return nil
	}))
	require.Equal(t, map[string]int64{"v1": v1ID, "v2": v2ID}, toVerify)

	// The claim's filter: it claims everything else.
	rs, _, err := s.StartRun(ctx, job.RunStart{Shard: job.Shard{Count: 1}, Source: "x"})
	require.NoError(t, err)
	defer rs.Close(ctx) //nolint:errcheck // test cleanup
	claim, err := rs.Claim(ctx, chunk(t, pool, "new", "failed", "v2", "v2-refuted", "v1", "v1-refuted"))
	require.NoError(t, err)
	require.Equal(t, []string{"new", "failed", "v2-refuted", "v1-refuted"}, claim.SessionIDs)

	// The sync's merge: sessions the set no longer has come back from the app's source, unless
	// they are deleted.
	exec(`CREATE TABLE public.app AS SELECT character_id, session_id, last_active_at FROM retention.sessions`)
	exec(`DELETE FROM retention.sessions`)
	rel, err := source.ParseRelation("public.app")
	require.NoError(t, err)
	y, err := source.NewSyncer(ctx, pool, rel, source.SyncOptions{Full: true})
	require.NoError(t, err)
	rep, err := y.Sync(ctx, pool)
	require.NoError(t, err)
	require.EqualValues(t, 4, rep.Added)
	require.EqualValues(t, 2, rep.AlreadyDeleted, "v1 and v2")
	rows, err = pool.Query(ctx, `SELECT session_id FROM retention.sessions ORDER BY 1`)
	require.NoError(t, err)
	bySync, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Equal(t, []string{"failed", "new", "v1-refuted", "v2-refuted"}, bySync)
}
