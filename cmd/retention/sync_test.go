package main

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/cmd/retention/exitcode"
)

// appSource is the README's view over the app's own tables, with a session c/gone that the app
// will forget, and one c/fresh that is not expired.
const appSource = `
	CREATE SCHEMA app;
	CREATE TABLE app.conversations (id bigserial PRIMARY KEY, convai_character_id text, convai_session_id text);
	CREATE TABLE app.messages (id bigserial PRIMARY KEY, conversation_id bigint REFERENCES app.conversations, created_at timestamptz);
	CREATE VIEW app.convai_retention_source AS
	SELECT c.convai_character_id AS character_id, c.convai_session_id AS session_id, max(m.created_at) AS last_active_at
	FROM app.conversations c JOIN app.messages m ON m.conversation_id = c.id
	GROUP BY 1, 2;
	INSERT INTO app.conversations (convai_character_id, convai_session_id)
	VALUES ('c', 'old-1'), ('c', 'old-2'), ('c', 'gone'), ('c', 'fresh');
	INSERT INTO app.messages (conversation_id, created_at)
	SELECT id, now() - CASE convai_session_id WHEN 'gone' THEN interval '20 days' WHEN 'fresh' THEN interval '1 hour'
	                                          ELSE interval '40 days' END - k * interval '1 minute'
	FROM app.conversations, generate_series(1, 3) k;`

// TestRunSyncsAnAppSource: a run of the README's view syncs it into retention.sessions first and
// deletes from the set; a session the app forgets stays in the set and is deleted when it
// expires; a dry-run shows the run's numbers and leaves nothing.
func TestRunSyncsAnAppSource(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.exec(t, appSource)
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '30 days')`)
	src := []string{"--source", "app.convai_retention_source"}

	dry := b.run(t, append([]string{"run", "--dry-run"}, src...)...)
	require.Equal(t, exitcode.OK, dry.code, "%s", dry)
	require.Contains(t, dry.stdout, "Would delete 2 sessions")
	require.Contains(t, dry.stdout, "synced app.convai_retention_source into retention.sessions (full")
	require.Zero(t, b.count(t, `SELECT count(*) FROM retention.sessions`), "the dry-run leaves nothing")
	require.Zero(t, b.count(t, `SELECT count(*) FROM retention.syncs`))

	r := b.run(t, append([]string{"run"}, src...)...)
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Contains(t, r.stdout, "2 deleted")
	require.Contains(t, r.stdout, "read 4 rows; 4 added")
	require.Equal(t, []string{"c/old-1", "c/old-2"}, b.recordedDeleted(t))
	require.Equal(t, []string{"c/fresh", "c/gone"}, b.strings(t, `SELECT character_id || '/' || session_id FROM retention.sessions`))
	require.Equal(t, []string{"retention.sessions"}, b.strings(t, `SELECT source FROM retention.runs`), "the run read the set")

	// The app forgets c/gone before it expires; a later run still deletes it when it does.
	b.exec(t, `DELETE FROM app.messages WHERE conversation_id = (SELECT id FROM app.conversations WHERE convai_session_id = 'gone')`)
	r = b.run(t, "sync", "--source", "app.convai_retention_source")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Contains(t, r.stdout, "2 already deleted")
	require.Contains(t, r.stdout, "1 newly forgotten by the source")
	b.exec(t, `UPDATE retention.policies SET max_age = '10 days'`)
	r = b.run(t, append([]string{"run"}, src...)...)
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Contains(t, r.stdout, "1 deleted")
	require.Equal(t, []string{"c/gone", "c/old-1", "c/old-2"}, b.recordedDeleted(t))
	require.Equal(t, []string{"c/fresh"}, b.strings(t, `SELECT character_id || '/' || session_id FROM retention.sessions`))
}

// TestSyncUsage: the sync's own mistakes are exit 2, before anything is read.
func TestSyncUsage(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"sync"}, "nothing to sync"},
		{[]string{"sync", "--source", "app"}, `invalid source "app"`},
		{[]string{"sync", "--source", "public.missing"}, "source public.missing: no such table or view"},
		{[]string{"sync", "--source", "retention.forgotten_in_set", "--changed-column", "x;drop"}, "invalid changed column"},
		{[]string{"sync", "--source", "retention.forgotten_in_set", "--changed-column", "character_id"}, "want timestamp with time zone"},
	} {
		r := b.run(t, tt.args...)
		require.Equal(t, exitcode.Usage, r.code, "%v: %s", tt.args, r)
		require.Contains(t, r.stderr, tt.want, "%v", tt.args)
	}
	r := run(t, with(b.env, "SOURCE_DATABASE_URL", "postgres://u:hunter2secret@127.0.0.1:1/x?connect_timeout=1"),
		"sync", "--source", "app.v")
	require.NotEqual(t, exitcode.OK, r.code)
	require.NotContains(t, r.stdout+r.stderr, "hunter2secret")
}

// TestDiscoverAddsToTheSetOfAnAppSource: with an app's view as the source, discover syncs it
// first and adds the sessions Convai has beyond it to the job's own set.
func TestDiscoverAddsToTheSetOfAnAppSource(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.exec(t, appSource)
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '30 days')`)
	b.fake.AddSession("c", "fresh")
	b.fake.AddSession("c", "never-stored", time.Now().Add(-90*24*time.Hour))
	r := b.run(t, "discover", "--character", "c", "--source", "app.convai_retention_source")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM retention.sessions WHERE session_id = 'never-stored'`))
	require.Equal(t, 5, b.count(t, `SELECT count(*) FROM retention.sessions`), "the view's four and the discovered one")
	require.Zero(t, b.count(t, `SELECT count(*) FROM app.conversations WHERE convai_session_id = 'never-stored'`))
}

// TestPlanOfAnAppSourceSyncsInItsTransaction: plan and policy apply --dry-run of an app's view
// measure the job's set as the next run would (the sync rehearsed in the plan's transaction),
// name the source, and leave nothing.
func TestPlanOfAnAppSourceSyncsInItsTransaction(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.exec(t, appSource)
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '30 days')`)
	r := b.run(t, "plan", "--source", "app.convai_retention_source", "--output", "json")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	var p struct {
		Source         string `json:"source"`
		SourceSessions int64  `json:"source_sessions"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &p), "%s", r)
	require.Equal(t, "app.convai_retention_source (synced into retention.sessions)", p.Source)
	require.EqualValues(t, 4, p.SourceSessions)
	require.Zero(t, b.count(t, `SELECT count(*) FROM retention.sessions`), "the plan leaves nothing")
	require.Zero(t, b.count(t, `SELECT count(*) FROM retention.syncs`))
}

// TestReportOfAnAppSourceSaysHowCurrentTheSetIs: the report of an app's source reads the job's
// set and says when it was last synced, in every format; before any sync it says so, as an alarm.
func TestReportOfAnAppSourceSaysHowCurrentTheSetIs(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.exec(t, appSource)
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '30 days')`)
	src := []string{"--source", "app.convai_retention_source"}
	r := b.run(t, append([]string{"report", "--format", "table"}, src...)...)
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Contains(t, r.stdout, "app.convai_retention_source has never been synced into retention.sessions")

	require.Equal(t, exitcode.OK, b.run(t, append([]string{"run"}, src...)...).code)
	r = b.run(t, append([]string{"report", "--format", "json"}, src...)...)
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	var rep struct {
		Source string `json:"source"`
		Sync   struct {
			Source     string  `json:"source"`
			LastSyncAt *string `json:"last_sync_at"`
			Syncs      int64   `json:"syncs"`
			RowsRead   int64   `json:"rows_read"`
			Added      int64   `json:"added"`
		} `json:"sync"`
		Total struct {
			Deleted int64 `json:"deleted"`
		} `json:"total"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep), "%s", r)
	require.Equal(t, "retention.sessions", rep.Source)
	require.Equal(t, "app.convai_retention_source", rep.Sync.Source)
	require.NotNil(t, rep.Sync.LastSyncAt)
	require.EqualValues(t, 1, rep.Sync.Syncs)
	require.EqualValues(t, 4, rep.Sync.RowsRead)
	require.EqualValues(t, 4, rep.Sync.Added)
	require.EqualValues(t, 2, rep.Total.Deleted)
	for _, format := range []string{"table", "html"} {
		r = b.run(t, append([]string{"report", "--format", format}, src...)...)
		require.Equal(t, exitcode.OK, r.code, "%s", r)
		require.Contains(t, r.stdout, "app.convai_retention_source synced into retention.sessions, last at", format)
	}
	r = b.run(t, append([]string{"report", "--format", "csv", "--table", "summary"}, src...)...)
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Contains(t, r.stdout, "sync_rows_read,4")
}
