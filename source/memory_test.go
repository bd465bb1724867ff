package source_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/job"
)

// TestRecordMemoryGuards: only a running verification, with its credentials, records sessions in
// memory, from a list read during it, in batches of 1 to 10,000 well-formed IDs; a session keeps
// its first record, and no record changes.
func TestRecordMemoryGuards(t *testing.T) {
	t.Parallel()
	s, pool := store(t, 0)
	ctx := context.Background()
	vs, info, err := s.StartVerify(ctx, job.VerifyStart{Host: "test"})
	require.NoError(t, err)
	listedAt, err := vs.Now(ctx)
	require.NoError(t, err)

	require.NoError(t, vs.RecordMemory(ctx, "c", listedAt, []string{"s1", "s2", "s1"}))
	require.NoError(t, vs.RecordMemory(ctx, "c", listedAt.Add(time.Millisecond), []string{"s2", "s3"}))
	require.Equal(t, 3, count(t, pool, `SELECT count(*) FROM retention.memory_sightings WHERE verify_id = $1`, info.ID))
	require.Equal(t, 1, count(t, pool, `SELECT count(*) FROM retention.memory_sightings WHERE session_id = 's2' AND listed_at = $1`, listedAt),
		"the first record stays")

	tooMany := make([]string, 10_001)
	for i := range tooMany {
		tooMany[i] = fmt.Sprintf("s%d", i)
	}
	for name, call := range map[string]func() error{
		"no IDs":         func() error { return vs.RecordMemory(ctx, "c", listedAt, nil) },
		"too many IDs":   func() error { return vs.RecordMemory(ctx, "c", listedAt, tooMany) },
		"a blank ID":     func() error { return vs.RecordMemory(ctx, "c", listedAt, []string{"s9", " "}) },
		"an overlong ID": func() error { return vs.RecordMemory(ctx, "c", listedAt, []string{strings.Repeat("x", 257)}) },
		"a control char": func() error { return vs.RecordMemory(ctx, "c\x01", listedAt, []string{"s9"}) },
		"listed before":  func() error { return vs.RecordMemory(ctx, "c", info.Started.Add(-time.Second), []string{"s9"}) },
		"listed later":   func() error { return vs.RecordMemory(ctx, "c", time.Now().Add(time.Hour), []string{"s9"}) },
		"another token": func() error {
			_, err := pool.Exec(ctx, `SELECT retention.record_memory_sightings($1, 'forged', 'c', $2, ARRAY['s9'])`, info.ID, listedAt)
			return err
		},
	} {
		require.Error(t, call(), name)
	}
	require.Zero(t, count(t, pool, `SELECT count(*) FROM retention.memory_sightings WHERE session_id <> ALL (ARRAY['s1', 's2', 's3'])`))

	require.NoError(t, vs.Finish(ctx, job.VerifyEnd{Status: job.VerifyFinished}))
	require.ErrorContains(t, vs.RecordMemory(ctx, "c", listedAt, []string{"s9"}), "is finished")
	for _, stmt := range []string{
		`UPDATE retention.memory_sightings SET listed_at = now()`,
		`DELETE FROM retention.memory_sightings`,
		`TRUNCATE retention.memory_sightings`,
	} {
		_, err := pool.Exec(ctx, stmt)
		require.ErrorContains(t, err, "append-only", stmt)
	}
	require.Equal(t, 3, count(t, pool, `SELECT count(*) FROM retention.memory_sightings`))
}
