package job_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/job"
	"github.com/convai-retention/retention/source"
)

// A user's own table, read through a view, with every kind of bad row.
const appSchema = `
	CREATE SCHEMA app;
	CREATE TABLE app.chat_sessions (
		id          bigint GENERATED ALWAYS AS IDENTITY,
		bot         text,
		convai_sid  text,
		last_msg_at timestamptz
	);
	CREATE VIEW app.retention_source AS
		SELECT bot AS character_id, convai_sid AS session_id, last_msg_at AS last_active_at FROM app.chat_sessions;
`

func TestViewSourceSkipsBadRows(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{source: appSchema})
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '30 days')`)
	long := strings.Repeat("x", 300)
	b.exec(t, `INSERT INTO app.chat_sessions (bot, convai_sid, last_msg_at) VALUES
		('bot', 'good-1', now() - interval '40 days'),
		('bot', 'good-2', now() - interval '41 days'),
		('bot', 'naïve-会话-3', now() - interval '42 days'),
		('bot', 'dup', now() - interval '43 days'),
		('bot', 'dup', now() - interval '43 days'),
		('bot', 'later-again', now() - interval '44 days'),
		('bot', 'later-again', now() - interval '2 days'),
		('bot', 'undated-too', now() - interval '45 days'),
		('bot', 'undated-too', NULL),
		('bot', 'fresh', now() - interval '1 day'),
		('bot', NULL, now() - interval '50 days'),
		('bot', '', now() - interval '51 days'),
		('bot', '   ', now() - interval '52 days'),
		(NULL, 'orphan', now() - interval '53 days'),
		('', 'orphan-2', now() - interval '54 days'),
		('bot', $1, now() - interval '55 days'),
		('bot', E'ctl\u0001', now() - interval '56 days'),
		('bot', 'no-date', NULL)`, long)
	store := b.storeFor(t, "app.retention_source")

	sum, err := b.runWith(t, context.Background(), store, fastConfig())
	require.NoError(t, err)
	require.Equal(t, job.StatusSucceeded, sum.Status)
	require.Equal(t, []string{"bot/dup", "bot/good-1", "bot/good-2", "bot/naïve-会话-3"}, b.requested(),
		"only well-formed, expired sessions, each once; never one with later activity")
	require.Equal(t, b.requested(), b.fakeDeleted())
	require.Equal(t, map[string]int64{"malformed": 9, "duplicate": 1}, sum.SkippedByReason,
		"NULL, empty, blank and long session IDs; NULL and empty characters; control characters; two undated rows")
	require.EqualValues(t, 10, sum.Skipped)

	// The job only reads the source.
	require.Equal(t, 18, b.count(t, `SELECT count(*) FROM app.chat_sessions`))
}

func TestUUIDSourceColumns(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{source: `
		CREATE TABLE public.sessions_by_uuid (character_id uuid, session_id uuid, last_active_at timestamptz);
		INSERT INTO public.sessions_by_uuid VALUES
			('00000000-0000-0000-0000-000000000001', '10000000-0000-0000-0000-000000000001', now() - interval '9 days'),
			('00000000-0000-0000-0000-000000000001', '10000000-0000-0000-0000-000000000002', now());`})
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '1 week')`)
	sum, err := b.runWith(t, context.Background(), b.storeFor(t, "public.sessions_by_uuid"), fastConfig())
	require.NoError(t, err)
	require.EqualValues(t, 1, sum.Deleted)
	require.Equal(t, []string{"00000000-0000-0000-0000-000000000001/10000000-0000-0000-0000-000000000001"}, b.fakeDeleted())
}

func TestSessionsTableIsStrict(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{source: `CREATE VIEW public.v AS SELECT * FROM retention.sessions`})
	// retention.sessions walks its index without NULL handling; a view over it does not.
	for rel, strict := range map[string]bool{"retention.sessions": true, "public.v": false} {
		require.Equal(t, strict, inspect(t, b, rel).Strict(), rel)
	}
}

func inspect(t *testing.T, b *bundle, rel string) interface{ Strict() bool } {
	t.Helper()
	r, err := source.ParseRelation(rel)
	require.NoError(t, err)
	src, err := source.Inspect(context.Background(), b.pool, r)
	require.NoError(t, err)
	return src
}

// A page reads the next rows of the source however many of them are already deleted, so one
// statement never walks a long stretch of deleted sessions.
func TestPageStaysBoundedOverDeletedSessions(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '1 day')`)
	b.seed(t, "c", 50, func(i int) float64 { return float64(100 - i) }) // c-s0000 is the oldest
	cfg := fastConfig()
	cfg.MaxDeletions = 30
	_, err := b.run(t, cfg)
	require.NoError(t, err)

	horizon := time.Now()
	recs, err := b.store.Page(context.Background(), job.Cursor{}, horizon, 10)
	require.NoError(t, err)
	require.Len(t, recs, 10, "a full page, though every row in it is done")
	for _, r := range recs {
		require.True(t, r.Deleted, r.SessionID)
	}
	last := recs[len(recs)-1]
	recs, err = b.store.Page(context.Background(), job.Cursor{Started: true, LastActive: last.LastActive,
		CharacterID: last.CharacterID, SessionID: last.SessionID}, horizon, 25)
	require.NoError(t, err)
	require.Len(t, recs, 25)
	deleted := 0
	for _, r := range recs {
		if r.Deleted {
			deleted++
		}
	}
	require.Equal(t, 20, deleted, "rows 11-30 are deleted, 31-35 are not")

	// The next run sends exactly the 20 left.
	sum, err := b.run(t, fastConfig())
	require.NoError(t, err)
	require.EqualValues(t, 20, sum.Deleted)
	require.Len(t, b.requested(), 50)
}
