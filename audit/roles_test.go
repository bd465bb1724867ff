package audit_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/audit"
	"github.com/convai-retention/retention/convai/convaitest"
	"github.com/convai-retention/retention/job"
	"github.com/convai-retention/retention/migrations"
	"github.com/convai-retention/retention/report"
	"github.com/convai-retention/retention/source"
)

// roles are the three roles of sql/roles.sql under names of this test's own: roles belong to the
// whole server, and tests in other databases run the script at the same time.
type roles struct{ owner, job, auditor string }

// applyRoles runs sql/roles.sql as the superuser, with the role names replaced, and drops the
// roles when the test ends.
func applyRoles(t *testing.T, b *bundle) roles {
	t.Helper()
	var suffix [4]byte
	_, err := rand.Read(suffix[:])
	require.NoError(t, err)
	tag := hex.EncodeToString(suffix[:])
	r := roles{owner: "rt_owner_" + tag, job: "rt_job_" + tag, auditor: "rt_auditor_" + tag}

	ctx := context.Background()
	var superuser string
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT current_user`).Scan(&superuser))
	// Registered before any pool logs in as these roles, so it runs after those pools are closed.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		list := pgx.Identifier{r.owner}.Sanitize() + ", " + pgx.Identifier{r.job}.Sanitize() + ", " + pgx.Identifier{r.auditor}.Sanitize()
		for _, stmt := range []string{
			"REASSIGN OWNED BY " + list + " TO " + pgx.Identifier{superuser}.Sanitize(),
			"DROP OWNED BY " + list,
			"DROP ROLE " + list,
		} {
			if _, err := b.pool.Exec(ctx, stmt); err != nil {
				t.Errorf("drop the test's roles: %s: %v", stmt, err)
				return
			}
		}
	})
	r.apply(t, b)
	return r
}

// apply runs sql/roles.sql with the role names replaced.
func (r roles) apply(t *testing.T, b *bundle) {
	t.Helper()
	script, err := os.ReadFile("../sql/roles.sql")
	require.NoError(t, err)
	names := map[string]string{"owner": r.owner, "job": r.job, "auditor": r.auditor}
	sql := regexp.MustCompile(`\bretention_(owner|job|auditor)\b`).ReplaceAllStringFunc(string(script), func(m string) string {
		return names[m[len("retention_"):]]
	})
	require.NotContains(t, sql, "retention_job")
	_, err = b.pool.Exec(context.Background(), sql)
	require.NoError(t, err, "sql/roles.sql")
}

// denied checks that err is PostgreSQL's insufficient_privilege.
func denied(t *testing.T, err error, what string) {
	t.Helper()
	var pgErr *pgconn.PgError
	require.True(t, errors.As(err, &pgErr), "%s: want permission denied, got %v", what, err)
	require.Equal(t, "42501", pgErr.Code, "%s: %v", what, err)
}

func TestRolesRunReportAndAuditWithLeastPrivilege(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	r := applyRoles(t, b)

	// The script can run again: it leaves the same grants.
	grants := func() string {
		var s string
		require.NoError(t, b.pool.QueryRow(ctx, `
			SELECT string_agg(g, E'\n' ORDER BY g) FROM (
			    SELECT format('%s %s %s', grantee, table_name, privilege_type) AS g
			    FROM information_schema.role_table_grants
			    WHERE table_schema = 'retention' AND grantee IN ($1, $2)
			    UNION ALL
			    SELECT format('%s %s.%s %s', grantee, table_name, column_name, privilege_type)
			    FROM information_schema.column_privileges
			    WHERE table_schema = 'retention' AND grantee IN ($1, $2)) x`,
			r.job, r.auditor).Scan(&s))
		return s
	}
	before := grants()
	require.Contains(t, before, r.auditor+" seals SELECT")
	r.apply(t, b)
	require.Equal(t, before, grants())
	var foreign int
	require.NoError(t, b.pool.QueryRow(ctx, `
		SELECT count(*) FROM pg_class WHERE relnamespace = 'retention'::regnamespace AND relowner <> $1::regrole`, r.owner).Scan(&foreign))
	require.Zero(t, foreign, "the owner owns every table, view and sequence")

	// The owner migrates.
	ownerConn, err := pgx.Connect(ctx, b.urlAs(t, r.owner))
	require.NoError(t, err)
	_, to, err := migrations.Migrate(ctx, ownerConn)
	require.NoError(t, err)
	require.Equal(t, migrations.Latest(), to)
	require.NoError(t, ownerConn.Close(ctx))

	// The world, as the superuser writes it: a default policy, a hold, and a run that died with
	// two sessions pending.
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '30 days')`)
	b.exec(t, `INSERT INTO retention.holds (character_id, session_id, reason) VALUES ('c1', 'c1-1', 'kept')`)
	for _, c := range []string{"c1", "c2", "c3"} {
		b.seedSessions(t, c, 12, 31)
	}
	b.seedSessions(t, "fresh", 3, 1)
	b.exec(t, `INSERT INTO retention.runs (id, cutoff, source) OVERRIDING SYSTEM VALUE VALUES (900, now(), 'retention.sessions')`)
	b.exec(t, `INSERT INTO retention.claims (run_id, character_id, max_age, session_ids, last_active_at)
		SELECT 900, 'c2', '30 days', array_agg(session_id ORDER BY session_id), array_agg(last_active_at ORDER BY session_id)
		FROM retention.sessions WHERE session_id IN ('c2-1', 'c2-2')`)

	// A full run, logged in as the job.
	jobPool := b.poolAs(t, r.job)
	a := newAPI(t, convaitest.Options{})
	sum, err := a.run(t, jobPool, job.Shard{})
	require.NoError(t, err)
	require.Equal(t, job.StatusSucceeded, sum.Status)
	require.EqualValues(t, 35, sum.Deleted, "36 expired, one held")
	require.Equal(t, []int64{900}, sum.Recovered, "the job may finish a dead run's pending rows")
	require.EqualValues(t, 37, b.count(t, `SELECT count(*) FROM retention.outcomes`), "35 deleted and 2 failed by the recovery")
	require.Zero(t, b.count(t, `SELECT count(*) FROM retention.unsealed`), "every recorded claim is in the log")

	// A verify, logged in as the job: one deleted session is back at Convai. The job records it
	// present and the session waits again in the source, which only the owner may write.
	a.fake.AddSession("c3", "c3-5")
	a.live(t, b, "c1", "c2", "c3")
	vsum, err := a.verify(t, jobPool)
	require.NoError(t, err)
	require.EqualValues(t, 35, vsum.Checked)
	require.EqualValues(t, 1, vsum.Present)
	require.EqualValues(t, 1, b.count(t, `SELECT count(*) FROM retention.sessions WHERE session_id = 'c3-5'`))
	require.EqualValues(t, 0, b.count(t, `SELECT count(*) FROM retention.sessions s WHERE retention.is_deleted(s.character_id, s.session_id)`))

	// What the job cannot do: forge, edit or back-date a record, or touch a finished run.
	var claim int64
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT min(claim_id) FROM retention.outcomes WHERE status = 'deleted'`).Scan(&claim))
	var lastRun int64
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT max(id) FROM retention.runs`).Scan(&lastRun))
	for _, sql := range []string{
		// The v1 attacks: plain writes to the records and the runs.
		`INSERT INTO retention.deletions_v1 (run_id, character_id, session_id, last_active_at, max_age) VALUES (900, 'c9', 'p', now(), '1 day')`,
		`UPDATE retention.deletions_v1 SET status = 'deleted', completed_at = '2021-01-01' WHERE run_id = 900`,
		`INSERT INTO retention.outcomes (claim_id, ord, character_id, session_id, status, attempts, completed_at)
			VALUES (` + fmt.Sprint(claim) + `, 99, 'c9', 'forged', 'deleted', 1, '2021-01-01')`,
		`INSERT INTO retention.claims (run_id, character_id, max_age, session_ids, last_active_at) VALUES (900, 'c9', '1 day', '{x}', ARRAY[now()])`,
		`UPDATE retention.outcomes SET status = 'failed' WHERE claim_id = ` + fmt.Sprint(claim),
		`UPDATE retention.runs SET finished_at = '2021-01-01', cutoff = '2021-01-01', deleted = 0 WHERE id = 900`,
		`INSERT INTO retention.runs (cutoff, source) VALUES ('2021-01-01', 'forged')`,
		`UPDATE retention.log_head SET size = 0`,
		`INSERT INTO retention.log_leaves (idx, claim_id, hash) VALUES (999, 1, sha256(''::bytea))`,
		`INSERT INTO retention.checkpoints (size, root) VALUES (0, sha256(''::bytea))`,
		`SELECT * FROM retention.run_keys`,
		`SELECT retention.close_claims(ARRAY[900::bigint], 'forged')`,
		`SELECT retention.authorize(900, 'x', false)`,
		`DELETE FROM retention.runs WHERE id = 900`,
		`SELECT count(*) FROM retention.seals`,
		`INSERT INTO retention.seals (seq, deletion_id, prev_hash, hash) VALUES (99, 1, '\x00', '\x00')`,
		`UPDATE retention.seal_head SET seq = 0`,
		`UPDATE retention.policies SET enabled = false`,
		`INSERT INTO retention.holds (character_id, reason) VALUES ('c3', 'x')`,
		`DELETE FROM retention.sessions`,
		`ALTER TABLE retention.outcomes DISABLE TRIGGER USER`,
		`CREATE TABLE retention.mine (x int)`,
		`SELECT * FROM retention.deletion_outcomes`,
		`UPDATE retention.verifications SET result = 'absent'`,
		`INSERT INTO retention.verification_batches (seq, verify_id, character_id, listed_at, count, prev_hash, hash)
			VALUES (99, 1, 'c9', now(), 1, sha256(''::bytea), sha256(''::bytea))`,
		`UPDATE retention.verification_head SET seq = 0`,
		`SELECT * FROM retention.verify_keys`,
		`SELECT retention.authorize_verify(1, 'x')`,
		`UPDATE retention.verify_runs SET present = 0`,
	} {
		_, err := jobPool.Exec(ctx, sql)
		denied(t, err, "job: "+sql)
	}
	// Through the functions, without the run's token, or into a finished run.
	for _, tc := range []struct{ sql, want string }{
		{`SELECT * FROM retention.claim(` + fmt.Sprint(lastRun) + `, 'guess', 'c9', NULL, NULL, '1 day', '{forged}', ARRAY[now()])`, "not the run's credentials"},
		{`SELECT retention.record(` + fmt.Sprint(lastRun) + `, 'guess', ` + fmt.Sprint(claim) + `, '{deleted}', '{1}', '{200}', '{""}')`, "not the run's credentials"},
		{`SELECT retention.finish_run(900, 'guess', 'succeeded', 0, 0, 0, 0, '{}', false, NULL, 0, sha256(''::bytea), NULL, NULL, NULL, NULL)`, "not the run's credentials"},
		{`SELECT retention.close_run(900, '')`, "not the run's credentials"},
		{`SELECT retention.record_verifications(1, 'guess', 'c3', now(), ARRAY[1::bigint], ARRAY[false])`, "not its credentials"},
		{`SELECT retention.finish_verify(1, 'guess', 'finished', 0, NULL)`, "not its credentials"},
		{`SELECT * FROM retention.start_run(0, 1, 'forged', '{}', '', 1, '')`, "does not hold the run lock"},
	} {
		_, err := jobPool.Exec(ctx, tc.sql)
		require.ErrorContains(t, err, tc.want, tc.sql)
	}
	// A stolen credential that does start a run (it takes the free lock) can add records to that
	// run only, at the server's clock; it cannot reach the finished runs.
	conn, thief, token := thiefRun(t, jobPool)
	_, err = conn.Exec(ctx, `SELECT retention.record($1, $2, $3, '{deleted}', '{1}', '{200}', '{""}')`, thief, token, claim)
	require.ErrorContains(t, err, "is not a claim of run", "a claim of a finished run")
	_, err = conn.Exec(ctx, `SELECT retention.record($1, $2, $3, '{deleted}', '{1}', '{200}', '{""}')`, lastRun, token, claim)
	require.ErrorContains(t, err, "not the run's credentials", "its token opens its own run only")
	_, err = conn.Exec(ctx, `SELECT retention.finish_run($1, $2, 'succeeded', 0, 0, 0, 0, '{}', false, NULL, 0, sha256(''::bytea), NULL, NULL, NULL, NULL)`, thief, token)
	require.NoError(t, err)

	// The auditor reads the report and verifies the chain.
	auditorPool := b.poolAs(t, r.auditor)
	res, err := audit.Verify(ctx, auditorPool, audit.Options{})
	require.NoError(t, err)
	require.True(t, res.Intact(), "%v", res.Problems)
	require.Zero(t, res.Sealed, "no v1 seals")
	require.EqualValues(t, b.count(t, `SELECT count(*) FROM retention.claims`), res.Log.Leaves)
	proof, err := audit.Prove(ctx, auditorPool, "c2", "c2-1")
	require.NoError(t, err)
	got, err := audit.Check(proof)
	require.NoError(t, err)
	require.Equal(t, "deleted", got.Status)
	rep, err := report.Build(ctx, auditorPool, report.Options{Since: time.Now().Add(-time.Hour), Until: time.Now().Add(time.Hour)})
	require.NoError(t, err)
	require.EqualValues(t, 35, rep.Total.Deleted)
	require.EqualValues(t, 1, rep.Total.Held)
	require.EqualValues(t, 1, rep.Total.Outstanding, "the session verify found present waits again")
	require.EqualValues(t, 1, rep.VerificationTotal.Present)
	require.EqualValues(t, 34, rep.VerificationTotal.Verified)
	require.Len(t, rep.Runs, 3, "the dead run, this one and the thief's")
	require.Equal(t, []string{"interrupted", "succeeded", "succeeded"}, []string{rep.Runs[0].Status, rep.Runs[1].Status, rep.Runs[2].Status})
	ev, err := report.Session(ctx, auditorPool, report.SessionOptions{SessionID: "c2-1"})
	require.NoError(t, err)
	require.Equal(t, report.StateDeleted, ev.Findings[0].State)
	require.Len(t, ev.Findings[0].Attempts, 2, "failed with the dead run, then deleted")

	// What the auditor cannot do: write anything.
	for _, sql := range []string{
		`UPDATE retention.outcomes SET attempts = 9`,
		`INSERT INTO retention.runs (cutoff, source) VALUES (now(), 'x')`,
		`INSERT INTO retention.seals (seq, deletion_id, prev_hash, hash) VALUES (99, 1, '\x00', '\x00')`,
		`UPDATE retention.policies SET enabled = false`,
		`UPDATE retention.holds SET released_at = now()`,
		`INSERT INTO retention.sessions VALUES ('a', 'b', now())`,
		`DELETE FROM retention.runs`,
		`CREATE TABLE retention.mine (x int)`,
	} {
		_, err := auditorPool.Exec(ctx, sql)
		denied(t, err, "auditor: "+sql)
	}

	// Discover, as the job: it adds a session the app never stored, only through its function,
	// and the auditor sees the discovery.
	var added int64
	require.NoError(t, jobPool.QueryRow(ctx,
		`SELECT retention.add_discovered('c9', ARRAY['lost'], ARRAY[now() - interval '40 days'], ARRAY['added'])`).Scan(&added))
	require.EqualValues(t, 1, added)
	_, err = jobPool.Exec(ctx, `SELECT retention.add_discovered('c9', ARRAY['later'], ARRAY[now() + interval '1 day'], ARRAY['added'])`)
	require.ErrorContains(t, err, "in the future")
	_, err = jobPool.Exec(ctx, `SELECT retention.add_discovered('c9', ARRAY['other'], ARRAY[now() - interval '40 days'])`)
	denied(t, err, "job: the add_discovered that keeps no memory answer")
	_, err = jobPool.Exec(ctx, `INSERT INTO retention.discoveries (character_id, session_id, last_active_at) VALUES ('c9', 'x', now())`)
	denied(t, err, "job: insert a discovery")
	var found int64
	require.NoError(t, auditorPool.QueryRow(ctx, `SELECT count(*) FROM retention.discoveries WHERE character_id = 'c9'`).Scan(&found))
	require.EqualValues(t, 1, found)
}

// thiefRun starts a run of its own on a connection of pool, as a stolen job credential can when
// no run holds the lock: it takes the lock and calls retention.start_run. The lock goes with
// the connection when the test ends.
func thiefRun(t *testing.T, pool *pgxpool.Pool) (conn *pgxpool.Conn, run int64, token string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pool.Acquire(ctx)
	require.NoError(t, err)
	t.Cleanup(func() {
		_, _ = conn.Exec(context.Background(), `SELECT pg_advisory_unlock_all()`)
		conn.Release()
	})
	_, err = conn.Exec(ctx, `SELECT pg_advisory_lock(1380275269, 65536)`)
	require.NoError(t, err)
	require.NoError(t, conn.QueryRow(ctx, `SELECT run_id, token FROM retention.start_run(0, 1, 'thief', '{}', '', 1, '')`).Scan(&run, &token))
	return conn, run, token
}

// urlAs returns the test database's URL logged in as role.
func (b *bundle) urlAs(t *testing.T, role string) string {
	t.Helper()
	u, err := url.Parse(b.db.URL)
	require.NoError(t, err)
	u.User = url.User(role)
	return u.String()
}

// Erasure requests under least privilege: the job sends and completes them only through the
// schema's functions, cannot file, edit or complete one itself, and the auditor reads them.
func TestRolesErasureRequests(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	r := applyRoles(t, b)
	b.seedSessions(t, "c1", 3, 1)
	b.seedSessions(t, "c2", 2, 1)
	var asked, open int64
	require.NoError(t, b.pool.QueryRow(ctx, `INSERT INTO retention.erasure_requests (character_id, reason) VALUES ('c1', 'ticket 1') RETURNING id`).Scan(&asked))
	b.exec(t, `INSERT INTO retention.holds (character_id, reason) VALUES ('c2', 'kept')`)
	require.NoError(t, b.pool.QueryRow(ctx, `INSERT INTO retention.erasure_requests (character_id, reason) VALUES ('c2', 'ticket 2') RETURNING id`).Scan(&open))

	jobPool := b.poolAs(t, r.job)
	a := newAPI(t, convaitest.Options{})
	sum, err := a.run(t, jobPool, job.Shard{})
	require.NoError(t, err)
	require.Equal(t, []int64{asked}, sum.Erasure.Completed)
	require.Equal(t, []int64{open}, sum.Erasure.Blocked)
	require.EqualValues(t, 3, sum.Deleted)

	for _, sql := range []string{
		`INSERT INTO retention.erasure_requests (character_id, reason) VALUES ('c9', 'forged')`,
		`UPDATE retention.erasure_requests SET due_at = due_at + interval '1 year'`,
		`DELETE FROM retention.erasure_requests`,
		fmt.Sprintf(`INSERT INTO retention.erasure_completions (request_id, run_id, sessions) VALUES (%d, %d, 0)`, open, sum.RunID),
		`SELECT * FROM retention.erasure_status`,
	} {
		_, err := jobPool.Exec(ctx, sql)
		denied(t, err, "job: "+sql)
	}
	for _, sql := range []string{
		fmt.Sprintf(`SELECT * FROM retention.claim_erasure(%d, 'guess', %d, '{c2-1}', ARRAY[now()])`, sum.RunID, open),
		fmt.Sprintf(`SELECT retention.complete_erasure(%d, 'guess', %d)`, sum.RunID, open),
	} {
		_, err := jobPool.Exec(ctx, sql)
		require.ErrorContains(t, err, "not the run's credentials", sql)
	}

	// A stolen credential that starts a run of its own cannot complete a request whose
	// sessions are not deleted, nor claim anything new under a complete one.
	conn, thief, token := thiefRun(t, jobPool)
	var done bool
	require.NoError(t, conn.QueryRow(ctx, `SELECT retention.complete_erasure($1, $2, $3)`, thief, token, open).Scan(&done))
	require.False(t, done, "held, and not deleted")
	b.exec(t, `UPDATE retention.holds SET released_at = now()`)
	require.NoError(t, conn.QueryRow(ctx, `SELECT retention.complete_erasure($1, $2, $3)`, thief, token, open).Scan(&done))
	require.False(t, done, "retention.sessions still has its sessions, not deleted, whatever the thief names as its source")
	_, err = conn.Exec(ctx, `SELECT retention.claim_erasure($1, $2, $3, '{c1-0}', ARRAY[NULL::timestamptz])`, thief, token, open)
	require.NoError(t, err, "a thief may claim under an open request")
	_, err = conn.Exec(ctx, `SELECT retention.claim_erasure($1, $2, $3, '{other}', ARRAY[NULL::timestamptz])`, thief, token, asked)
	require.ErrorContains(t, err, "is complete")
	_, err = conn.Exec(ctx, `SELECT retention.claim_erasure($1, $2, $3, '{x}', ARRAY[NULL::timestamptz])`, thief, token, asked)
	require.ErrorContains(t, err, "is complete")
	require.Zero(t, b.count(t, `SELECT count(*) FROM retention.erasure_completions WHERE request_id = $1`, open))

	// The auditor reads the requests, their state and the report.
	auditorPool := b.poolAs(t, r.auditor)
	var state string
	require.NoError(t, auditorPool.QueryRow(ctx, `SELECT state FROM retention.erasure_status WHERE id = $1`, asked).Scan(&state))
	require.Equal(t, "completed", state)
	rep, err := report.Build(ctx, auditorPool, report.Options{Since: time.Now().Add(-time.Hour), Until: time.Now().Add(time.Hour)})
	require.NoError(t, err)
	require.Equal(t, 1, rep.ErasureTotals.Completed)
	require.Equal(t, 1, rep.ErasureTotals.Open)
	_, err = auditorPool.Exec(ctx, `INSERT INTO retention.erasure_requests (character_id, reason) VALUES ('c9', 'x')`)
	denied(t, err, "auditor: file a request")
	res, err := audit.Verify(ctx, auditorPool, audit.Options{})
	require.NoError(t, err)
	require.True(t, res.Intact(), "%v", res.Problems)
}

// A sync under least privilege: the job reads the app's table it was granted, and writes the set
// only through retention.sync_merge; it cannot write retention.sessions itself.
func TestRolesSync(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	r := applyRoles(t, b)
	b.exec(t, fmt.Sprintf(`
		CREATE SCHEMA app;
		CREATE TABLE app.own (character_id text, session_id text, last_active_at timestamptz);
		INSERT INTO app.own VALUES ('c', 's1', now() - interval '40 days'), ('c', 's2', now());
		GRANT USAGE ON SCHEMA app TO %[1]s;
		GRANT SELECT ON app.own TO %[1]s`, r.job))
	jobPool := b.poolAs(t, r.job)
	rel, err := source.ParseRelation("app.own")
	require.NoError(t, err)
	y, err := source.NewSyncer(ctx, jobPool, rel, source.SyncOptions{})
	require.NoError(t, err)
	rep, err := y.Sync(ctx, jobPool)
	require.NoError(t, err)
	require.EqualValues(t, 2, rep.Added)
	require.EqualValues(t, 2, b.count(t, `SELECT count(*) FROM retention.sessions WHERE character_id = 'c'`))
	for _, sql := range []string{
		`INSERT INTO retention.sessions VALUES ('c', 'forged', now() - interval '1 year')`,
		`DELETE FROM retention.sessions`,
		`INSERT INTO retention.syncs (source, full_pass, started_at, rows_read, sessions, added, changed, unchanged,
		     already_deleted, undated, malformed, forgotten, returned) VALUES ('x', true, now(), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)`,
	} {
		_, err := jobPool.Exec(ctx, sql)
		denied(t, err, "job: "+sql)
	}
}
