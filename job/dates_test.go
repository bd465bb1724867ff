package job_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/job"
)

// Rows whose last activity no session can have (PostgreSQL's infinities, a year BC, a year past
// 9999, the zero time) are skipped as malformed, in a strict table and in a view, and a session
// with such a row is superseded as by an undated one: the run goes on and sends the rest.
func TestSourceSkipsUnusableDates(t *testing.T) {
	t.Parallel()
	rows := `
		('bot', 'good', now() - interval '40 days'),
		('bot', 'inf', 'infinity'),
		('bot', 'neg', '-infinity'),
		('bot', 'bc', '4713-01-01 00:00:00+00 BC'),
		('bot', 'zero', '0001-01-01 00:00:00+00'),
		('bot', 'far', '10000-01-01 00:00:00+00')`
	for _, tt := range []struct {
		name, source, rel, insert string
		want                      []string
	}{
		{"strict table", "", "retention.sessions",
			`INSERT INTO retention.sessions (character_id, session_id, last_active_at) VALUES` + rows, []string{"bot/good"}},
		{"view", appSchema, "app.retention_source",
			`INSERT INTO app.chat_sessions (bot, convai_sid, last_msg_at) VALUES` + rows + `,
			('bot', 'neg-too', now() - interval '40 days'), ('bot', 'neg-too', '-infinity'),
			('bot', 'bc-too', now() - interval '40 days'), ('bot', 'bc-too', '0044-03-15 00:00:00+00 BC')`, []string{"bot/good"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, setupOpts{source: tt.source})
			b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '30 days')`)
			b.exec(t, tt.insert)
			store := b.storeFor(t, tt.rel)
			malformed := int64(5)
			if tt.rel != "retention.sessions" {
				malformed = 7 // and the two rows that supersede neg-too and bc-too
			}

			runner, err := job.New(store, nil, fastConfig())
			require.NoError(t, err)
			dry, err := runner.DryRun(context.Background(), tt.rel, true)
			require.NoError(t, err)
			require.EqualValues(t, 1, dry.Selected)
			require.Equal(t, map[string]int64{"malformed": malformed}, dry.SkippedByReason)

			sum, err := b.runWith(t, context.Background(), store, fastConfig())
			require.NoError(t, err)
			require.Equal(t, job.StatusSucceeded, sum.Status)
			require.Equal(t, tt.want, b.requested())
			require.Equal(t, map[string]int64{"malformed": malformed}, sum.SkippedByReason)
		})
	}
}
