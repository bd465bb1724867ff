package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
)

// The scenarios of an app's own source, synced into retention.sessions by every run (see
// retention sync): the README's view over conversations and messages (5 messages per session),
// and a plain table with a btree index on last_active_at, read incrementally.
//
//	v  the view, first run: every session expired (compare with b)
//	w  the view, a later run: the whole seed deleted first (not measured), then 10,000 newly
//	   expired sessions
//	x  the view, a later run with nothing new
//	i  the indexed table, a later run: 10,000 new rows since the last sync, read incrementally
//	t  a plain table without an index, a later run with nothing new (a full pass of a table)
var sourceScenarios = map[string]string{
	"v": viewSource, "w": viewSource, "x": viewSource,
	"i": "app.own_sessions", "t": "app.plain_sessions",
}

const viewSource = "app.convai_retention_source"

// messagesPerSession is how many messages each session of the view has.
const messagesPerSession = 5

// sourceSQL moves the seeded sessions out of retention.sessions into the app's own tables of
// scenario name, leaving the job's set empty as a new deployment's is.
func sourceSQL(name string) string {
	switch sourceScenarios[name] {
	case viewSource:
		return fmt.Sprintf(`
			CREATE SCHEMA app;
			CREATE TABLE app.conversations (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
			                                convai_character_id text NOT NULL, convai_session_id text NOT NULL);
			CREATE TABLE app.messages (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
			                           conversation_id bigint NOT NULL, created_at timestamptz NOT NULL);
			INSERT INTO app.conversations (convai_character_id, convai_session_id)
			SELECT character_id, session_id FROM retention.sessions ORDER BY last_active_at;
			INSERT INTO app.messages (conversation_id, created_at)
			SELECT c.id, s.last_active_at - k * interval '1 minute'
			FROM app.conversations c
			JOIN retention.sessions s ON s.character_id = c.convai_character_id AND s.session_id = c.convai_session_id
			CROSS JOIN generate_series(0, %d) k;
			CREATE INDEX ON app.messages (conversation_id);
			CREATE VIEW %s AS
			SELECT c.convai_character_id AS character_id, c.convai_session_id AS session_id, max(m.created_at) AS last_active_at
			FROM app.conversations c JOIN app.messages m ON m.conversation_id = c.id
			GROUP BY 1, 2;
			TRUNCATE retention.sessions;
			ANALYZE;`, messagesPerSession-1, viewSource)
	case "app.own_sessions":
		return `
			CREATE SCHEMA app;
			CREATE TABLE app.own_sessions AS SELECT * FROM retention.sessions;
			CREATE INDEX ON app.own_sessions (last_active_at);
			TRUNCATE retention.sessions;
			ANALYZE;`
	case "app.plain_sessions":
		return `
			CREATE SCHEMA app;
			CREATE TABLE app.plain_sessions AS SELECT * FROM retention.sessions;
			TRUNCATE retention.sessions;
			ANALYZE;`
	}
	return ""
}

// newSourceSQL adds newSessions newly expired sessions to the app's source of scenario name.
func newSourceSQL(name string) string {
	switch sourceScenarios[name] {
	case viewSource:
		return fmt.Sprintf(`
			INSERT INTO app.conversations (convai_character_id, convai_session_id)
			SELECT 'new-' || (i %% 100), 'new-session-' || i FROM generate_series(1, %[1]d) AS i;
			INSERT INTO app.messages (conversation_id, created_at)
			SELECT c.id, now() - interval '3650 days' + c.id * interval '1 millisecond' - k * interval '1 minute'
			FROM app.conversations c CROSS JOIN generate_series(0, %[2]d) k
			WHERE c.convai_session_id LIKE 'new-session-%%';
			ANALYZE app.conversations, app.messages;`, newSessions, messagesPerSession-1)
	case "app.own_sessions":
		// Rows an app writes now are recent; expired here only because the bench's policy is
		// short: they follow the seed's newest row, as an incremental pass expects.
		return fmt.Sprintf(`
			INSERT INTO app.own_sessions (character_id, session_id, last_active_at)
			SELECT 'new-' || (i %% 100), 'new-session-' || i, now() - interval '30 days 1 hour' + i * interval '1 millisecond'
			FROM generate_series(1, %d) AS i;
			ANALYZE app.own_sessions;`, newSessions)
	}
	return ""
}

// isSourceScenario reports whether scenario name reads an app's source.
func isSourceScenario(name string) bool { _, ok := sourceScenarios[name]; return ok }

// primeSource runs one unmeasured run of the source that deletes (and syncs) the whole seed,
// then adds the new sessions of scenarios w and i. It returns how many sessions the measured run
// will find.
func (b *bench) primeSource(ctx context.Context, sc scenario, dbURL, apiURL string) (int, error) {
	b.logf("scenario %s: syncing and deleting the whole seed first (not measured)", sc.Name)
	cmd := exec.CommandContext(ctx, filepath.Join(b.o.binDir, "retention"), "run", "--rate", "0",
		"--concurrency", strconv.Itoa(sc.Concurrency), "--chunk-size", strconv.Itoa(sc.ChunkSize), "--format", "json",
		"--source", sourceScenarios[sc.Name])
	cmd.Env = childEnv("DATABASE_URL="+dbURL, "CONVAI_API_URL="+apiURL, "CONVAI_API_KEY="+benchKey, "LOG_LEVEL=warn")
	if out, err := cmd.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("priming run: %w: %s", err, truncate(string(out), 400))
	}
	add := newSourceSQL(sc.Name)
	if sc.Name != "w" && sc.Name != "i" {
		return 0, nil
	}
	return newSessions, execOn(ctx, dbURL, add)
}
