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

// TestRolesRunMemoryFlags: logged in as the job role, a run records what its erasure request's
// character list said of long-term memory through record_run_memory_flags alone, with its own
// token, while it runs; it cannot write the tables, forge a token, or record a bad answer. The
// auditor sees the run's list in report --session and in the per-character counts.
func TestRolesRunMemoryFlags(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	r := applyRoles(t, b)
	b.seedSessions(t, "c1", 2, 1)
	var asked int64
	require.NoError(t, b.pool.QueryRow(ctx, `INSERT INTO retention.erasure_requests (character_id, reason) VALUES ('c1', 'ticket') RETURNING id`).Scan(&asked))
	a := newAPI(t, convaitest.Options{})
	a.fake.AddSession("c1", "c1-1", time.Now())
	a.fake.AddSession("c1", "c1-2", time.Now())
	a.fake.SetAddedToMemory("c1", "c1-1", true)

	jobPool := b.poolAs(t, r.job)
	sum, err := a.run(t, jobPool, job.Shard{})
	require.NoError(t, err)
	require.Equal(t, []int64{asked}, sum.Erasure.Completed)
	require.Equal(t, &job.RunMemorySummary{Lists: 1, Sessions: 2, Added: 1, NotAdded: 1}, sum.ListedMemory)

	for _, sql := range []string{
		fmt.Sprintf(`INSERT INTO retention.memory_sightings (character_id, session_id, run_id, listed_at) VALUES ('c1', 'x', %d, now())`, sum.RunID),
		fmt.Sprintf(`INSERT INTO retention.memory_listings (character_id, session_id, said, run_id, listed_at) VALUES ('c1', 'x', 'unstated', %d, now())`, sum.RunID),
		`UPDATE retention.memory_sightings SET run_id = NULL`,
	} {
		_, err := jobPool.Exec(ctx, sql)
		denied(t, err, "job: "+sql)
	}
	_, err = jobPool.Exec(ctx, `SELECT retention.record_run_memory_flags($1, 'guess', 'c1', now(), ARRAY['x'], ARRAY['added'])`, sum.RunID)
	require.ErrorContains(t, err, "not the run's credentials")

	// A run of its own, with its token: recorded while it runs; the other run's ID, a bad answer,
	// a mismatched count or a list time before the run are refused.
	conn, thief, token := thiefRun(t, jobPool)
	var n int
	require.NoError(t, conn.QueryRow(ctx, `SELECT retention.record_run_memory_flags($1, $2, 'c1', now(), ARRAY['y', 'z'], ARRAY['added', 'unstated'])`,
		thief, token).Scan(&n))
	require.Equal(t, 2, n)
	for name, call := range map[string][]any{
		"another run's ID":  {sum.RunID, token, "now()", "ARRAY['w']", "ARRAY['added']"},
		"a bad answer":      {thief, token, "now()", "ARRAY['w']", "ARRAY['maybe']"},
		"a missing answer":  {thief, token, "now()", "ARRAY['w', 'v']", "ARRAY['added']"},
		"listed before":     {thief, token, "now() - interval '1 day'", "ARRAY['w']", "ARRAY['added']"},
		"a malformed ID":    {thief, token, "now()", "ARRAY[' ']", "ARRAY['added']"},
		"no ID":             {thief, token, "now()", "ARRAY[]::text[]", "ARRAY[]::text[]"},
		"the finished run":  {sum.RunID, "guess", "now()", "ARRAY['w']", "ARRAY['added']"},
		"an answer of NULL": {thief, token, "now()", "ARRAY['w']", "ARRAY[NULL]::text[]"},
	} {
		_, err := conn.Exec(ctx, fmt.Sprintf(`SELECT retention.record_run_memory_flags($1, $2, 'c1', %s, %s, %s)`, call[2], call[3], call[4]),
			call[0], call[1])
		require.Error(t, err, name)
	}
	require.Zero(t, b.count(t, `SELECT count(*) FROM retention.memory_sightings WHERE session_id IN ('w', 'v', ' ')`))

	// The auditor: the session's evidence names the run whose list said added, and the
	// character's count of deleted sessions in memory has it.
	auditorPool := b.poolAs(t, r.auditor)
	ev, err := report.Session(ctx, auditorPool, report.SessionOptions{SessionID: "c1-1"})
	require.NoError(t, err)
	require.Len(t, ev.Findings, 1)
	m := ev.Findings[0].Memory
	require.NotNil(t, m)
	require.Equal(t, report.MemoryAdded, m.Said)
	require.Equal(t, "run", m.ListedBy)
	require.Equal(t, sum.RunID, *m.RunID)
	require.Nil(t, m.VerifyID)
	require.Contains(t, m.Text(true), fmt.Sprintf("(run %d's list,", sum.RunID))
	rep, err := report.Build(ctx, auditorPool, report.Options{Since: time.Now().Add(-time.Hour), Until: time.Now().Add(time.Hour)})
	require.NoError(t, err)
	var row *report.VerificationRow
	for i := range rep.Verification {
		if rep.Verification[i].CharacterID == "c1" {
			row = &rep.Verification[i]
		}
	}
	require.NotNil(t, row)
	require.EqualValues(t, 1, row.InMemory)
	require.EqualValues(t, 1, row.InMemoryEndUserUnknown)
	var listedBy string
	require.NoError(t, auditorPool.QueryRow(ctx, `SELECT string_agg(session_id || '/' || listed_by || '/' || run_id, ',')
		FROM retention.deleted_in_memory`).Scan(&listedBy))
	require.Equal(t, fmt.Sprintf("c1-1/run/%d", sum.RunID), listedBy)
	require.False(t, strings.Contains(listedBy, "verify"))
}
