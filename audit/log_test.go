package audit_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/audit"
	"github.com/convai-retention/retention/convai/convaitest"
	"github.com/convai-retention/retention/job"
)

// logged is a database after one real run over 3 characters of 12 expired sessions each (chunks
// of 5, so 9 leaves), some failed by the stand-in endpoint, with the run's checkpoint signed.
func logged(t *testing.T) (*bundle, string, []byte) {
	t.Helper()
	b := setup(t)
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '30 days')`)
	for _, c := range characters(3) {
		b.seedSessions(t, c, 12, 31)
	}
	a := newAPI(t, convaitest.Options{FailRate: 0.3, Seed: 3})
	_, err := a.run(t, b.pool, job.Shard{})
	require.NoError(t, err)
	vkey, note, size := signHead(t, b)
	require.EqualValues(t, 9, size)
	res := verifyLog(t, b, vkey, note)
	require.True(t, res.Intact(), "%v", res.Problems)
	return b, vkey, note
}

// signHead signs the log's head with a new key, as a run's checkpoint is signed, and returns
// the verifier key, the signed note and the tree size.
func signHead(t *testing.T, b *bundle) (vkey string, note []byte, size int64) {
	t.Helper()
	skey, vkey, err := audit.GenerateKey()
	require.NoError(t, err)
	signer, err := audit.NewSigner(skey)
	require.NoError(t, err)
	var root []byte
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT size, root FROM retention.log_head`).Scan(&size, &root))
	n, err := signer.Sign(size, root)
	require.NoError(t, err)
	return vkey, []byte(n), size
}

func verifyLog(t *testing.T, b *bundle, vkey string, notes ...[]byte) *audit.Result {
	t.Helper()
	res, err := audit.Verify(context.Background(), b.pool, audit.Options{BatchSize: 4, VerifierKeys: []string{vkey}, SignedCheckpoints: notes})
	require.NoError(t, err)
	return res
}

func kinds(res *audit.Result) []audit.Kind {
	var ks []audit.Kind
	for _, p := range res.Problems {
		ks = append(ks, p.Kind)
	}
	return ks
}

// claim reads a claim, its outcomes and, for an erasure claim, its request's terms, as
// audit.ClaimContent takes them.
func (b *bundle) claim(t *testing.T, id int64) audit.Claim {
	t.Helper()
	ctx := context.Background()
	c := audit.Claim{ID: id}
	var erID *int64
	var er audit.ErasureTerms
	var erBy *string
	require.NoError(t, b.pool.QueryRow(ctx, `
		SELECT c.run_id, c.character_id, c.policy_id, c.policy_character_id, c.max_age, c.requested_at, c.session_ids,
		       c.last_active_at, e.id, e.session_id, e.requested_by, e.requested_at, e.due_at
		FROM retention.claims c LEFT JOIN retention.erasure_requests e ON e.id = c.erasure_request_id
		WHERE c.id = $1`, id).Scan(&c.RunID, &c.CharacterID, &c.PolicyID, &c.PolicyCharacterID, &c.MaxAge, &c.RequestedAt,
		&c.SessionIDs, &c.LastActiveAt, &erID, &er.SessionID, &erBy, &er.RequestedAt, &er.DueAt))
	if erID != nil {
		er.ID, er.RequestedBy = *erID, *erBy
		c.Erasure = &er
	}
	rows, err := b.pool.Query(ctx, `SELECT ord, session_id, status, attempts, http_status, error, completed_at
		FROM retention.outcomes WHERE claim_id = $1 ORDER BY ord`, id)
	require.NoError(t, err)
	for rows.Next() {
		var o audit.Outcome
		require.NoError(t, rows.Scan(&o.Ord, &o.SessionID, &o.Status, &o.Attempts, &o.HTTPStatus, &o.Error, &o.CompletedAt))
		c.Outcomes = append(c.Outcomes, o)
	}
	require.NoError(t, rows.Err())
	return c
}

// The Go encoding of a leaf is the database's, byte for byte, also for NULLs, commas, colons,
// non-ASCII text and odd intervals.
func TestClaimContentMatchesTheDatabase(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	b.exec(t, `INSERT INTO retention.runs (id, cutoff, source) OVERRIDING SYSTEM VALUE VALUES (5, now(), 'x')`)
	var claim int64
	require.NoError(t, b.pool.QueryRow(ctx, `
		INSERT INTO retention.claims (run_id, character_id, policy_id, policy_character_id, max_age, session_ids, last_active_at)
		VALUES (5, 'c,1:é', 7, 'c,1:é', '1 mon 2 days 03:04:05.000006', ARRAY['s-1', 'ß:,-'], ARRAY[now() - interval '40 days', 'infinity'])
		RETURNING id`).Scan(&claim))
	b.exec(t, `INSERT INTO retention.outcomes (claim_id, ord, character_id, session_id, status, attempts, http_status, error) VALUES
		($1, 1, 'c,1:é', 's-1', 'deleted', 1, 200, NULL),
		($1, 2, 'c,1:é', 'ß:,-', 'failed', 5, NULL, 'HTTP 400: "bad" ,:- é')`, claim)

	c := b.claim(t, claim)
	var want []byte
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT retention.claim_content($1)`, claim).Scan(&want))
	require.Equal(t, string(want), string(audit.ClaimContent(c)))
	require.Equal(t, pgtype.Infinity, c.LastActiveAt[1].InfinityModifier)

	sessions, err := audit.ParseClaimContent(want)
	require.NoError(t, err)
	require.Len(t, sessions, 2)
	require.Equal(t, audit.LeafSession{CharacterID: "c,1:é", SessionID: "ß:,-", Status: "failed",
		CompletedAtMicros: sessions[1].CompletedAtMicros, RunID: "5", ClaimID: sessions[1].ClaimID}, sessions[1])
	for _, bad := range []string{"", "3:abc", "18:retention.claim/v2,", "x:y,", "99999999999999:a,"} {
		_, err := audit.ParseClaimContent([]byte(bad))
		require.Error(t, err, bad)
	}
}

func TestLogTamperOutcomeEdited(t *testing.T) {
	t.Parallel()
	b, vkey, note := logged(t)
	b.tamper(t, `UPDATE retention.outcomes SET status = 'deleted', error = NULL WHERE status = 'failed'`)
	res := verifyLog(t, b, vkey, note)
	require.False(t, res.Intact())
	require.Contains(t, kinds(res), audit.LeafEdited)
	require.Contains(t, kinds(res), audit.CheckpointMismatch, "the rebuilt tree no longer extends the checkpoint kept outside")
}

func TestLogTamperOutcomeRemovedOrForged(t *testing.T) {
	t.Parallel()
	b, vkey, note := logged(t)
	b.tamper(t, `DELETE FROM retention.outcomes WHERE (claim_id, ord) = (SELECT min(claim_id), 1 FROM retention.outcomes)`)
	res := verifyLog(t, b, vkey, note)
	require.Contains(t, kinds(res), audit.LeafEdited)

	b2, vkey2, note2 := logged(t)
	// A forged claim with a deleted outcome, written behind the functions' back.
	b2.tamper(t, `INSERT INTO retention.claims (run_id, character_id, max_age, session_ids, last_active_at)
		SELECT 1, 'char-00', '30 days', '{forged}', ARRAY[now()]`)
	b2.tamper(t, `INSERT INTO retention.outcomes (claim_id, ord, character_id, session_id, status, attempts)
		SELECT max(id), 1, 'char-00', 'forged', 'deleted', 1 FROM retention.claims`)
	res = verifyLog(t, b2, vkey2, note2)
	require.Equal(t, []audit.Kind{audit.UnsealedClaim}, kinds(res))
}

func TestLogTamperRewrittenTree(t *testing.T) {
	t.Parallel()
	b, vkey, note := logged(t)
	// An owner edits an outcome, then rebuilds every stored hash, root and the head to match:
	// the database is consistent with itself again, but not with the checkpoint kept outside.
	b.tamper(t, `UPDATE retention.outcomes SET attempts = attempts + 1 WHERE (claim_id, ord) = (SELECT min(claim_id), 1 FROM retention.outcomes)`)
	b.tamper(t, `DELETE FROM retention.log_hashes`)
	b.tamper(t, `DELETE FROM retention.log_roots`)
	b.tamper(t, `DELETE FROM retention.checkpoints`)
	b.tamper(t, `UPDATE retention.log_leaves SET hash = sha256('\x00'::bytea || retention.claim_content(claim_id))`)
	b.tamper(t, `UPDATE retention.log_head SET size = 0, root = sha256(''::bytea)`)
	b.tamper(t, `INSERT INTO retention.unsealed SELECT claim_id, sha256('\x00'::bytea || retention.claim_content(claim_id)) FROM retention.log_leaves`)
	b.tamper(t, `DELETE FROM retention.log_leaves`)
	var size int64
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT size FROM retention.seal()`).Scan(&size))
	require.EqualValues(t, 9, size)

	res := verifyLog(t, b, vkey)
	require.True(t, res.Intact(), "without the outside checkpoint the rewrite is consistent: %v", res.Problems)
	res = verifyLog(t, b, vkey, note)
	require.Equal(t, []audit.Kind{audit.CheckpointMismatch}, kinds(res))
}

func TestLogTamperHashesAndRoots(t *testing.T) {
	t.Parallel()
	b, vkey, note := logged(t)
	b.tamper(t, `UPDATE retention.log_hashes SET hash = sha256(hash) WHERE id = 2`)
	b.tamper(t, `UPDATE retention.log_head SET size = 8`)
	res := verifyLog(t, b, vkey, note)
	require.Contains(t, kinds(res), audit.HashMismatch)
	require.Contains(t, kinds(res), audit.RootMismatch)

	b2, vkey2, note2 := logged(t)
	b2.tamper(t, `DELETE FROM retention.log_leaves WHERE idx = 8`)
	res = verifyLog(t, b2, vkey2, note2)
	require.Contains(t, kinds(res), audit.CheckpointMismatch, "the checkpoint names more leaves than the log has")
	require.Contains(t, kinds(res), audit.UnsealedClaim)

	// A checkpoint signed by another key is not evidence.
	b3, _, note3 := logged(t)
	_, other, err := audit.GenerateKey()
	require.NoError(t, err)
	res = verifyLog(t, b3, other, note3)
	require.Contains(t, kinds(res), audit.BadSignature)
}

// TestOpenCheckpointQuotesNoKey: the signing key given where a verifier key belongs (the wrong
// file passed to --key) is refused without quoting it.
func TestOpenCheckpointQuotesNoKey(t *testing.T) {
	t.Parallel()
	skey, _, err := audit.GenerateKey()
	require.NoError(t, err)
	signer, err := audit.NewSigner(skey)
	require.NoError(t, err)
	note, err := signer.Sign(1, make([]byte, 32))
	require.NoError(t, err)
	_, err = audit.OpenCheckpoint([]byte(note), skey)
	require.ErrorContains(t, err, "verifier key 1 is malformed")
	// PRIVATE+KEY+<name>+<hash>+<key>: the key's base64 may itself hold '+', so split by count.
	fields := strings.SplitN(skey, "+", 5)
	require.Len(t, fields, 5)
	secretPart := fields[4]
	require.GreaterOrEqual(t, len(secretPart), 40)
	require.NotContains(t, err.Error(), secretPart[:16])
}
