package audit_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/audit"
)

// chain records 30 outcomes in chunks of 10 (seals 1..30, deletion IDs in seal order) and
// checks the untouched chain is intact.
func chain(t *testing.T) (*bundle, []int64) {
	t.Helper()
	b := setup(t)
	ids := b.outcomes(t, "victim", 30, 10)
	res := verify(t, b.pool)
	require.True(t, res.Intact(), "%v", res.Problems)
	require.EqualValues(t, 30, res.Sealed)
	for i, id := range ids {
		require.EqualValues(t, i+1, b.seal(t, id).Seq)
	}
	return b, ids
}

// requireFirst checks that verify found exactly n problems and that the first is of kind at
// seal seq (0: none) and deletion id (0: none).
func requireFirst(t *testing.T, res *audit.Result, n int, kind audit.Kind, seq, deletionID int64) {
	t.Helper()
	require.False(t, res.Intact())
	require.ErrorIs(t, res.Err(), audit.ErrChainBroken)
	require.EqualValues(t, n, res.ProblemCount, "%v", res.Problems)
	require.Len(t, res.Problems, n)
	p := res.Problems[0]
	require.Equal(t, kind, p.Kind, "%v", res.Problems)
	require.Equal(t, seq, p.Seq, "%v", p)
	require.Equal(t, deletionID, p.DeletionID, "%v", p)
}

func TestTamperEditedRow(t *testing.T) {
	t.Parallel()
	b, ids := chain(t)
	b.tamper(t, `UPDATE retention.deletions_v1 SET status = 'deleted', error = NULL WHERE id = $1`, ids[14]) // seal 15 was failed
	res := verify(t, b.pool)
	requireFirst(t, res, 1, audit.Edited, 15, ids[14])
	require.Contains(t, res.Err().Error(), "seal 15 (deletion")
}

func TestTamperEditedTimestampOnly(t *testing.T) {
	t.Parallel()
	b, ids := chain(t)
	b.tamper(t, `UPDATE retention.deletions_v1 SET completed_at = completed_at - interval '1 microsecond' WHERE id = $1`, ids[3])
	requireFirst(t, verify(t, b.pool), 1, audit.Edited, 4, ids[3])
}

func TestTamperRemovedDeletionRow(t *testing.T) {
	t.Parallel()
	b, ids := chain(t)
	b.tamper(t, `DELETE FROM retention.deletions_v1 WHERE id = $1`, ids[9])
	requireFirst(t, verify(t, b.pool), 1, audit.DeletionRemoved, 10, ids[9])
}

func TestTamperRemovedRowAndSeal(t *testing.T) {
	t.Parallel()
	b, ids := chain(t)
	b.tamper(t, fmt.Sprintf(`DELETE FROM retention.seals WHERE deletion_id = %[1]d; DELETE FROM retention.deletions_v1 WHERE id = %[1]d`, ids[19]))
	res := verify(t, b.pool)
	requireFirst(t, res, 1, audit.SealsRemoved, 20, 0)
	require.Contains(t, res.Problems[0].Detail, "seal 20 is missing")
}

// Removing a seal and renumbering the rest leaves no gap, but the link is broken.
func TestTamperRemovedAndRenumbered(t *testing.T) {
	t.Parallel()
	b, ids := chain(t)
	b.tamper(t, fmt.Sprintf(`
		DELETE FROM retention.seals WHERE deletion_id = %[1]d;
		DELETE FROM retention.deletions_v1 WHERE id = %[1]d;
		UPDATE retention.seals SET seq = seq + 1000000 WHERE seq > 20;
		UPDATE retention.seals SET seq = seq - 1000001 WHERE seq > 1000000;
		UPDATE retention.seal_head SET seq = 29`, ids[19]))
	requireFirst(t, verify(t, b.pool), 1, audit.LinkBroken, 20, ids[20])
}

// A forged outcome put into the middle, with a seal that links correctly to the one before it
// and the later seals renumbered, is found: the next seal links past it.
func TestTamperInsertedInTheMiddle(t *testing.T) {
	t.Parallel()
	b, ids := chain(t)
	b.tamper(t, fmt.Sprintf(`
		INSERT INTO retention.deletions_v1 (run_id, character_id, session_id, status, attempts, http_status,
		                                 last_active_at, max_age, completed_at)
		SELECT run_id, character_id, 'forged', 'deleted', 1, 200, last_active_at, max_age, completed_at
		FROM retention.deletions_v1 WHERE id = %d;
		UPDATE retention.seals SET seq = seq + 1000000 WHERE seq > 12;
		UPDATE retention.seals SET seq = seq - 999999 WHERE seq > 1000000;
		INSERT INTO retention.seals (seq, deletion_id, prev_hash, hash)
		SELECT 13, d.id, p.hash, sha256(p.hash || retention.seal_content(d))
		FROM retention.deletions_v1 d, retention.seals p
		WHERE d.session_id = 'forged' AND p.seq = 12;
		UPDATE retention.seal_head SET seq = 31`, ids[11]))
	var forged int64
	require.NoError(t, b.pool.QueryRow(t.Context(), `SELECT id FROM retention.deletions_v1 WHERE session_id = 'forged'`).Scan(&forged))
	res := verify(t, b.pool)
	requireFirst(t, res, 1, audit.Inserted, 13, 0)
	require.Contains(t, res.Problems[0].Detail, "seal 13 was inserted: seal 14 links past it to seal 12")
}

func TestTamperInsertedWithoutSeal(t *testing.T) {
	t.Parallel()
	b, ids := chain(t)
	b.tamper(t, `
		INSERT INTO retention.deletions_v1 (run_id, character_id, session_id, status, last_active_at, max_age, completed_at)
		SELECT run_id, character_id, 'forged', 'deleted', last_active_at, max_age, completed_at
		FROM retention.deletions_v1 WHERE id = $1`, ids[0])
	var forged int64
	require.NoError(t, b.pool.QueryRow(t.Context(), `SELECT id FROM retention.deletions_v1 WHERE session_id = 'forged'`).Scan(&forged))
	requireFirst(t, verify(t, b.pool), 1, audit.Unsealed, 0, forged)
}

func TestTamperRemovedTail(t *testing.T) {
	t.Parallel()
	b, ids := chain(t)
	b.tamper(t, fmt.Sprintf(`DELETE FROM retention.seals WHERE seq > 27; DELETE FROM retention.deletions_v1 WHERE id IN (%d, %d, %d)`, ids[27], ids[28], ids[29]))
	res := verify(t, b.pool)
	requireFirst(t, res, 1, audit.HeadMismatch, 30, 0)
	require.EqualValues(t, 27, res.Head.Seq)
}

func TestTamperEditedSealHash(t *testing.T) {
	t.Parallel()
	b, ids := chain(t)
	b.tamper(t, `UPDATE retention.seals SET hash = sha256(hash) WHERE seq = 5`)
	res := verify(t, b.pool)
	requireFirst(t, res, 2, audit.Edited, 5, ids[4])
	require.Equal(t, audit.LinkBroken, res.Problems[1].Kind)
	require.EqualValues(t, 6, res.Problems[1].Seq)
}

// An attacker who edits a row and recomputes every later seal and the head leaves a chain that
// is consistent in itself: only a head noted down earlier shows the rewrite.
func TestTamperRewrittenChainNeedsACheckpoint(t *testing.T) {
	t.Parallel()
	b, ids := chain(t)
	noted := verify(t, b.pool).Head
	require.EqualValues(t, 30, noted.Seq)
	b.tamper(t, fmt.Sprintf(`
		UPDATE retention.deletions_v1 SET error = NULL, status = 'deleted' WHERE id = %d;
		DO $$
		DECLARE
			prev bytea;
			s record;
		BEGIN
			SELECT hash INTO prev FROM retention.seals WHERE seq = 2;
			FOR s IN SELECT seals.seq, d FROM retention.seals JOIN retention.deletions_v1 d ON d.id = seals.deletion_id
			         WHERE seals.seq >= 3 ORDER BY seals.seq LOOP
				UPDATE retention.seals SET prev_hash = prev, hash = sha256(prev || retention.seal_content(s.d)) WHERE seq = s.seq
				RETURNING hash INTO prev;
			END LOOP;
			UPDATE retention.seal_head SET hash = prev;
		END
		$$`, ids[2]))
	res := verify(t, b.pool)
	require.True(t, res.Intact(), "a consistent rewrite passes on its own: %v", res.Problems)
	require.NotEqual(t, noted.Hash, res.Head.Hash)

	res = verify(t, b.pool, noted)
	requireFirst(t, res, 1, audit.CheckpointMismatch, 30, 0)
	require.Contains(t, res.Problems[0].Detail, "was rewritten")

	// An older checkpoint, before the rewritten seal, still holds.
	require.True(t, verify(t, b.pool, b.seal(t, ids[1])).Intact())
}
