package job_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/job"
)

// TestOddPolicies edits the policy table into things the schema allows but nobody meant. Each
// gives a clear result: the right sessions, or a failed run that sent nothing and says why.
func TestOddPolicies(t *testing.T) {
	t.Parallel()

	t.Run("a century and a half", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES ('ancient', '150 years')`)
		b.exec(t, `INSERT INTO retention.sessions VALUES
			('ancient', 'older', now() - interval '160 years'),
			('ancient', 'younger', now() - interval '140 years'),
			('ancient', 'recent', now() - interval '10 days'),
			('other', 'no-policy', now() - interval '160 years')`)
		sum, err := b.run(t, fastConfig())
		require.NoError(t, err)
		require.Equal(t, job.StatusSucceeded, sum.Status)
		require.Equal(t, []string{"ancient/older"}, b.requested())
	})

	t.Run("beyond the calendar", func(t *testing.T) {
		t.Parallel()
		// cutoff - 10000 years would be before 4713 BC, where timestamptz ends: the schema
		// refuses any max_age over 200 years, so no run can fail on it.
		b := setup(t, setupOpts{})
		for _, age := range []string{"10000 years", "201 years"} {
			_, err := b.pool.Exec(context.Background(), `INSERT INTO retention.policies (character_id, max_age) VALUES ('forever', $1)`, age)
			require.ErrorContains(t, err, "policies_max_age_check", age)
		}
	})

	t.Run("a policy for a character without sessions", func(t *testing.T) {
		t.Parallel()
		// The ghost's one-hour policy moves the horizon to an hour before the cut-off: the walk reads
		// everything, and still applies each character's own policy.
		b := setup(t, setupOpts{})
		b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES
			(NULL, '30 days'), ('ghost', '1 hour'), ('other-ghost', '100 years')`)
		b.seed(t, "plain", 4, func(i int) float64 { return []float64{10, 20, 29, 40}[i] })
		sum, err := b.run(t, fastConfig())
		require.NoError(t, err)
		require.Equal(t, job.StatusSucceeded, sum.Status)
		require.Equal(t, []string{"plain/plain-s0003"}, b.requested())
	})

	t.Run("characters differing in case and spaces", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		b.exec(t, `INSERT INTO retention.policies (character_id, max_age, enabled) VALUES
			('Bot', '1 day', true), ('bot', '365 days', true), ('bot ', '1 day', true), (' bot', '1 day', false),
			('BOT', '1 day', false)`)
		for _, c := range []string{"Bot", "bot", "bot ", " bot", "BOT", "bOt"} {
			b.exec(t, `INSERT INTO retention.sessions VALUES ($1, $1 || '|s', now() - interval '10 days')`, c)
		}
		sum, err := b.run(t, fastConfig())
		require.NoError(t, err)
		require.Equal(t, job.StatusSucceeded, sum.Status)
		require.Equal(t, []string{"Bot/Bot|s", "bot /bot |s"}, b.requested(),
			"each character gets exactly its own row: 'bot' keeps a year, ' bot' and 'BOT' are disabled, 'bOt' has no policy")
	})

	t.Run("a month minus days", func(t *testing.T) {
		t.Parallel()
		// '1 mon -29 days' is more than zero to PostgreSQL (it counts a month as 30 days), but from
		// a cut-off in March it reaches back one calendar month (28 days) and forward 29: a
		// threshold after the cut-off would delete sessions active right now. The schema refuses
		// intervals with a negative part; those it takes never put a threshold after the cut-off.
		b := setup(t, setupOpts{})
		for _, age := range []string{"1 mon -29 days", "2 mons -59 days", "1 day -1 hour", "-1 year 13 mons -1 day"} {
			_, err := b.pool.Exec(context.Background(), `INSERT INTO retention.policies (character_id, max_age) VALUES ('odd', $1)`, age)
			require.ErrorContains(t, err, "policies_max_age_check", age)
		}
		b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES
			('odd', '1 mon'), ('odder', '-1 year 13 mons'), ('plain', '1 day')`)
		for _, cutoff := range []time.Time{
			time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC),
			time.Date(2028, 3, 1, 0, 0, 0, 0, time.UTC),
			time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC),
		} {
			policies, _, err := b.store.Rules(context.Background(), cutoff)
			require.NoError(t, err)
			require.Len(t, policies, 3)
			for _, p := range policies {
				require.False(t, p.Threshold.After(cutoff),
					"policy %q max_age %q: threshold %v is after the cut-off %v", p.CharacterID, p.MaxAge, p.Threshold, cutoff)
			}
		}
	})
}
