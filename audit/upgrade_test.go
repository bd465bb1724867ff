package audit_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/tern/v2/migrate"
	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/audit"
	"github.com/convai-retention/retention/convai/convaitest"
	"github.com/convai-retention/retention/internal/pgtest"
	"github.com/convai-retention/retention/job"
	"github.com/convai-retention/retention/migrations"
)

// schemaAt returns an empty database migrated to version, and a connection to migrate it further.
func schemaAt(t *testing.T, version int32) (*bundle, *pgx.Conn) {
	t.Helper()
	db := pgtest.NewEmpty(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, db.URL)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(context.Background()) })
	_, err = conn.Exec(ctx, `CREATE SCHEMA retention`)
	require.NoError(t, err)
	m, err := migrate.NewMigrator(ctx, conn, migrations.VersionTable)
	require.NoError(t, err)
	require.NoError(t, m.LoadMigrations(migrations.FS()))
	require.NoError(t, m.MigrateTo(ctx, version))
	return &bundle{db: db, pool: db.Pool}, conn
}

// A database that recorded outcomes before recording v2 (schema version 3, the v1 protocol:
// pending rows turned final, sealed by the v1 trigger) is migrated: its trail keeps verifying,
// readers see the same rows, and a new run records through v2 beside them.
func TestV1TrailSurvivesTheMigration(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b, conn := schemaAt(t, 3)
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '30 days')`)
	b.exec(t, `INSERT INTO retention.runs (cutoff, source, status, finished_at) VALUES (now(), 'retention.sessions', 'running', NULL)`)
	b.exec(t, `INSERT INTO retention.deletions (run_id, character_id, session_id, last_active_at, max_age)
		SELECT 1, 'old', 'old-' || i, now() - interval '60 days', '30 days' FROM generate_series(1, 6) i`)
	b.exec(t, `UPDATE retention.deletions SET status = 'deleted', attempts = 1, http_status = 200, completed_at = clock_timestamp() WHERE session_id <> 'old-6'`)
	b.exec(t, `UPDATE retention.deletions SET status = 'failed', attempts = 5, error = 'HTTP 503', completed_at = clock_timestamp() WHERE session_id = 'old-6'`)
	b.exec(t, `UPDATE retention.runs SET status = 'partial', finished_at = now(), deleted = 5, failed = 1`)
	var v1Head []byte
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT hash FROM retention.seal_head`).Scan(&v1Head))
	// The app still has the session that failed, and new ones.
	b.exec(t, `INSERT INTO retention.sessions VALUES ('old', 'old-6', now() - interval '60 days'), ('old', 'old-1', now() - interval '60 days')`)
	b.seedSessions(t, "new", 7, 31)

	_, to, err := migrations.Migrate(ctx, conn)
	require.NoError(t, err)
	require.Equal(t, migrations.Latest(), to)

	res := verify(t, b.pool, audit.Checkpoint{Seq: 6, Hash: v1Head})
	require.True(t, res.Intact(), "%v", res.Problems)
	require.EqualValues(t, 6, res.Sealed)
	require.EqualValues(t, 6, b.count(t, `SELECT count(*) FROM retention.deletions WHERE run_id = 1`))
	require.EqualValues(t, 6, b.count(t, `SELECT count(*) FROM retention.deletion_outcomes WHERE seal_seq IS NOT NULL`))

	// A v2 run: old-1 is deleted already (v1) and is not sent again; old-6 failed and is.
	a := newAPI(t, convaitest.Options{})
	sum, err := a.run(t, b.pool, job.Shard{})
	require.NoError(t, err)
	require.EqualValues(t, 8, sum.Deleted, "old-6 and the 7 new")
	require.EqualValues(t, 1, b.count(t, `SELECT count(*) FROM retention.deletions WHERE session_id = 'old-1' AND status = 'deleted'`))
	require.EqualValues(t, 1, b.count(t, `SELECT count(*) FROM retention.deletions WHERE session_id = 'old-6' AND status = 'deleted'`))
	require.Greater(t, b.count(t, `SELECT min(id) FROM retention.deletions WHERE run_id = 2`), int64(6), "v2 ids never meet v1 ids")

	res = verify(t, b.pool, audit.Checkpoint{Seq: 6, Hash: v1Head})
	require.True(t, res.Intact(), "%v", res.Problems)
	require.EqualValues(t, 6, res.Sealed)
	require.EqualValues(t, 3, res.Log.Leaves, "one chunk per character and at most 5: old-6; 5 new; 2 new")
}

// A database with v2 leaves sealed before migration 008 (erasure requests, v3 leaves) keeps
// verifying after it: the v2 leaves' bytes did not change, and the log extends the checkpoint
// taken before; an erasure run then appends v3 leaves beside them.
func TestV2LogSurvivesTheErasureMigration(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b, conn := schemaAt(t, 7)

	// Claims and outcomes as schema 7 records them, sealed by its own functions (a binary of
	// this version refuses to run on schema 7).
	b.exec(t, `INSERT INTO retention.runs (id, cutoff, source, status, finished_at) OVERRIDING SYSTEM VALUE
		VALUES (1, now(), 'retention.sessions', 'succeeded', now())`)
	b.exec(t, `SELECT setval(pg_get_serial_sequence('retention.runs', 'id'), 1)`)
	b.exec(t, `INSERT INTO retention.claims (run_id, character_id, policy_id, max_age, session_ids, last_active_at)
		SELECT 1, 'c' || c, NULL, '30 days', ARRAY['s1', 's2'], ARRAY[now() - interval '40 days', now() - interval '41 days']
		FROM generate_series(1, 3) c`)
	b.exec(t, `INSERT INTO retention.outcomes (claim_id, ord, character_id, session_id, status, attempts, http_status)
		SELECT c.id, o, c.character_id, c.session_ids[o], 'deleted', 1, 200 FROM retention.claims c, generate_series(1, 2) o`)
	b.exec(t, `INSERT INTO retention.unsealed (claim_id, leaf)
		SELECT id, sha256('\x00'::bytea || retention.claim_content(id)) FROM retention.claims`)
	b.exec(t, `SELECT retention.seal()`)
	vkey, before, size := signHead(t, b)
	require.EqualValues(t, 3, size)

	_, to, err := migrations.Migrate(ctx, conn)
	require.NoError(t, err)
	require.Equal(t, migrations.Latest(), to)
	res := verifyLog(t, b, vkey, before)
	require.True(t, res.Intact(), "%v", res.Problems)

	b.seedSessions(t, "asked", 2, 1)
	b.exec(t, `INSERT INTO retention.erasure_requests (character_id, reason) VALUES ('asked', 'ticket 1')`)
	a := newAPI(t, convaitest.Options{})
	sum, err := a.run(t, b.pool, job.Shard{})
	require.NoError(t, err)
	require.Len(t, sum.Erasure.Completed, 1)
	res = verifyLog(t, b, vkey, before)
	require.True(t, res.Intact(), "%v", res.Problems)
	require.EqualValues(t, size+1, res.Log.Leaves, "one v3 leaf appended")
}
