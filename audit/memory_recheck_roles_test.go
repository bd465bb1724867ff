package audit_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/convai/convaitest"
	"github.com/convai-retention/retention/job"
	"github.com/convai-retention/retention/report"
)

// TestRolesMemoryRechecks: logged in as the least-privilege job role, a verification re-checks
// an erased memory through record_memory_recheck alone and the next run erases a memory found
// again; the job cannot write, change or forge a re-check; the auditor reads them.
func TestRolesMemoryRechecks(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	r := applyRoles(t, b)
	b.exec(t, `INSERT INTO retention.sessions (character_id, session_id, last_active_at, end_user_id) VALUES ('c1', 's1', now(), 'u1')`)
	a := newAPI(t, convaitest.Options{})
	a.fake.AddSession("c1", "s1", time.Now())
	a.fake.AddMemory("c1", "u1", convaitest.Memory{ID: "m-s1", SessionID: "s1"})
	a.live(t, b, "c1")
	var id int64
	require.NoError(t, b.pool.QueryRow(ctx, `INSERT INTO retention.end_user_requests (end_user_id, reason)
		VALUES ('u1', 'ticket') RETURNING id`).Scan(&id))

	jobPool := b.poolAs(t, r.job)
	sum, err := a.run(t, jobPool, job.Shard{})
	require.NoError(t, err)
	require.Equal(t, []int64{id}, sum.Erasure.EndUsers.Completed)
	a.fake.AddMemory("c1", "u1", convaitest.Memory{ID: "m-again"})

	vsum, err := a.verify(t, jobPool)
	require.NoError(t, err)
	require.Equal(t, &job.MemoryRechecks{FoundAgain: 1, Found: []string{"u1/c1"}}, vsum.MemoryRechecks)

	sum, err = a.run(t, jobPool, job.Shard{})
	require.NoError(t, err)
	require.Equal(t, []int64{id}, sum.Erasure.EndUsers.Reopened)
	require.Equal(t, 1, sum.Erasure.EndUsers.Erased)
	require.Empty(t, a.fake.Memories("c1", "u1"))

	for _, sql := range []string{
		fmt.Sprintf(`INSERT INTO retention.memory_rechecks (verify_id, memory_erasure_id, result, listed, total_count, attempts, listed_at)
			SELECT %d, id, 'gone', 0, 0, 1, now() FROM retention.memory_erasures`, vsum.VerifyID),
		`UPDATE retention.memory_rechecks SET result = 'gone', listed = 0, total_count = 0`,
		`DELETE FROM retention.memory_rechecks`,
	} {
		_, err := jobPool.Exec(ctx, sql)
		denied(t, err, "job: "+sql)
	}
	_, err = jobPool.Exec(ctx, fmt.Sprintf(`SELECT retention.record_memory_recheck(%d, 'guess', ARRAY(SELECT id FROM retention.memory_erasures),
		now(), 'gone', 0, 0, NULL, 200, 1)`, vsum.VerifyID))
	require.ErrorContains(t, err, "not its credentials")

	auditorPool := b.poolAs(t, r.auditor)
	ev, err := report.EndUser(ctx, auditorPool, "u1")
	require.NoError(t, err)
	require.Len(t, ev.Requests, 1)
	require.Len(t, ev.Requests[0].MemoryRechecks, 1)
	rc := ev.Requests[0].MemoryRechecks[0]
	require.Equal(t, "found", rc.Result)
	require.Equal(t, vsum.VerifyID, rc.VerifyID)
	require.EqualValues(t, 1, *rc.Listed)
	require.EqualValues(t, 1, *rc.TotalCount)
	require.Equal(t, "erased", ev.Requests[0].Characters[0].MemoryStatus, "erased again since")
	var text strings.Builder
	require.NoError(t, ev.Write(&text, report.FormatTable))
	require.Contains(t, text.String(), "memory re-checks (retention verify):")
	require.Regexp(t, fmt.Sprintf(`(?m)^%d\s+c1\s+\d+\s+FOUND AGAIN\s+1\s+1\s+-\s+200\s+1\s`, vsum.VerifyID), text.String())
	var found int
	require.NoError(t, auditorPool.QueryRow(ctx, `SELECT count(*) FROM retention.memory_rechecks WHERE result = 'found'`).Scan(&found))
	require.Equal(t, 1, found)
}
