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

	t.Run("a thousand years", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES ('ancient', '1000 years')`)
		b.exec(t, `INSERT INTO retention.sessions VALUES
			('ancient', 'older', now() - interval '1100 years'),
			('ancient', 'younger', now() - interval '900 years'),
			('ancient', 'recent', now() - interval '10 days'),
			('other', 'no-policy', now() - interval '1100 years')`)
		sum, err := b.run(t, fastConfig())
		require.NoError(t, err)
		require.Equal(t, job.StatusSucceeded, sum.Status)
		require.Equal(t, []string{"ancient/older"}, b.requested())
	})

	t.Run("beyond the calendar", func(t *testing.T) {
		t.Parallel()
		// cutoff - 10000 years is before 4713 BC, where timestamptz ends.
		b := setup(t, setupOpts{})
		b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES
			(NULL, '30 days'), ('forever', '10000 years')`)
		b.seed(t, "plain", 3, days(40))
		sum, err := b.run(t, fastConfig())
		require.Error(t, err)
		require.Contains(t, err.Error(), "out of range")
		t.Logf("the run failed: %v", err)
		require.Equal(t, job.StatusFailed, sum.Status)
		require.Empty(t, b.fake.Requests(), "nothing sent")
		require.Zero(t, b.count(t, `SELECT count(*) FROM retention.deletions`))
		require.Equal(t, 1, b.count(t, `SELECT count(*) FROM retention.runs WHERE status = 'failed' AND error LIKE '%out of range%'`))
	})

	t.Run("a policy for a character without sessions", func(t *testing.T) {
		t.Parallel()
		// The ghost's one-second policy moves the horizon to the cut-off: the walk reads
		// everything, and still applies each character's own policy.
		b := setup(t, setupOpts{})
		b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES
			(NULL, '30 days'), ('ghost', '1 second'), ('other-ghost', '1000 years')`)
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
		// '1 mon -29 days' is more than zero to PostgreSQL (it counts a month as 30 days), so the
		// schema takes it; from a cut-off in March it reaches back one calendar month (28 days)
		// and forward 29. A max_age the schema accepts must never put a policy's threshold after
		// the run's cut-off: that would delete sessions active right now.
		b := setup(t, setupOpts{})
		b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES
			('odd', '1 mon -29 days'), ('odder', '2 mons -59 days'), ('plain', '1 day')`)
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
