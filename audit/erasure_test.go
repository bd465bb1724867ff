package audit_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/audit"
	"github.com/convai-retention/retention/convai/convaitest"
	"github.com/convai-retention/retention/job"
)

// An erasure claim's leaf (retention.claim/v3) is the database's byte for byte, with the
// request's terms and a session the source did not know (no last activity).
func TestErasureClaimContentMatchesTheDatabase(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	b.exec(t, `INSERT INTO retention.runs (id, cutoff, source) OVERRIDING SYSTEM VALUE VALUES (5, now(), 'x')`)
	var req, claim int64
	require.NoError(t, b.pool.QueryRow(ctx, `INSERT INTO retention.erasure_requests (character_id, session_id, reason, requested_by)
		VALUES ('c,1:é', NULL, 'not sealed', 'dpo: é,') RETURNING id`).Scan(&req))
	require.NoError(t, b.pool.QueryRow(ctx, `
		INSERT INTO retention.claims (run_id, character_id, max_age, session_ids, last_active_at, erasure_request_id)
		VALUES (5, 'c,1:é', NULL, ARRAY['s-1', 'never-stored'], ARRAY[now() - interval '2 days', NULL], $1)
		RETURNING id`, req).Scan(&claim))
	b.exec(t, `INSERT INTO retention.outcomes (claim_id, ord, character_id, session_id, status, attempts, http_status) VALUES
		($1, 1, 'c,1:é', 's-1', 'deleted', 1, 200), ($1, 2, 'c,1:é', 'never-stored', 'deleted', 1, 200)`, claim)

	c := b.claim(t, claim)
	require.NotNil(t, c.Erasure)
	require.Equal(t, req, c.Erasure.ID)
	var want []byte
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT retention.claim_content($1)`, claim).Scan(&want))
	require.Equal(t, string(want), string(audit.ClaimContent(c)))
	require.Contains(t, string(want), "18:retention.claim/v3,")
	require.NotContains(t, string(want), "not sealed", "the reason stays out of the leaf")

	sessions, err := audit.ParseClaimContent(want)
	require.NoError(t, err)
	require.Len(t, sessions, 2)
	require.Equal(t, "never-stored", sessions[1].SessionID)
	require.Equal(t, "deleted", sessions[1].Status)
	require.Equal(t, "c,1:é", sessions[1].CharacterID)
	require.Equal(t, audit.LeafSession{CharacterID: "c,1:é", SessionID: "never-stored", Status: "deleted",
		CompletedAtMicros: sessions[1].CompletedAtMicros, RunID: "5", ClaimID: sessions[1].ClaimID,
		ErasureRequestID: sessions[1].ErasureRequestID}, sessions[1])
	require.NotEmpty(t, sessions[1].ErasureRequestID)

	// Without the v3 tag the same bytes are not a leaf.
	_, err = audit.ParseClaimContent([]byte("18:retention.claim/v4,"))
	require.Error(t, err)
}

// A run's erasure claims are sealed: editing the request's terms afterwards (its due time, who
// asked) breaks the leaf; its reason can be redacted without breaking anything.
func TestErasureRequestTermsAreSealed(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, c := range characters(2) {
		b.seedSessions(t, c, 3, 1)
	}
	b.exec(t, `INSERT INTO retention.erasure_requests (character_id, reason) VALUES ($1, 'ticket 9: Jane Doe')`, characters(2)[0])
	a := newAPI(t, convaitest.Options{})
	sum, err := a.run(t, b.pool, job.Shard{})
	require.NoError(t, err)
	require.Len(t, sum.Erasure.Completed, 1)
	res := verifyLog(t, b, "")
	require.True(t, res.Intact(), "%v", res.Problems)

	b.tamper(t, `UPDATE retention.erasure_requests SET reason = 'ticket 9 (name redacted)'`)
	res = verifyLog(t, b, "")
	require.True(t, res.Intact(), "the reason is not sealed: %v", res.Problems)

	b.tamper(t, `UPDATE retention.erasure_requests SET due_at = due_at + interval '1 year'`)
	res = verifyLog(t, b, "")
	require.False(t, res.Intact())
	require.Contains(t, kinds(res), audit.LeafEdited)
}
