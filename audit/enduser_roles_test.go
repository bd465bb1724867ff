package audit_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/audit"
	"github.com/convai-retention/retention/convai/convaitest"
	"github.com/convai-retention/retention/job"
	"github.com/convai-retention/retention/report"
)

// TestRolesEndUsers: the least-privilege job role runs an end user's erasure and memory
// retention through the functions of migration 016 alone; it cannot file, complete or forge
// their rows; the auditor reads them and the evidence.
func TestRolesEndUsers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	r := applyRoles(t, b)
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age, memory_max_age) VALUES ('c2', '400 days', '30 days')`)
	b.exec(t, `INSERT INTO retention.sessions (character_id, session_id, last_active_at, end_user_id) VALUES
		('c1', 's1', now(), 'u1'), ('c1', 's2', now(), 'u2'), ('c2', 's3', now(), 'u2')`)
	a := newAPI(t, convaitest.Options{})
	for _, s := range []struct{ c, s, u string }{{"c1", "s1", "u1"}, {"c1", "s2", "u2"}, {"c2", "s3", "u2"}} {
		a.fake.AddSession(s.c, s.s, time.Now())
		a.fake.AddMemory(s.c, s.u, convaitest.Memory{ID: "m-" + s.s, UpdatedAt: time.Now().Add(-40 * 24 * time.Hour)})
	}
	var id int64
	require.NoError(t, b.pool.QueryRow(ctx, `INSERT INTO retention.end_user_requests (end_user_id, end_user_record, reason)
		VALUES ('u1', true, 'ticket') RETURNING id`).Scan(&id))

	jobPool := b.poolAs(t, r.job)
	sum, err := a.run(t, jobPool, job.Shard{})
	require.NoError(t, err)
	require.Equal(t, []int64{id}, sum.Erasure.EndUsers.Completed)
	require.EqualValues(t, 1, sum.Deleted)
	require.Empty(t, a.fake.Memories("c1", "u1"))
	require.Len(t, a.fake.Memories("c1", "u2"), 1, "c1 has no memory policy")
	require.NotNil(t, sum.MemoryRetention)
	require.EqualValues(t, 1, sum.MemoryRetention.Deleted)
	require.Empty(t, a.fake.Memories("c2", "u2"), "c2's policy keeps memory 30 days")

	for _, sql := range []string{
		`INSERT INTO retention.end_user_requests (end_user_id, reason) VALUES ('u9', 'forged')`,
		fmt.Sprintf(`INSERT INTO retention.memory_erasures (request_id, run_id, status, attempts, started_at) VALUES (%d, %d, 'erased', 1, now())`, id, sum.RunID),
		`INSERT INTO retention.end_users (end_user_id, character_id) VALUES ('u9', 'c9')`,
		`UPDATE retention.memory_erasures SET status = 'failed'`,
		`DELETE FROM retention.memory_deletions`,
	} {
		_, err := jobPool.Exec(ctx, sql)
		denied(t, err, "job: "+sql)
	}
	for _, sql := range []string{
		fmt.Sprintf(`SELECT retention.complete_end_user_erasure(%d, 'guess', %d)`, sum.RunID, id),
		fmt.Sprintf(`SELECT retention.record_memory_erasure(%d, 'guess', %d, 'c1', 'erased', 1, 200, 0, NULL, now())`, sum.RunID, id),
		fmt.Sprintf(`SELECT retention.expand_end_user_requests(%d, 'guess')`, sum.RunID),
		fmt.Sprintf(`SELECT retention.record_memory_deletion(%d, 'guess', 'c2', 'u2', 'm', now() - interval '1 year', 'deleted', 1, 200, NULL)`, sum.RunID),
	} {
		_, err := jobPool.Exec(ctx, sql)
		require.Error(t, err, sql)
	}

	auditorPool := b.poolAs(t, r.auditor)
	ev, err := report.EndUser(ctx, auditorPool, "u1")
	require.NoError(t, err)
	require.Len(t, ev.Requests, 1)
	require.Equal(t, "completed", ev.Requests[0].State)
	require.Len(t, ev.Requests[0].MemoryErasures, 2, "c1, then the record")
	ev, err = report.EndUser(ctx, auditorPool, "u2")
	require.NoError(t, err)
	require.Empty(t, ev.Requests)
	require.Len(t, ev.MemoryDeletions, 1)
	require.Equal(t, "deleted", ev.MemoryDeletions[0].Status)
	require.Equal(t, "c2", ev.MemoryDeletions[0].CharacterID)

	// The memory rows the job role wrote are leaves of the log; the auditor verifies them and
	// proves an erasure.
	res, err := audit.Verify(ctx, auditorPool, audit.Options{})
	require.NoError(t, err)
	require.True(t, res.Intact(), "%v", res.Problems)
	require.EqualValues(t, 3, res.Log.MemoryLeaves, "c1's memory, u1's record, u2's memory by age")
	proof, err := audit.ProveMemoryErasure(ctx, auditorPool, "u1", "c1")
	require.NoError(t, err)
	m, err := audit.CheckMemoryErasure(proof)
	require.NoError(t, err)
	require.Equal(t, "erased", m.Status)
}

// TestRolesMemoryFlags: the least-privilege job role records what verify's lists say of
// long-term memory through record_memory_flags alone and reads what erasures left behind; it
// cannot write the records itself; the auditor reads them in the report and the evidence.
func TestRolesMemoryFlags(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	r := applyRoles(t, b)
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '1 day')`)
	b.exec(t, `INSERT INTO retention.sessions (character_id, session_id, last_active_at, end_user_id) VALUES
		('c1', 'old', now() - interval '2 days', NULL), ('c1', 'kept', now(), 'u1'), ('c1', 'quiet', now(), NULL)`)
	a := newAPI(t, convaitest.Options{})
	for _, s := range []string{"old", "kept", "quiet"} {
		a.fake.AddSession("c1", s, time.Now())
	}
	a.fake.SetListFlag("c1", "kept", "true")
	a.fake.SetListFlag("c1", "quiet", convaitest.ListFlagAbsent)

	jobPool := b.poolAs(t, r.job)
	_, err := a.run(t, jobPool, job.Shard{})
	require.NoError(t, err)
	request := b.count(t, `INSERT INTO retention.erasure_requests (character_id, session_id, reason) VALUES ('c1', 'kept', 'ticket') RETURNING id`)
	vsum, err := a.verify(t, jobPool)
	require.NoError(t, err)
	require.Equal(t, &job.MemoryLeft{}, vsum.MemoryLeft)
	_, err = a.run(t, jobPool, job.Shard{})
	require.NoError(t, err)
	vsum, err = a.verify(t, jobPool)
	require.NoError(t, err)
	require.Equal(t, &job.MemoryLeft{Sessions: 1, ErasureRequests: 1}, vsum.MemoryLeft)

	for _, sql := range []string{
		`INSERT INTO retention.memory_listings (character_id, session_id, said, verify_id, listed_at) VALUES ('c1', 'x', 'unstated', 1, now())`,
		`INSERT INTO retention.memory_sightings (character_id, session_id, verify_id, listed_at) VALUES ('c1', 'x', 1, now())`,
		`SELECT retention.record_memory_sightings(1, 'guess', 'c1', now(), ARRAY['x'])`,
		`SELECT retention.record_memory_flags(1, 'guess', 'c1', now(), ARRAY['x'], ARRAY['added'])`,
	} {
		_, err := jobPool.Exec(ctx, sql)
		require.Error(t, err, sql)
	}

	auditorPool := b.poolAs(t, r.auditor)
	rep, err := report.Build(ctx, auditorPool, report.Options{Since: time.Now().Add(-time.Hour), Until: time.Now().Add(time.Hour)})
	require.NoError(t, err)
	require.EqualValues(t, 1, rep.VerificationTotal.InMemory)
	require.Zero(t, rep.VerificationTotal.InMemoryErased)
	ev, err := report.Session(ctx, auditorPool, report.SessionOptions{SessionID: "kept"})
	require.NoError(t, err)
	require.NotNil(t, ev.Findings[0].Memory)
	require.Equal(t, report.MemoryAdded, ev.Findings[0].Memory.Said)
	require.Equal(t, "u1", ev.Findings[0].Memory.EndUserID)
	ev, err = report.Session(ctx, auditorPool, report.SessionOptions{SessionID: "quiet"})
	require.NoError(t, err)
	require.Equal(t, report.MemoryUnstated, ev.Findings[0].Memory.Said)
	require.EqualValues(t, 1, b.count(t, `SELECT count(*) FROM retention.erasure_memory_left WHERE request_id = $1`, request))
}
