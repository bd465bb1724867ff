package audit_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/audit"
	"github.com/convai-retention/retention/convai/convaitest"
	"github.com/convai-retention/retention/job"
	"github.com/convai-retention/retention/migrations"
	"github.com/convai-retention/retention/report"
)

// memoryLogged runs an end user's erasure (a character's memory and the end user's record)
// and a memory policy's deletion, and returns the database with their rows sealed.
func memoryLogged(t *testing.T) (*bundle, string, []byte) {
	t.Helper()
	b := setup(t)
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age, memory_max_age) VALUES ('c2', '400 days', '30 days')`)
	b.exec(t, `INSERT INTO retention.sessions (character_id, session_id, last_active_at, end_user_id) VALUES
		('c1', 's1', now(), 'u1'), ('c2', 's2', now(), 'u2')`)
	a := newAPI(t, convaitest.Options{})
	a.fake.AddSession("c1", "s1", time.Now())
	a.fake.AddSession("c2", "s2", time.Now())
	a.fake.AddMemory("c1", "u1", convaitest.Memory{ID: "m1", UpdatedAt: time.Now()})
	a.fake.AddMemory("c2", "u2", convaitest.Memory{ID: "m2", UpdatedAt: time.Now().Add(-40 * 24 * time.Hour)})
	a.fake.AddMemory("c2", "u2", convaitest.Memory{ID: "m3", UpdatedAt: time.Now()})
	b.exec(t, `INSERT INTO retention.end_user_requests (end_user_id, end_user_record, reason) VALUES ('u1', true, 'ticket 7')`)
	sum, err := a.run(t, b.pool, job.Shard{})
	require.NoError(t, err)
	require.Len(t, sum.Erasure.EndUsers.Completed, 1)
	require.EqualValues(t, 1, sum.MemoryRetention.Deleted)
	vkey, note, _ := signHead(t, b)
	return b, vkey, note
}

// Every memory erasure and memory deletion is a leaf of the log, sealed by the run that wrote
// it: the database's bytes (retention.memory_*_content) are the Go encoder's, so the log
// verifies whole.
func TestMemoryRecordsAreLeaves(t *testing.T) {
	t.Parallel()
	b, vkey, note := memoryLogged(t)
	require.EqualValues(t, 2, b.count(t, `SELECT count(*) FROM retention.memory_erasures`), "c1's memory, then the record")
	require.EqualValues(t, 1, b.count(t, `SELECT count(*) FROM retention.memory_deletions`))
	require.EqualValues(t, 3, b.count(t, `SELECT count(*) FROM retention.log_leaves WHERE claim_id IS NULL`))
	require.Zero(t, b.count(t, `SELECT count(*) FROM retention.unsealed`), "the run sealed them")

	res := verifyLog(t, b, vkey, note)
	require.True(t, res.Intact(), "%v", res.Problems)
	require.EqualValues(t, 3, res.Log.MemoryLeaves)
	require.Zero(t, res.Log.Queued)

	ctx := context.Background()
	ev, err := report.EndUser(ctx, b.pool, "u1")
	require.NoError(t, err)
	require.Len(t, ev.Requests[0].MemoryErasures, 2)
	for _, m := range ev.Requests[0].MemoryErasures {
		require.NotNil(t, m.Leaf, "the evidence names each erasure's leaf")
	}
	ev, err = report.EndUser(ctx, b.pool, "u2")
	require.NoError(t, err)
	require.Len(t, ev.MemoryDeletions, 1)
	require.NotNil(t, ev.MemoryDeletions[0].Leaf)
	require.NotNil(t, ev.MemoryDeletions[0].PolicyVersion, "the policy's version when the memory was deleted")
	require.Equal(t, b.count(t, `SELECT max(id) FROM retention.policy_history WHERE new_character_id = 'c2'`), *ev.MemoryDeletions[0].PolicyVersion)

	var eraseSQL, deleteSQL []byte
	var id int64
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT id, retention.memory_erasure_content(id) FROM retention.memory_erasures
		WHERE character_id IS NULL`).Scan(&id, &eraseSQL))
	require.Contains(t, string(eraseSQL), "27:"+audit.MemoryErasureTag+",")
	require.Contains(t, string(eraseSQL), "2:u1,-,4:true,", "the end user, every character, and the record asked for")
	require.NotContains(t, string(eraseSQL), "ticket 7", "the reason stays out of the leaf")
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT retention.memory_deletion_content(id) FROM retention.memory_deletions`).Scan(&deleteSQL))
	require.Contains(t, string(deleteSQL), "2:c2,2:u2,2:m2,")
	require.Contains(t, string(deleteSQL), ",1:0,2:30,1:0,", "memory_max_age: 0 months, 30 days, 0 µs")
}

// A memory erasure or deletion edited, removed or written outside the protocol shows, as a
// claim's would; the request's reason stays redactable.
func TestMemoryLeavesTamper(t *testing.T) {
	t.Parallel()
	t.Run("erasure edited", func(t *testing.T) {
		t.Parallel()
		b, vkey, note := memoryLogged(t)
		b.tamper(t, `UPDATE retention.memory_erasures SET listed_before = 9 WHERE character_id = 'c1'`)
		res := verifyLog(t, b, vkey, note)
		require.Equal(t, 1, count(kinds(res), audit.LeafEdited), "%v", res.Problems)
		require.Contains(t, res.Problems[0].Detail, "memory erasure")
		require.Contains(t, kinds(res), audit.CheckpointMismatch, "the rebuilt tree no longer extends the checkpoint kept outside")
	})
	t.Run("request's terms edited, reason redacted", func(t *testing.T) {
		t.Parallel()
		b, vkey, note := memoryLogged(t)
		b.tamper(t, `UPDATE retention.end_user_requests SET reason = '[redacted]'`)
		res := verifyLog(t, b, vkey, note)
		require.True(t, res.Intact(), "%v", res.Problems)
		b.tamper(t, `UPDATE retention.end_user_requests SET due_at = due_at + interval '90 days'`)
		res = verifyLog(t, b, vkey, note)
		require.Equal(t, 2, count(kinds(res), audit.LeafEdited), "both erasures seal the request's terms: %v", res.Problems)
	})
	t.Run("deletion edited", func(t *testing.T) {
		t.Parallel()
		b, vkey, note := memoryLogged(t)
		b.tamper(t, `UPDATE retention.memory_deletions SET updated_at = updated_at - interval '1 year'`)
		res := verifyLog(t, b, vkey, note)
		require.Equal(t, 1, count(kinds(res), audit.LeafEdited), "%v", res.Problems)
		require.Contains(t, res.Problems[0].Detail, "memory deletion")
	})
	t.Run("deletion removed", func(t *testing.T) {
		t.Parallel()
		b, vkey, note := memoryLogged(t)
		b.tamper(t, `DELETE FROM retention.memory_deletions`)
		res := verifyLog(t, b, vkey, note)
		require.Contains(t, kinds(res), audit.LeafMissing, "%v", res.Problems)
		require.Contains(t, res.Problems[0].Detail, "which is gone")
	})
	t.Run("written outside the protocol", func(t *testing.T) {
		t.Parallel()
		b, vkey, note := memoryLogged(t)
		// Plain SQL, with every trigger on: the row is not queued, only the record functions
		// queue what they write.
		b.exec(t, `INSERT INTO retention.memory_deletions (run_id, character_id, end_user_id, memory_id, updated_at, policy_id,
			memory_max_age, threshold, status, attempts)
			SELECT run_id, character_id, end_user_id, 'forged', updated_at, policy_id, memory_max_age, threshold, 'deleted', 1
			FROM retention.memory_deletions`)
		b.tamper(t, `INSERT INTO retention.memory_erasures (request_id, run_id, character_id, status, attempts, remaining, started_at)
			SELECT request_id, run_id, 'c9', 'erased', 1, 0, started_at FROM retention.memory_erasures WHERE character_id = 'c1'`)
		res := verifyLog(t, b, vkey, note)
		require.Equal(t, []audit.Kind{audit.UnsealedMemory, audit.UnsealedMemory}, kinds(res), "%v", res.Problems)
	})
	t.Run("a memory leaf made to name a forged claim too", func(t *testing.T) {
		t.Parallel()
		b, vkey, note := memoryLogged(t)
		// The schema's owner drops the rule of one record per leaf, forges a claim with a
		// deleted outcome, and hangs it on a memory erasure's leaf, whose hash still holds.
		b.tamper(t, `ALTER TABLE retention.log_leaves DROP CONSTRAINT log_leaves_one_record`)
		b.tamper(t, `INSERT INTO retention.claims (run_id, character_id, max_age, session_ids, last_active_at)
			VALUES (1, 'c1', '30 days', ARRAY['forged'], ARRAY[now() - interval '1 year'])`)
		b.tamper(t, `INSERT INTO retention.outcomes (claim_id, ord, character_id, session_id, status, attempts, http_status)
			SELECT max(id), 1, 'c1', 'forged', 'deleted', 1, 200 FROM retention.claims`)
		b.tamper(t, `UPDATE retention.log_leaves SET claim_id = (SELECT max(id) FROM retention.claims)
			WHERE idx = (SELECT min(idx) FROM retention.log_leaves WHERE memory_erasure_id IS NOT NULL)`)
		res := verifyLog(t, b, vkey, note)
		require.Contains(t, kinds(res), audit.LeafEdited, "%v", res.Problems)
		require.Contains(t, kinds(res), audit.UnsealedClaim, "the forged claim has no leaf of its own: %v", res.Problems)
	})
}

// Memory erasures and deletions recorded at schema 16, before they were leaves, are queued by
// migration 017 and sealed by the next run; the log built before keeps verifying against its
// checkpoint.
func TestMemoryRecordsBeforeTheyWereLeaves(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b, conn := schemaAt(t, 16)
	b.exec(t, `INSERT INTO retention.runs (id, cutoff, source, status, finished_at) OVERRIDING SYSTEM VALUE
		VALUES (1, now(), 'retention.sessions', 'succeeded', now())`)
	b.exec(t, `SELECT setval(pg_get_serial_sequence('retention.runs', 'id'), 1)`)
	b.exec(t, `INSERT INTO retention.end_user_requests (end_user_id, reason) VALUES ('u1', 'ticket')`)
	b.exec(t, `INSERT INTO retention.memory_erasures (request_id, run_id, character_id, status, attempts, http_status, remaining,
		listed_before, started_at) VALUES (1, 1, 'c1', 'erased', 2, 200, 0, 3, now())`)
	b.exec(t, `INSERT INTO retention.memory_deletions (run_id, character_id, end_user_id, memory_id, updated_at, policy_id,
		memory_max_age, threshold, status, attempts, http_status, error)
		VALUES (1, 'c1', 'u1', 'm1', now() - interval '2 years', 1, '1 year 2 mons 3 days 04:05:06.789', now() - interval '1 year',
		        'failed', 5, 503, 'HTTP 503')`)
	vkey, before, size := signHead(t, b)
	require.Zero(t, size)

	_, to, err := migrations.Migrate(ctx, conn)
	require.NoError(t, err)
	require.Equal(t, migrations.Latest(), to)
	res := verifyLog(t, b, vkey, before)
	require.True(t, res.Intact(), "%v", res.Problems)
	require.EqualValues(t, 2, res.Log.Queued, "queued by the migration")

	b.exec(t, `SELECT retention.seal()`)
	res = verifyLog(t, b, vkey, before)
	require.True(t, res.Intact(), "%v", res.Problems)
	require.EqualValues(t, 2, res.Log.Leaves)
	require.EqualValues(t, 2, res.Log.MemoryLeaves)
}

// count counts k in ks.
func count(ks []audit.Kind, k audit.Kind) int {
	n := 0
	for _, x := range ks {
		if x == k {
			n++
		}
	}
	return n
}

// An end user's memory erasure, and their record's, is proven offline like a session's
// deletion: the leaf, its inclusion proof and the signed checkpoint; a proof that names
// another end user, or whose leaf was changed, is not proven.
func TestMemoryErasureProof(t *testing.T) {
	t.Parallel()
	b, vkey, note := memoryLogged(t)
	ctx := context.Background()
	b.exec(t, `INSERT INTO retention.checkpoints (size, root, note) SELECT size, root, $1 FROM retention.log_head`, string(note))

	p, err := audit.ProveMemoryErasure(ctx, b.pool, "u1", "c1")
	require.NoError(t, err)
	require.NotEmpty(t, p.Checkpoint, "the signed checkpoint that covers the leaf")
	m, err := audit.CheckMemoryErasure(p, vkey)
	require.NoError(t, err)
	require.Equal(t, audit.LeafMemoryErasure{ID: m.ID, RunID: "1", RequestID: "1", EndUserID: "u1", CharacterID: "c1",
		Status: "erased", Remaining: "0", ListedBefore: "1", CompletedAtMicros: m.CompletedAtMicros}, m)
	_, err = audit.Check(p, vkey)
	require.ErrorContains(t, err, "CheckMemoryErasure", "a session's check refuses a memory proof")

	record, err := audit.ProveMemoryErasure(ctx, b.pool, "u1", "")
	require.NoError(t, err)
	m, err = audit.CheckMemoryErasure(record, vkey)
	require.NoError(t, err)
	require.Empty(t, m.CharacterID, "the end user's record")
	require.Empty(t, m.Remaining)

	_, err = audit.ProveMemoryErasure(ctx, b.pool, "u2", "c2")
	require.ErrorIs(t, err, audit.ErrMemoryNotInLog, "u2's memory was deleted by age, never erased")

	other := *p
	other.EndUserID = "u2"
	_, err = audit.CheckMemoryErasure(&other, vkey)
	require.ErrorContains(t, err, `records end user "u1"`)
	forged := *p
	forged.Leaf = []byte(strings.Replace(string(p.Leaf), "2:c1,", "2:c9,", 1))
	forged.CharacterID = "c9"
	_, err = audit.CheckMemoryErasure(&forged, vkey)
	require.ErrorContains(t, err, "not in the tree")
	otherKey, _, _ := signHead(t, b)
	_, err = audit.CheckMemoryErasure(p, otherKey)
	require.Error(t, err, "another key does not verify the checkpoint")
	_, err = audit.CheckMemoryErasure(p)
	require.ErrorContains(t, err, "give the verifier key")
	session, err := audit.Prove(ctx, b.pool, "c1", "s1")
	require.NoError(t, err)
	session.EndUserID = "u1"
	_, err = audit.CheckMemoryErasure(session, vkey)
	require.ErrorContains(t, err, "not a "+audit.MemoryErasureTag+" leaf", "a session's leaf proves no memory erasure")

	// A verification finds memory again: the erasure no longer stands, and is not proven.
	a := newAPI(t, convaitest.Options{})
	a.fake.AddMemory("c1", "u1", convaitest.Memory{ID: "again", UpdatedAt: time.Now()})
	_, err = a.verify(t, b.pool)
	require.NoError(t, err)
	_, err = audit.ProveMemoryErasure(ctx, b.pool, "u1", "c1")
	require.ErrorIs(t, err, audit.ErrMemoryNotInLog)
	require.ErrorContains(t, err, "found memory again")

	// An erasure edited since it was sealed is not proven either.
	b.tamper(t, `UPDATE retention.memory_erasures SET listed_before = 7 WHERE character_id IS NULL`)
	_, err = audit.ProveMemoryErasure(ctx, b.pool, "u1", "")
	require.ErrorIs(t, err, audit.ErrChainBroken)
}

// The database's encoding of memory rows is the Go encoder's, NULLs, infinities, intervals and
// any text included: rows of every shape, queued and sealed, verify intact.
func TestMemoryContentMatchesGo(t *testing.T) {
	t.Parallel()
	b := setup(t)
	run := b.count(t, `INSERT INTO retention.runs (cutoff, source, status, finished_at)
		VALUES (now(), 'retention.sessions', 'succeeded', now()) RETURNING id`)
	b.exec(t, `INSERT INTO retention.end_user_requests (end_user_id, character_id, end_user_record, reason, requested_by)
		VALUES ('u-é', 'c1', false, 'r', 'dpo ☃'), ('u2', NULL, true, 'r', 'x')`)
	b.exec(t, `INSERT INTO retention.memory_erasures (request_id, run_id, character_id, status, attempts, http_status, remaining,
		listed_before, error, started_at, completed_at) VALUES
		(1, $1, 'c1', 'failed', 0, NULL, NULL, NULL, 'é ☃ "quoted", comma-,', '-infinity', 'infinity'),
		(1, $1, 'c1', 'erased', 3, 200, 0, 12, NULL, now(), now()),
		(2, $1, NULL, 'erased', 1, 202, NULL, NULL, '', now(), now())`, run)
	b.exec(t, `INSERT INTO retention.memory_deletions (run_id, character_id, end_user_id, memory_id, updated_at, policy_id,
		memory_max_age, threshold, status, attempts, http_status, error) VALUES
		($1, 'c1', 'u-é', 'm:1,', now() - interval '3 years', 7, '1 year 2 mons 3 days 04:05:06.789', now() - interval '2 years',
		 'failed', 5, NULL, 'ünïcode'),
		($1, 'c1', 'u-é', 'm2', '-infinity', 7, '-1 hours 30 days', now(), 'deleted', 1, 200, NULL)`, run)
	require.Zero(t, b.count(t, `SELECT count(*) FROM retention.unsealed`), "plain SQL queues nothing")
	res := verify(t, b.pool)
	require.Equal(t, []audit.Kind{audit.UnsealedMemory, audit.UnsealedMemory, audit.UnsealedMemory, audit.UnsealedMemory,
		audit.UnsealedMemory}, kinds(res))

	b.exec(t, `INSERT INTO retention.unsealed (memory_erasure_id, leaf)
		SELECT id, sha256('\x00'::bytea || retention.memory_erasure_content(id)) FROM retention.memory_erasures ORDER BY id`)
	b.exec(t, `INSERT INTO retention.unsealed (memory_deletion_id, leaf)
		SELECT id, sha256('\x00'::bytea || retention.memory_deletion_content(id)) FROM retention.memory_deletions ORDER BY id`)
	b.exec(t, `SELECT retention.seal()`)
	res = verify(t, b.pool)
	require.True(t, res.Intact(), "the Go encoder gives the database's bytes for every row: %v", res.Problems)
	require.EqualValues(t, 5, res.Log.MemoryLeaves)
}
