package job_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/convai/convaitest"
	"github.com/convai-retention/retention/job"
)

func TestMemoryRetentionByAge(t *testing.T) {
	t.Parallel()

	// world: c1's own policy keeps memory 30 days; c2's (the default) sets none. u1 and u2 talked
	// to c1, u1 to c2; u2's session of c1 is held.
	world := func(t *testing.T) *bundle {
		t.Helper()
		b := setup(t, setupOpts{})
		b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '400 days')`)
		b.exec(t, `INSERT INTO retention.policies (character_id, max_age, memory_max_age) VALUES ('c1', '400 days', '30 days')`)
		b.endUserSessions(t, "u1", "c1", 1)
		b.endUserSessions(t, "u2", "c1", 1)
		b.endUserSessions(t, "u1", "c2", 1)
		b.exec(t, `INSERT INTO retention.holds (character_id, session_id, reason) VALUES ('c1', 'c1-u2-0', 'litigation')`)
		old, recent := time.Now().Add(-40*24*time.Hour), time.Now().Add(-24*time.Hour)
		b.fake.AddMemory("c1", "u1", convaitest.Memory{ID: "old", UpdatedAt: old})
		b.fake.AddMemory("c1", "u1", convaitest.Memory{ID: "older", UpdatedAt: old.Add(-time.Hour)})
		b.fake.AddMemory("c1", "u1", convaitest.Memory{ID: "recent", UpdatedAt: recent})
		b.fake.AddMemory("c1", "u2", convaitest.Memory{ID: "old-but-held", UpdatedAt: old})
		b.fake.AddMemory("c2", "u1", convaitest.Memory{ID: "old-no-policy", UpdatedAt: old})
		return b
	}
	ids := func(ms []convaitest.Memory) []string {
		var out []string
		for _, m := range ms {
			out = append(out, m.ID)
		}
		return out
	}

	t.Run("deletes what is older, keeps the rest, the held and the undated", func(t *testing.T) {
		t.Parallel()
		b := world(t)
		sum, err := b.run(t, memoryConfig())
		require.NoError(t, err)
		m := sum.MemoryRetention
		require.NotNil(t, m)
		require.Equal(t, job.MemoryRetentionSummary{Characters: 1, EndUsers: 2, Held: 1, Listed: 4, Due: 2, Undated: 1, Deleted: 2,
			PerCharacter: []job.MemoryRetentionCharacter{{CharacterID: "c1", MemoryMaxAge: "30 days", EndUsers: 2, Held: 1}}}, *m)
		require.ElementsMatch(t, []string{"m-c1-u1-0", "recent"}, ids(b.fake.Memories("c1", "u1")), "the session's memory has no updated_at: kept")
		require.Equal(t, []string{"m-c1-u2-0", "old-but-held"}, ids(b.fake.Memories("c1", "u2")))
		require.Equal(t, []string{"m-c2-u1-0", "old-no-policy"}, ids(b.fake.Memories("c2", "u1")))
		require.Equal(t, []string{"c1 u1 old deleted 30 days", "c1 u1 older deleted 30 days"}, b.strings(t, `
			SELECT character_id || ' ' || end_user_id || ' ' || memory_id || ' ' || status || ' ' || memory_max_age
			FROM retention.memory_deletions`))
		// The database refuses a row for a memory that was not due.
		require.Error(t, b.exec2(`INSERT INTO retention.memory_deletions (run_id, character_id, end_user_id, memory_id, updated_at,
			policy_id, memory_max_age, threshold, status, attempts) SELECT id, 'c1', 'u1', 'x', now(), 1, '30 days', now() - interval '30 days', 'deleted', 1
			FROM retention.runs LIMIT 1`))
	})

	t.Run("a dry-run lists nothing; the safety cap deletes none", func(t *testing.T) {
		t.Parallel()
		b := world(t)
		r, err := job.New(b.store, b.send, memoryConfig())
		require.NoError(t, err)
		sum, err := r.DryRun(context.Background(), "test", false)
		require.NoError(t, err)
		require.Equal(t, job.MemoryRetentionSummary{Characters: 1, EndUsers: 2, Held: 1,
			PerCharacter: []job.MemoryRetentionCharacter{{CharacterID: "c1", MemoryMaxAge: "30 days", EndUsers: 2, Held: 1}}}, *sum.MemoryRetention)
		require.Empty(t, b.memoryCalls())

		cfg := memoryConfig()
		cfg.AbortAbove = 1
		sum, err = b.run(t, cfg)
		require.NoError(t, err)
		require.True(t, sum.MemoryRetention.Capped)
		require.Zero(t, sum.MemoryRetention.Deleted)
		require.Len(t, b.fake.Memories("c1", "u1"), 4)
		require.Zero(t, b.memoryCalls()[convaitest.EndpointMemoryDelete])
	})
}
