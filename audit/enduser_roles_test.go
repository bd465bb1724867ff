package audit_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

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
}
