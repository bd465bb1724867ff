package migrations_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/internal/pgtest"
	"github.com/convai-retention/retention/migrations"
)

// TestDeletionIDIsOne: the views that write the deletion ID in SQL (retention.deletions, and
// deletion_outcomes, which finds a row's leaf by dividing it) agree with migrations.DeletionID,
// for recorded and for pending sessions. The functions that write it (is_deleted, the claim, the
// sync) are held to it by source.TestDeletedRuleIsOne.
func TestDeletionIDIsOne(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)
	exec := func(sql string, args ...any) {
		t.Helper()
		_, err := db.Pool.Exec(ctx, sql, args...)
		require.NoError(t, err)
	}
	exec(`INSERT INTO retention.runs (id, cutoff, source) OVERRIDING SYSTEM VALUE VALUES (7, now(), 'x')`)
	// Two claims, so that the second's IDs are not the first's plus a small number.
	var claims []int64
	for range 2 {
		var id int64
		require.NoError(t, db.Pool.QueryRow(ctx, `
			INSERT INTO retention.claims (run_id, character_id, max_age, session_ids, last_active_at)
			VALUES (7, 'c', '1 day', ARRAY['a', 'b', 'c'], ARRAY[now(), now(), now()]) RETURNING id`).Scan(&id))
		claims = append(claims, id)
	}
	claim := claims[1]
	exec(`INSERT INTO retention.outcomes (claim_id, ord, character_id, session_id, status, attempts)
		VALUES ($1, 1, 'c', 'a', 'deleted', 1), ($1, 2, 'c', 'b', 'failed', 1)`, claim)
	exec(`INSERT INTO retention.log_leaves (idx, claim_id, hash) VALUES (0, $1, sha256(''::bytea))`, claim)

	type row struct {
		ID      int64
		Session string
		Status  string
		SealSeq *int64
	}
	rows, err := db.Pool.Query(ctx, `
		SELECT deletion_id, session_id, status, seal_seq FROM retention.deletion_outcomes
		WHERE deletion_id / $2 = $1 ORDER BY deletion_id`, claim, migrations.DeletionIDStride)
	require.NoError(t, err)
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[row])
	require.NoError(t, err)
	leaf := int64(1)
	require.Equal(t, []row{
		{migrations.DeletionID(claim, 1), "a", "deleted", &leaf},
		{migrations.DeletionID(claim, 2), "b", "failed", &leaf},
		{migrations.DeletionID(claim, 3), "c", "pending", &leaf}, // no outcome yet, the run is running
	}, got)

	var first int64
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT min(id) FROM retention.deletions WHERE run_id = 7`).Scan(&first))
	require.Equal(t, migrations.DeletionID(claims[0], 1), first)
	require.Less(t, migrations.DeletionID(claims[0], 10000), migrations.DeletionID(claims[1], 1),
		"a claim's 10,000 sessions stay below the next claim's IDs")
}
