package source_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/job"
	"github.com/convai-retention/retention/policy"
)

// TestClaimTrustsTheDatabase: a caller that names its own policy and back-dates last activities
// claims only what the database's rules make eligible: the policy is the database's, and a run of
// the job's own set takes each session's last activity from the set.
func TestClaimTrustsTheDatabase(t *testing.T) {
	t.Parallel()
	s, pool := store(t, 2) // c/s1, c/s2: two days old, default policy of one day
	ctx := context.Background()
	_, err := pool.Exec(ctx, `
		INSERT INTO retention.policies (character_id, max_age, enabled) VALUES ('never', '1 day', false);
		INSERT INTO retention.sessions VALUES ('never', 'n1', now() - interval '400 days'), ('c', 'active', now() - interval '1 minute')`)
	require.NoError(t, err)
	r, info, err := s.StartRun(ctx, job.RunStart{Shard: job.Shard{Index: 0, Count: 1}, Source: "retention.sessions"})
	require.NoError(t, err)
	defer r.Close(ctx)
	backdated := time.Date(2020, 1, 31, 0, 0, 0, 0, time.UTC)
	forged := policy.Policy{ID: 999, CharacterID: "forged", MaxAge: "1 second", Enabled: true}

	// A character whose own policy is disabled: nothing, whatever the caller says.
	cl, err := r.Claim(ctx, job.Chunk{CharacterID: "never", Policy: forged,
		Sessions: []policy.Record{{CharacterID: "never", SessionID: "n1", LastActive: backdated}}})
	require.NoError(t, err)
	require.Empty(t, cl.SessionIDs)

	// A session active a minute ago, back-dated by the caller: left out. Another not in the set:
	// left out. The expired one is claimed under the database's policy, with the set's time.
	cl, err = r.Claim(ctx, job.Chunk{CharacterID: "c", Policy: forged, Sessions: []policy.Record{
		{CharacterID: "c", SessionID: "active", LastActive: backdated},
		{CharacterID: "c", SessionID: "unknown", LastActive: backdated},
		{CharacterID: "c", SessionID: "s1", LastActive: backdated},
	}})
	require.NoError(t, err)
	require.Equal(t, []string{"s1"}, cl.SessionIDs)
	require.Equal(t, 1, count(t, pool, `
		SELECT count(*) FROM retention.claims c JOIN retention.policies p ON p.id = c.policy_id
		WHERE c.id = $1 AND c.run_id = $2 AND p.character_id IS NULL AND c.max_age = '1 day'
		  AND c.last_active_at[1] = (SELECT last_active_at FROM retention.sessions WHERE session_id = 's1')`, cl.ID, info.ID))
}
