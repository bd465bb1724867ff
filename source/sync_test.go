package source_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/internal/pgtest"
	"github.com/convai-retention/retention/job"
	"github.com/convai-retention/retention/source"
)

// appView is the README's recipe: a view over the app's conversations and messages.
const appView = `
	CREATE SCHEMA app;
	CREATE TABLE app.conversations (id bigserial PRIMARY KEY, convai_character_id text, convai_session_id text);
	CREATE TABLE app.messages (id bigserial PRIMARY KEY, conversation_id bigint REFERENCES app.conversations, created_at timestamptz);
	CREATE VIEW app.convai_retention_source AS
	SELECT c.convai_character_id AS character_id, c.convai_session_id AS session_id, max(m.created_at) AS last_active_at
	FROM app.conversations c LEFT JOIN app.messages m ON m.conversation_id = c.id
	GROUP BY 1, 2;`

type syncBundle struct {
	db  *pgtest.Database
	rel source.Relation
}

func newSyncBundle(t *testing.T, ddl string, rel string) *syncBundle {
	t.Helper()
	db := pgtest.New(t)
	_, err := db.Pool.Exec(context.Background(), ddl)
	require.NoError(t, err)
	r, err := source.ParseRelation(rel)
	require.NoError(t, err)
	return &syncBundle{db: db, rel: r}
}

func (b *syncBundle) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	_, err := b.db.Pool.Exec(context.Background(), sql, args...)
	require.NoError(t, err)
}

// conversation adds one conversation with messages at the given ages.
func (b *syncBundle) conversation(t *testing.T, character, session any, ages ...time.Duration) {
	t.Helper()
	var id int64
	require.NoError(t, b.db.Pool.QueryRow(context.Background(),
		`INSERT INTO app.conversations (convai_character_id, convai_session_id) VALUES ($1, $2) RETURNING id`, character, session).Scan(&id))
	for _, a := range ages {
		b.exec(t, `INSERT INTO app.messages (conversation_id, created_at) VALUES ($1, now() - $2::interval)`, id, a.String())
	}
}

func (b *syncBundle) sync(t *testing.T, from *pgxpool.Pool, opts source.SyncOptions) job.SyncReport {
	t.Helper()
	ctx := context.Background()
	y, err := source.NewSyncer(ctx, from, b.rel, opts)
	require.NoError(t, err)
	rep, err := y.Sync(ctx, b.db.Pool)
	require.NoError(t, err)
	return rep
}

func (b *syncBundle) set(t *testing.T) []string {
	t.Helper()
	rows, err := b.db.Pool.Query(context.Background(), `
		SELECT character_id || '/' || session_id || ' ' ||
		       CASE WHEN last_active_at = 'infinity' THEN 'undated' ELSE (now() - last_active_at > interval '1 day')::text END
		FROM retention.sessions ORDER BY 1`)
	require.NoError(t, err)
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return out
}

// TestSyncView: one pass over the README's view. Each session's latest message is its last
// activity; rows the rules refuse are counted, never added; an undated session is kept out.
func TestSyncView(t *testing.T) {
	t.Parallel()
	b := newSyncBundle(t, appView, "app.convai_retention_source")
	day := 24 * time.Hour
	b.conversation(t, "c1", "s1", 40*day, 35*day)
	b.conversation(t, "c1", "s2", 2*time.Hour)
	b.conversation(t, "c2", "s3", 50*day)
	b.conversation(t, "c2", "s3", 10*day) // the same session twice: the latest message wins
	b.conversation(t, "c2", " ", 50*day)  // blank ID: malformed
	b.conversation(t, nil, "s4", 50*day)  // no character: malformed
	b.conversation(t, "c3", "s5")         // no message: undated
	b.conversation(t, "c3", "s6", time.Hour)
	b.exec(t, `INSERT INTO app.messages (conversation_id, created_at)
		SELECT id, 'infinity' FROM app.conversations WHERE convai_session_id = 's6'`) // out of range: malformed row

	rep := b.sync(t, b.db.Pool, source.SyncOptions{})
	require.True(t, rep.Full)
	require.EqualValues(t, 7, rep.RowsRead, "one row per session of the view")
	require.EqualValues(t, 3, rep.Malformed, "blank and NULL IDs, an infinite last activity")
	require.EqualValues(t, 5, rep.Sessions)
	require.EqualValues(t, 5, rep.Added)
	require.EqualValues(t, 2, rep.Undated, "no message, and a message dated infinity: never deleted")
	require.EqualValues(t, 5, rep.SetSize)
	require.Equal(t, []string{"c1/s1 true", "c1/s2 false", "c2/s3 true", "c3/s5 undated", "c3/s6 undated"}, b.set(t))

	// The second pass finds nothing new.
	rep = b.sync(t, b.db.Pool, source.SyncOptions{})
	require.Zero(t, rep.Added)
	require.EqualValues(t, 5, rep.Unchanged)
	require.Equal(t, 2, count(t, b.db.Pool, `SELECT count(*) FROM retention.syncs`))

	// New activity moves a session's last activity on.
	b.exec(t, `INSERT INTO app.messages (conversation_id, created_at)
		SELECT id, now() FROM app.conversations WHERE convai_session_id = 's1'`)
	rep = b.sync(t, b.db.Pool, source.SyncOptions{})
	require.EqualValues(t, 1, rep.Changed)
	require.Equal(t, []string{"c1/s1 false", "c1/s2 false", "c2/s3 true", "c3/s5 undated", "c3/s6 undated"}, b.set(t))

	// A dated row for an undated session: it takes the date.
	b.exec(t, `INSERT INTO app.messages (conversation_id, created_at)
		SELECT id, now() - interval '40 days' FROM app.conversations WHERE convai_session_id = 's5'`)
	rep = b.sync(t, b.db.Pool, source.SyncOptions{})
	require.EqualValues(t, 1, rep.Changed)
	require.Contains(t, b.set(t), "c3/s5 true")
}

// TestSyncForgottenAndTruncated: sessions the source no longer has stay in the set with their
// last activity, and are counted; a truncated source makes the job forget nothing.
func TestSyncForgottenAndTruncated(t *testing.T) {
	t.Parallel()
	b := newSyncBundle(t, appView, "app.convai_retention_source")
	for i := range 4 {
		b.conversation(t, "c", fmt.Sprintf("s%d", i), time.Duration(i+1)*48*time.Hour)
	}
	b.sync(t, b.db.Pool, source.SyncOptions{})
	before := b.set(t)

	b.exec(t, `DELETE FROM app.messages WHERE conversation_id IN (SELECT id FROM app.conversations WHERE convai_session_id = 's1')`)
	b.exec(t, `DELETE FROM app.conversations WHERE convai_session_id = 's1'`)
	rep := b.sync(t, b.db.Pool, source.SyncOptions{})
	require.EqualValues(t, 1, rep.Forgotten)
	require.EqualValues(t, 1, rep.ForgottenInSet)
	require.Equal(t, before, b.set(t), "a forgotten session keeps its place and last activity")

	b.exec(t, `TRUNCATE app.messages, app.conversations`)
	rep = b.sync(t, b.db.Pool, source.SyncOptions{})
	require.Zero(t, rep.Sessions)
	require.EqualValues(t, 3, rep.Forgotten)
	require.EqualValues(t, 4, rep.ForgottenInSet)
	require.Equal(t, before, b.set(t), "a truncated source removes nothing")

	// One comes back.
	b.conversation(t, "c", "s2", 6*24*time.Hour)
	rep = b.sync(t, b.db.Pool, source.SyncOptions{})
	require.EqualValues(t, 1, rep.Returned)
	require.EqualValues(t, 3, rep.ForgottenInSet)
}

// TestSyncIncrementalLateCommit: a table with an index on last_active_at is read incrementally,
// from the last high-water mark less the overlap, so a row whose transaction committed after a
// newer row was synced is still read.
func TestSyncIncrementalLateCommit(t *testing.T) {
	t.Parallel()
	b := newSyncBundle(t, `
		CREATE TABLE public.own (character_id text NOT NULL, session_id text NOT NULL, last_active_at timestamptz NOT NULL);
		CREATE INDEX ON public.own (last_active_at);
		INSERT INTO public.own VALUES ('c', 'old', now() - interval '40 days');`, "public.own")
	ctx := context.Background()
	rep := b.sync(t, b.db.Pool, source.SyncOptions{})
	require.True(t, rep.Full, "the first pass is full")
	require.Equal(t, "last_active_at", rep.ChangedColumn)

	late, err := b.db.Pool.Begin(ctx)
	require.NoError(t, err)
	defer late.Rollback(ctx) //nolint:errcheck
	_, err = late.Exec(ctx, `INSERT INTO public.own VALUES ('c', 'late', now() - interval '2 minutes')`)
	require.NoError(t, err)
	b.exec(t, `INSERT INTO public.own VALUES ('c', 'new', now() - interval '1 minute')`)
	rep = b.sync(t, b.db.Pool, source.SyncOptions{})
	require.False(t, rep.Full)
	require.EqualValues(t, 2, rep.RowsRead, "only the rows from the last high-water mark less the overlap")
	require.EqualValues(t, 1, rep.Added)
	require.NoError(t, late.Commit(ctx))

	rep = b.sync(t, b.db.Pool, source.SyncOptions{})
	require.False(t, rep.Full)
	require.EqualValues(t, 2, rep.RowsRead)
	require.EqualValues(t, 1, rep.Added, "the late row is read: it is within the overlap")
	require.Equal(t, 3, count(t, b.db.Pool, `SELECT count(*) FROM retention.sessions`))

	rep = b.sync(t, b.db.Pool, source.SyncOptions{Full: true})
	require.True(t, rep.Full)
	require.EqualValues(t, 3, rep.Unchanged)
}

// TestSyncSourceInAnotherDatabase: the source is read from a second database by a role that can
// only SELECT it.
func TestSyncSourceInAnotherDatabase(t *testing.T) {
	t.Parallel()
	b := newSyncBundle(t, ``, "app.convai_retention_source")
	other := pgtest.NewEmpty(t)
	ctx := context.Background()
	role := "reader_" + strings.ReplaceAll(other.Name, "-", "_")
	if len(role) > 63 {
		role = role[:63]
	}
	_, err := other.Pool.Exec(ctx, appView+fmt.Sprintf(`
		CREATE ROLE %[1]s LOGIN;
		GRANT USAGE ON SCHEMA app TO %[1]s;
		GRANT SELECT ON app.convai_retention_source TO %[1]s;
		INSERT INTO app.conversations (convai_character_id, convai_session_id) VALUES ('c', 's');
		INSERT INTO app.messages (conversation_id, created_at) VALUES (1, now() - interval '3 days');`, pgx.Identifier{role}.Sanitize()))
	require.NoError(t, err)
	t.Cleanup(func() {
		_, _ = other.Pool.Exec(context.Background(), fmt.Sprintf(`DROP OWNED BY %[1]s; DROP ROLE %[1]s`, pgx.Identifier{role}.Sanitize()))
	})
	u, err := url.Parse(other.URL)
	require.NoError(t, err)
	u.User = url.User(role)
	reader, err := pgxpool.New(ctx, u.String())
	require.NoError(t, err)
	defer reader.Close()

	rep := b.sync(t, reader, source.SyncOptions{})
	require.EqualValues(t, 1, rep.Added)
	require.Equal(t, []string{"c/s true"}, b.set(t))
	_, err = reader.Exec(ctx, `INSERT INTO app.conversations (convai_character_id, convai_session_id) VALUES ('x', 'y')`)
	require.Error(t, err, "the reader can only read")
}

// TestSyncViewThatFailsMidPass: a view that errors in the middle of the pass merges nothing.
func TestSyncViewThatFailsMidPass(t *testing.T) {
	t.Parallel()
	b := newSyncBundle(t, `
		CREATE TABLE public.raw (character_id text, session_id text, n int);
		INSERT INTO public.raw SELECT 'c', 's' || i, i FROM generate_series(1, 5000) i;
		CREATE VIEW public.fragile AS
		SELECT character_id, session_id, now() - (100 / (4000 - n)) * interval '1 day' AS last_active_at FROM public.raw;`,
		"public.fragile")
	y, err := source.NewSyncer(context.Background(), b.db.Pool, b.rel, source.SyncOptions{})
	require.NoError(t, err)
	_, err = y.Sync(context.Background(), b.db.Pool)
	require.ErrorContains(t, err, "division by zero")
	require.Zero(t, count(t, b.db.Pool, `SELECT count(*) FROM retention.sessions`))
	require.Zero(t, count(t, b.db.Pool, `SELECT count(*) FROM retention.syncs`))
}

// TestRehearsedSyncLeavesNothing: a dry-run over a synced source sees what a run would, and the
// set, the sync log and the forgotten list are as they were.
func TestRehearsedSyncLeavesNothing(t *testing.T) {
	t.Parallel()
	b := newSyncBundle(t, appView, "app.convai_retention_source")
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '30 days')`)
	b.conversation(t, "c", "old", 40*24*time.Hour)
	b.conversation(t, "c", "new", time.Hour)
	ctx := context.Background()
	y, err := source.NewSyncer(ctx, b.db.Pool, b.rel, source.SyncOptions{})
	require.NoError(t, err)
	set := storeWith(t, b.db.Pool, source.Config{})
	var rep job.SyncReport
	r, err := job.New(&source.Rehearsal{Store: set, Sync: func(ctx context.Context, tx pgx.Tx) error {
		rep, err = y.Into(ctx, tx)
		return err
	}}, nil, job.Config{})
	require.NoError(t, err)
	sum, err := r.DryRun(ctx, b.rel.String(), true)
	require.NoError(t, err)
	require.EqualValues(t, 1, sum.Selected)
	require.EqualValues(t, 2, rep.Added)
	require.Zero(t, count(t, b.db.Pool, `SELECT count(*) FROM retention.sessions`))
	require.Zero(t, count(t, b.db.Pool, `SELECT count(*) FROM retention.syncs`))
	require.Zero(t, count(t, b.db.Pool, `SELECT count(*) FROM pg_class WHERE relname LIKE 'retention_sync%'`))
}

// TestSyncEndUsers: a source with an end_user_id column (any type) has it copied into the set
// and every end user and character seen together kept in retention.end_users, deleted
// sessions' too; a source without one leaves the column NULL; a later row that names no end
// user (or one the rules refuse as an ID) does not clear what the set knows; an app that writes
// the set itself is known in retention.end_users as well (the rows it inserts).
func TestSyncEndUsers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := newSyncBundle(t, `
		CREATE SCHEMA app;
		CREATE TABLE app.src (character_id text, session_id text, last_active_at timestamptz, end_user_id bigint);
		CREATE TABLE app.plain (character_id text, session_id text, last_active_at timestamptz);`, "app.src")
	endUsers := func() map[string]string {
		t.Helper()
		rows, err := b.db.Pool.Query(ctx, `SELECT character_id || '/' || session_id, coalesce(end_user_id, '-') FROM retention.sessions`)
		require.NoError(t, err)
		out := map[string]string{}
		var k, v string
		_, err = pgx.ForEachRow(rows, []any{&k, &v}, func() error { out[k] = v; return nil })
		require.NoError(t, err)
		return out
	}
	pairs := func() []string {
		t.Helper()
		rows, err := b.db.Pool.Query(ctx, `SELECT end_user_id || '@' || character_id FROM retention.end_users ORDER BY 1`)
		require.NoError(t, err)
		out, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		return out
	}
	b.exec(t, `INSERT INTO app.src VALUES ('c1', 's1', now() - interval '2 days', 7), ('c1', 's2', now(), NULL),
		('c2', 's3', now(), 7), ('c2', 's3', now() - interval '1 hour', 7), ('c3', 's4', now(), 8)`)
	y, err := source.NewSyncer(ctx, b.db.Pool, b.rel, source.SyncOptions{})
	require.NoError(t, err)
	require.True(t, y.EndUserColumn())
	_, err = y.Sync(ctx, b.db.Pool)
	require.NoError(t, err)
	require.Equal(t, map[string]string{"c1/s1": "7", "c1/s2": "-", "c2/s3": "7", "c3/s4": "8"}, endUsers())
	require.Equal(t, []string{"7@c1", "7@c2", "8@c3"}, pairs())

	// A row naming no end user, or a blank one, keeps the set's; a new one replaces it.
	b.exec(t, `UPDATE app.src SET end_user_id = NULL WHERE session_id = 's1'`)
	b.exec(t, `UPDATE app.src SET end_user_id = 9 WHERE session_id = 's2'`)
	b.exec(t, `ALTER TABLE app.src ALTER COLUMN end_user_id TYPE text`)
	b.exec(t, `UPDATE app.src SET end_user_id = ' ' WHERE session_id = 's4'`)
	b.sync(t, b.db.Pool, source.SyncOptions{})
	require.Equal(t, map[string]string{"c1/s1": "7", "c1/s2": "9", "c2/s3": "7", "c3/s4": "8"}, endUsers())
	require.Equal(t, []string{"7@c1", "7@c2", "8@c3", "9@c1"}, pairs())

	// A session deleted leaves the set; its end user and character stay known.
	b.exec(t, `DELETE FROM retention.sessions WHERE session_id = 's4'`)
	b.exec(t, `DELETE FROM app.src WHERE session_id = 's4'`)
	b.sync(t, b.db.Pool, source.SyncOptions{})
	require.Contains(t, pairs(), "8@c3")

	// A source without the column: NULL for what it adds, nothing cleared.
	b.exec(t, `INSERT INTO app.plain VALUES ('c1', 's1', now()), ('c4', 's5', now())`)
	plain, err := source.ParseRelation("app.plain")
	require.NoError(t, err)
	y, err = source.NewSyncer(ctx, b.db.Pool, plain, source.SyncOptions{})
	require.NoError(t, err)
	require.False(t, y.EndUserColumn())
	_, err = y.Sync(ctx, b.db.Pool)
	require.NoError(t, err)
	got := endUsers()
	require.Equal(t, "7", got["c1/s1"])
	require.Equal(t, "-", got["c4/s5"])

	// An app writing the set itself: the rows it inserts.
	b.exec(t, `INSERT INTO retention.sessions (character_id, session_id, last_active_at, end_user_id) VALUES ('c5', 's6', now(), 'u-direct')`)
	require.Contains(t, pairs(), "u-direct@c5")
}
