package audit_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/audit"
	"github.com/convai-retention/retention/convai"
	"github.com/convai-retention/retention/convai/convaitest"
	"github.com/convai-retention/retention/internal/pgtest"
	"github.com/convai-retention/retention/internal/sender"
	"github.com/convai-retention/retention/job"
	"github.com/convai-retention/retention/source"
)

const testKey = "test-key-audit-0123"

// bundle is a migrated database and a superuser pool on it.
type bundle struct {
	db   *pgtest.Database
	pool *pgxpool.Pool
}

func setup(t testing.TB) *bundle {
	t.Helper()
	db := pgtest.New(t)
	return &bundle{db: db, pool: db.Pool}
}

func (b *bundle) exec(t testing.TB, sql string, args ...any) {
	t.Helper()
	_, err := b.pool.Exec(context.Background(), sql, args...)
	require.NoError(t, err)
}

func (b *bundle) count(t testing.TB, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	require.NoError(t, b.pool.QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}

// outcomes records n outcomes of character c through the protocol, as the job does: a run,
// n pending rows, then one UPDATE per chunk of rows turning them final (every third one
// failed). It returns the deletion IDs in order.
func (b *bundle) outcomes(t testing.TB, c string, n, chunk int) []int64 {
	t.Helper()
	ctx := context.Background()
	var run int64
	require.NoError(t, b.pool.QueryRow(ctx, `INSERT INTO retention.runs (cutoff, source) VALUES (now(), 'test') RETURNING id`).Scan(&run))
	rows, err := b.pool.Query(ctx, `
		INSERT INTO retention.deletions_v1 (run_id, character_id, session_id, last_active_at, max_age)
		SELECT $1, $2, $2 || '-' || i, now() - interval '40 days' - i * interval '1 minute', interval '30 days'
		FROM generate_series(1, $3::int) AS i
		RETURNING id`, run, c, n)
	require.NoError(t, err)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	require.NoError(t, err)
	for start := 0; start < len(ids); start += chunk {
		end := min(start+chunk, len(ids))
		b.exec(t, `
			UPDATE retention.deletions_v1
			SET status = CASE WHEN id % 3 = 0 THEN 'failed' ELSE 'deleted' END,
			    attempts = 1 + id % 2, http_status = CASE WHEN id % 3 = 0 THEN 503 ELSE 200 END,
			    error = CASE WHEN id % 3 = 0 THEN 'HTTP 503: try later' END, completed_at = clock_timestamp()
			WHERE id = ANY($1) AND status = 'pending'`, ids[start:end])
	}
	return ids
}

// tamper runs sql as an attacker with superuser rights would: with every trigger of the session
// off (session_replication_role = replica), so no guard stops it and nothing is sealed.
func (b *bundle) tamper(t testing.TB, sql string, args ...any) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL session_replication_role = replica`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, sql, args...)
		return err
	}))
}

// verify runs audit.Verify on pool.
func verify(t testing.TB, pool *pgxpool.Pool, cps ...audit.Checkpoint) *audit.Result {
	t.Helper()
	res, err := audit.Verify(context.Background(), pool, audit.Options{Checkpoints: cps, BatchSize: 7})
	require.NoError(t, err)
	return res
}

// seal returns the seq and hash of the seal of a deletion.
func (b *bundle) seal(t testing.TB, deletionID int64) audit.Checkpoint {
	t.Helper()
	var c audit.Checkpoint
	require.NoError(t, b.pool.QueryRow(context.Background(),
		`SELECT seq, hash FROM retention.seals WHERE deletion_id = $1`, deletionID).Scan(&c.Seq, &c.Hash))
	return c
}

// api is the stand-in Convai endpoint and a sender on it.
type api struct {
	fake *convaitest.Fake
	send job.Sender
}

func newAPI(t testing.TB, opts convaitest.Options) *api {
	t.Helper()
	opts.APIKey = testKey
	fake := convaitest.New(opts)
	srv := httptest.NewServer(fake)
	t.Cleanup(func() {
		fake.Close()
		srv.CloseClientConnections()
		srv.Close()
	})
	client, err := convai.New(convai.Config{BaseURL: srv.URL, APIKey: testKey})
	require.NoError(t, err)
	t.Cleanup(client.CloseIdleConnections)
	return &api{fake: fake, send: sender.Convai{Client: client}}
}

// run does one real run against the retention.sessions of pool.
func (a *api) run(t testing.TB, pool *pgxpool.Pool, shard job.Shard) (*job.Summary, error) {
	t.Helper()
	ctx := context.Background()
	rel, err := source.ParseRelation(source.DefaultRelation)
	require.NoError(t, err)
	src, err := source.Inspect(ctx, pool, rel)
	require.NoError(t, err)
	store := source.New(pool, src, source.Config{WriteRetry: 2 * time.Second})
	r, err := job.New(store, a.send, job.Config{
		ChunkSize: 5, Shard: shard,
		BackoffBase: time.Millisecond, BackoffMax: 5 * time.Millisecond, MaxAttempts: 2, RequestTimeout: 5 * time.Second,
	})
	require.NoError(t, err)
	return r.Run(ctx, job.RunStart{Source: source.DefaultRelation, Host: "test"})
}

// verify checks the deletions recorded in pool against the fake's list.
func (a *api) verify(t testing.TB, pool *pgxpool.Pool) (*job.VerifySummary, error) {
	t.Helper()
	ctx := context.Background()
	rel, err := source.ParseRelation(source.DefaultRelation)
	require.NoError(t, err)
	src, err := source.Inspect(ctx, pool, rel)
	require.NoError(t, err)
	store := source.New(pool, src, source.Config{WriteRetry: 2 * time.Second})
	cfg := job.Config{BackoffBase: time.Millisecond, BackoffMax: 5 * time.Millisecond, MaxAttempts: 2, RequestTimeout: 5 * time.Second}
	return job.Verify(ctx, store, a.send.(job.Lister), cfg, nil, job.VerifyStart{Host: "test"})
}

// live adds a session of each character that is not expired, to the source and to the fake: a
// verify trusts a character's list only when it shows a session the job knows is live.
func (a *api) live(t testing.TB, b *bundle, chars ...string) {
	t.Helper()
	for _, c := range chars {
		b.exec(t, `INSERT INTO retention.sessions (character_id, session_id, last_active_at) VALUES ($1, $1 || '-live', now())`, c)
		a.fake.AddSession(c, c+"-live")
	}
}

// poolAs opens a pool on the test database logged in as role (the test server trusts local
// connections), closed when the test ends.
func (b *bundle) poolAs(t testing.TB, role string) *pgxpool.Pool {
	t.Helper()
	u, err := url.Parse(b.db.URL)
	require.NoError(t, err)
	u.User = url.User(role)
	pool, err := pgxpool.New(context.Background(), u.String())
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, pool.Ping(context.Background()), "connect as %s", role)
	return pool
}

// seedSessions adds n sessions of character c, last active daysAgo days ago.
func (b *bundle) seedSessions(t testing.TB, c string, n int, daysAgo float64) {
	t.Helper()
	b.exec(t, `
		INSERT INTO retention.sessions (character_id, session_id, last_active_at)
		SELECT $1::text, $1::text || '-' || i, now() - $3::float8 * interval '1 day' - i * interval '1 second'
		FROM generate_series(1, $2::int) AS i`, c, n, daysAgo)
}

func characters(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("char-%02d", i)
	}
	return out
}
