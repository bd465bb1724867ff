package audit_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/audit"
	"github.com/convai-retention/retention/convai/convaitest"
	"github.com/convai-retention/retention/job"
)

// verified is a database with deletions of three characters, checked by a verify that found
// one of them back at Convai: a verification chain of three batches, intact.
func verified(t *testing.T) *bundle {
	t.Helper()
	b := setup(t)
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '30 days')`)
	for _, c := range characters(3) {
		b.seedSessions(t, c, 4, 31)
	}
	a := newAPI(t, convaitest.Options{})
	_, err := a.run(t, b.pool, job.Shard{})
	require.NoError(t, err)
	a.fake.AddSession("char-01", "char-01-2")
	a.live(t, b, characters(3)...)
	sum, err := a.verify(t, b.pool)
	require.NoError(t, err)
	require.EqualValues(t, 12, sum.Checked)
	require.EqualValues(t, 1, sum.Present)
	res := verifyLog(t, b, "")
	require.True(t, res.Intact(), "%v", res.Problems)
	require.EqualValues(t, 3, res.Verifications.Batches)
	require.EqualValues(t, 12, res.Verifications.Verifications)
	require.EqualValues(t, 3, res.Verifications.HeadSeq)
	return b
}

// The Go encoding of a batch is the database's, byte for byte, and its hash the stored one.
func TestVerificationContentMatchesTheDatabase(t *testing.T) {
	t.Parallel()
	b := verified(t)
	ctx := context.Background()
	var vb audit.VerificationBatch
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT seq, verify_id, character_id, listed_at, recorded_at, count, prev_hash, hash
		FROM retention.verification_batches WHERE seq = 2`).Scan(&vb.Seq, &vb.VerifyID, &vb.CharacterID, &vb.ListedAt,
		&vb.RecordedAt, &vb.Count, &vb.PrevHash, &vb.Hash))
	rows, err := b.pool.Query(ctx, `SELECT pos, deletion_id, character_id, session_id, result FROM retention.verifications
		WHERE batch_seq = 2 ORDER BY pos`)
	require.NoError(t, err)
	for rows.Next() {
		var v audit.Verification
		require.NoError(t, rows.Scan(&v.Pos, &v.DeletionID, &v.CharacterID, &v.SessionID, &v.Result))
		vb.Verifications = append(vb.Verifications, v)
	}
	require.NoError(t, rows.Err())
	var want []byte
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT retention.verification_content(2)`).Scan(&want))
	got := audit.VerificationContent(vb)
	require.Equal(t, string(want), string(got))
	sum := sha256.Sum256(append(bytes.Clone(vb.PrevHash), got...))
	require.Equal(t, vb.Hash, sum[:])
}

func TestVerificationChainTampering(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, sql string
		want      audit.Kind
	}{
		{"a present result turned absent", `UPDATE retention.verifications SET result = 'absent' WHERE result = 'present'`, audit.VerificationEdited},
		{"a row moved to another session", `UPDATE retention.verifications SET session_id = 'elsewhere' WHERE batch_seq = 1 AND pos = 1`, audit.VerificationEdited},
		{"a row's character changed (not in the content)", `UPDATE retention.verifications SET character_id = 'char-09' WHERE batch_seq = 1 AND pos = 1`, audit.VerificationEdited},
		{"a row removed", `DELETE FROM retention.verifications WHERE batch_seq = 2 AND pos = 1`, audit.VerificationEdited},
		{"a batch's time moved", `UPDATE retention.verification_batches SET listed_at = listed_at - interval '1 day' WHERE seq = 1`, audit.VerificationEdited},
		{"a batch in the middle removed", `DELETE FROM retention.verifications WHERE batch_seq = 2; DELETE FROM retention.verification_batches WHERE seq = 2`, audit.VerificationLinkBroken},
		{"the last batch removed", `DELETE FROM retention.verifications WHERE batch_seq = 3; DELETE FROM retention.verification_batches WHERE seq = 3`, audit.VerificationHeadMismatch},
		{"the head moved back", `UPDATE retention.verification_head SET seq = 1, hash = (SELECT hash FROM retention.verification_batches WHERE seq = 1)`, audit.VerificationHeadMismatch},
		{"a batch rehashed after an edit", `UPDATE retention.verifications SET result = 'absent' WHERE result = 'present';
			UPDATE retention.verification_batches b SET hash = sha256(b.prev_hash || retention.verification_content(b.seq))
			WHERE b.seq IN (SELECT batch_seq FROM retention.verifications WHERE session_id = 'char-01-2')`, audit.VerificationLinkBroken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := verified(t)
			b.tamper(t, tc.sql)
			res := verifyLog(t, b, "")
			require.False(t, res.Intact())
			require.Contains(t, kinds(res), tc.want, "%v", res.Problems)
		})
	}
}
