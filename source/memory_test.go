package source_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/job"
)

// added makes a batch of sessions listed as added to memory.
func added(ids ...string) []job.MemoryListed {
	out := make([]job.MemoryListed, len(ids))
	for i, id := range ids {
		out[i] = job.MemoryListed{SessionID: id, Memory: job.MemoryAdded}
	}
	return out
}

// TestRecordMemoryGuards: only a running verification, with its credentials, records what its
// lists said of long-term memory, from a list read during it, in batches of 1 to 10,000
// well-formed IDs; a session and answer keep their first record, and no record changes. Added
// goes to memory_sightings with the end user the set names, not added and unstated to
// memory_listings.
func TestRecordMemoryGuards(t *testing.T) {
	t.Parallel()
	s, pool := store(t, 0)
	ctx := context.Background()
	_, err := pool.Exec(ctx, `INSERT INTO retention.sessions (character_id, session_id, last_active_at, end_user_id)
		VALUES ('c', 's1', now(), 'u1'), ('c', 's4', now(), 'u2')`)
	require.NoError(t, err)
	vs, info, err := s.StartVerify(ctx, job.VerifyStart{Host: "test"})
	require.NoError(t, err)
	listedAt, err := vs.Now(ctx)
	require.NoError(t, err)

	require.NoError(t, vs.RecordMemory(ctx, "c", listedAt, added("s1", "s2", "s1")))
	require.NoError(t, vs.RecordMemory(ctx, "c", listedAt.Add(time.Millisecond), added("s2", "s3")))
	require.Equal(t, 3, count(t, pool, `SELECT count(*) FROM retention.memory_sightings WHERE verify_id = $1`, info.ID))
	require.Equal(t, 1, count(t, pool, `SELECT count(*) FROM retention.memory_sightings WHERE session_id = 's2' AND listed_at = $1`, listedAt),
		"the first record stays")
	require.Equal(t, 1, count(t, pool, `SELECT count(*) FROM retention.memory_sightings WHERE session_id = 's1' AND end_user_id = 'u1'`),
		"the end user the set names")

	require.NoError(t, vs.RecordMemory(ctx, "c", listedAt, []job.MemoryListed{
		{SessionID: "s4", Memory: job.MemoryNotAdded}, {SessionID: "s5", Memory: job.MemoryUnstated},
		{SessionID: "s4", Memory: job.MemoryUnstated}, {SessionID: "s6", Memory: job.MemoryAdded},
	}))
	require.NoError(t, vs.RecordMemory(ctx, "c", listedAt.Add(time.Millisecond), []job.MemoryListed{{SessionID: "s4", Memory: job.MemoryNotAdded}}))
	rows, err := pool.Query(ctx, `SELECT session_id || '/' || said FROM retention.memory_listings WHERE listed_at = $1 ORDER BY 1`, listedAt)
	require.NoError(t, err)
	listings, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Equal(t, []string{"s4/not_added", "s4/unstated", "s5/unstated"}, listings, "first list per answer")
	require.Equal(t, 3, count(t, pool, `SELECT count(*) FROM retention.memory_listings`))
	require.Equal(t, 1, count(t, pool, `SELECT count(*) FROM retention.memory_sightings WHERE session_id = 's6' AND end_user_id IS NULL`))

	tooMany := added(make([]string, 10_001)...)
	for i := range tooMany {
		tooMany[i].SessionID = fmt.Sprintf("s%d", i)
	}
	for name, call := range map[string]func() error{
		"no IDs":         func() error { return vs.RecordMemory(ctx, "c", listedAt, nil) },
		"too many IDs":   func() error { return vs.RecordMemory(ctx, "c", listedAt, tooMany) },
		"a blank ID":     func() error { return vs.RecordMemory(ctx, "c", listedAt, added("s9", " ")) },
		"an overlong ID": func() error { return vs.RecordMemory(ctx, "c", listedAt, added(strings.Repeat("x", 257))) },
		"a control char": func() error { return vs.RecordMemory(ctx, "c\x01", listedAt, added("s9")) },
		"listed before":  func() error { return vs.RecordMemory(ctx, "c", info.Started.Add(-time.Second), added("s9")) },
		"listed later":   func() error { return vs.RecordMemory(ctx, "c", time.Now().Add(time.Hour), added("s9")) },
		"another token": func() error {
			_, err := pool.Exec(ctx, `SELECT retention.record_memory_flags($1, 'forged', 'c', $2, ARRAY['s9'], ARRAY['added'])`, info.ID, listedAt)
			return err
		},
	} {
		require.Error(t, call(), name)
	}
	require.Zero(t, count(t, pool, `SELECT count(*) FROM retention.memory_sightings WHERE session_id <> ALL (ARRAY['s1', 's2', 's3', 's6'])`))
	require.Zero(t, count(t, pool, `SELECT count(*) FROM retention.memory_listings WHERE session_id <> ALL (ARRAY['s4', 's5'])`))

	require.NoError(t, vs.Finish(ctx, job.VerifyEnd{Status: job.VerifyFinished}))
	require.ErrorContains(t, vs.RecordMemory(ctx, "c", listedAt, added("s9")), "is finished")
	for _, table := range []string{"retention.memory_sightings", "retention.memory_listings"} {
		for _, stmt := range []string{
			`UPDATE ` + table + ` SET listed_at = now()`,
			`DELETE FROM ` + table,
			`TRUNCATE ` + table,
		} {
			_, err := pool.Exec(ctx, stmt)
			require.ErrorContains(t, err, "append-only", stmt)
		}
	}
	require.Equal(t, 4, count(t, pool, `SELECT count(*) FROM retention.memory_sightings`))
}

// TestRecordRunMemoryGuards: a running run records what its own lists said of long-term memory
// under its ID (run_id, no verify_id), with the same bounds as a verification: 1 to 10,000
// well-formed IDs from a list read during the run; the first list that said so keeps the row,
// a verification's or a run's; a finished run records nothing.
func TestRecordRunMemoryGuards(t *testing.T) {
	t.Parallel()
	s, pool := store(t, 0)
	ctx := context.Background()
	_, err := pool.Exec(ctx, `INSERT INTO retention.sessions (character_id, session_id, last_active_at, end_user_id)
		VALUES ('c', 's1', now(), 'u1')`)
	require.NoError(t, err)
	vs, _, err := s.StartVerify(ctx, job.VerifyStart{Host: "test"})
	require.NoError(t, err)
	verifiedAt, err := vs.Now(ctx)
	require.NoError(t, err)
	require.NoError(t, vs.RecordMemory(ctx, "c", verifiedAt, added("s0")))

	rs, info, err := s.StartRun(ctx, job.RunStart{Shard: job.Shard{Count: 1}, Source: "retention.sessions"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = rs.Close(context.Background()) })
	rec, ok := rs.(job.MemoryRecorder)
	require.True(t, ok, "a run's handle records memory flags")
	listedAt, err := s.Now(ctx)
	require.NoError(t, err)
	require.NoError(t, rec.RecordMemory(ctx, "c", listedAt, []job.MemoryListed{
		{SessionID: "s0", Memory: job.MemoryAdded}, {SessionID: "s1", Memory: job.MemoryAdded},
		{SessionID: "s2", Memory: job.MemoryNotAdded}, {SessionID: "s3", Memory: job.MemoryUnstated},
	}))
	rows, err := pool.Query(ctx, `SELECT session_id || '/' || coalesce(verify_id::text, '-') || '/' || coalesce(run_id::text, '-')
		|| '/' || coalesce(end_user_id, '-') FROM retention.memory_sightings ORDER BY 1`)
	require.NoError(t, err)
	sightings, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Equal(t, []string{"s0/1/-/-", fmt.Sprintf("s1/-/%d/u1", info.ID)}, sightings, "the verification's list came first for s0")
	require.Equal(t, 2, count(t, pool, `SELECT count(*) FROM retention.memory_listings WHERE run_id = $1 AND verify_id IS NULL`, info.ID))

	for name, call := range map[string]func() error{
		"no IDs":         func() error { return rec.RecordMemory(ctx, "c", listedAt, nil) },
		"a blank ID":     func() error { return rec.RecordMemory(ctx, "c", listedAt, added("s9", " ")) },
		"a control char": func() error { return rec.RecordMemory(ctx, "c\x01", listedAt, added("s9")) },
		"listed before":  func() error { return rec.RecordMemory(ctx, "c", info.Cutoff.Add(-time.Second), added("s9")) },
		"listed later":   func() error { return rec.RecordMemory(ctx, "c", time.Now().Add(time.Hour), added("s9")) },
		"a forged token": func() error {
			_, err := pool.Exec(ctx, `SELECT retention.record_run_memory_flags($1, 'forged', 'c', $2, ARRAY['s9'], ARRAY['added'])`, info.ID, listedAt)
			return err
		},
	} {
		require.Error(t, call(), name)
	}
	require.Zero(t, count(t, pool, `SELECT count(*) FROM retention.memory_sightings WHERE session_id = 's9'`))
	_, err = pool.Exec(ctx, `INSERT INTO retention.memory_sightings (character_id, session_id, verify_id, run_id, listed_at)
		VALUES ('c', 's8', 1, $1, now())`, info.ID)
	require.ErrorContains(t, err, "memory_sightings_one_list", "a row names one list")

	_, err = rs.Finish(ctx, job.RunEnd{Status: job.StatusSucceeded})
	require.NoError(t, err)
	require.ErrorContains(t, rec.RecordMemory(ctx, "c", listedAt, added("s9")), "finished")
}
