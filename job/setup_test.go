package job_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/convai"
	"github.com/convai-retention/retention/convai/convaitest"
	"github.com/convai-retention/retention/internal/pgtest"
	"github.com/convai-retention/retention/internal/sender"
	"github.com/convai-retention/retention/job"
	"github.com/convai-retention/retention/source"
)

const testKey = "test-key-0123456789"

// bundle is what most tests need: a migrated database, a fake API and a store on them.
type bundle struct {
	db    *pgtest.Database
	pool  *pgxpool.Pool
	fake  *convaitest.Fake
	srv   *httptest.Server
	store *source.Store
	send  job.Sender
}

type setupOpts struct {
	fake    convaitest.Options
	handler func(fake http.Handler) http.Handler // wraps the fake, e.g. to act on a request
	source  string
}

func setup(t *testing.T, o setupOpts) *bundle {
	t.Helper()
	db := pgtest.New(t)
	if o.fake.APIKey == "" {
		o.fake.APIKey = testKey
	}
	fake := convaitest.New(o.fake)
	var h http.Handler = fake
	if o.handler != nil {
		h = o.handler(fake)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		fake.Close()
		srv.CloseClientConnections()
		srv.Close()
	})
	client, err := convai.New(convai.Config{BaseURL: srv.URL, APIKey: testKey})
	require.NoError(t, err)
	t.Cleanup(client.CloseIdleConnections)
	b := &bundle{db: db, pool: db.Pool, fake: fake, srv: srv, send: sender.Convai{Client: client}}
	if o.source != "" {
		b.exec(t, o.source) // the test's own source relation, created before inspection
	}
	b.store = b.storeFor(t, "retention.sessions")
	return b
}

func (b *bundle) storeFor(t *testing.T, rel string) *source.Store {
	t.Helper()
	r, err := source.ParseRelation(rel)
	require.NoError(t, err)
	src, err := source.Inspect(context.Background(), b.pool, r)
	require.NoError(t, err)
	return source.New(b.pool, src, source.Config{WriteRetry: 2 * time.Second})
}

func (b *bundle) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	_, err := b.pool.Exec(context.Background(), sql, args...)
	require.NoError(t, err)
}

func (b *bundle) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, b.pool.QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}

// strings returns the first column of every row.
func (b *bundle) strings(t *testing.T, sql string, args ...any) []string {
	t.Helper()
	rows, err := b.pool.Query(context.Background(), sql, args...)
	require.NoError(t, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		out = append(out, s)
	}
	require.NoError(t, rows.Err())
	sort.Strings(out)
	return out
}

// seed adds n sessions of a character, last active days ago each (1..n days for "spread"), to the
// source and to the fake's sessions.
func (b *bundle) seed(t *testing.T, character string, n int, daysAgo func(i int) float64) {
	t.Helper()
	ids := make([]string, n)
	ages := make([]float64, n)
	for i := range n {
		ids[i] = fmt.Sprintf("%s-s%04d", character, i)
		ages[i] = daysAgo(i)
	}
	b.exec(t, `
		INSERT INTO retention.sessions (character_id, session_id, last_active_at)
		SELECT $1, id, now() - age * interval '1 day' FROM unnest($2::text[], $3::float8[]) AS u(id, age)`,
		character, ids, ages)
	for _, id := range ids { // Convai holds them too
		b.fake.AddSession(character, id, time.Now())
	}
}

// live adds one session of character that is not expired, to the source and to the fake: a
// session the job knows is live, which a credible list shows.
func (b *bundle) live(t *testing.T, character string) {
	t.Helper()
	b.exec(t, `INSERT INTO retention.sessions (character_id, session_id, last_active_at) VALUES ($1, $1 || '-live', now())`, character)
	b.fake.AddSession(character, character+"-live", time.Now())
}

func days(d float64) func(int) float64 { return func(int) float64 { return d } }

// fakeDeleted returns "character/session" for everything the fake deleted.
func (b *bundle) fakeDeleted() []string {
	var out []string
	for c, ids := range b.fake.Deleted() {
		for _, id := range ids {
			out = append(out, c+"/"+id)
		}
	}
	sort.Strings(out)
	return out
}

// recordedDeleted returns "character/session" for every deleted row.
func (b *bundle) recordedDeleted(t *testing.T) []string {
	return b.strings(t, `SELECT character_id || '/' || session_id FROM retention.deletions WHERE status = 'deleted'`)
}

// requested returns "character/session" for every ID the fake was sent, with repeats.
func (b *bundle) requested() []string {
	var out []string
	for _, r := range b.fake.Requests() {
		for _, id := range r.SessionIDs {
			out = append(out, r.CharID+"/"+id)
		}
	}
	sort.Strings(out)
	return out
}

func fastConfig() job.Config {
	return job.Config{BackoffBase: time.Millisecond, BackoffMax: 5 * time.Millisecond, RequestTimeout: 5 * time.Second}
}

func (b *bundle) run(t *testing.T, cfg job.Config) (*job.Summary, error) {
	t.Helper()
	return b.runWith(t, context.Background(), b.store, cfg)
}

func (b *bundle) runWith(t *testing.T, ctx context.Context, store *source.Store, cfg job.Config) (*job.Summary, error) {
	t.Helper()
	r, err := job.New(store, b.send, cfg)
	require.NoError(t, err)
	return r.Run(ctx, job.RunStart{Source: "test", Settings: map[string]any{"test": true}, Host: "test"})
}

func prefixed(ids []string, prefix string) []string {
	var out []string
	for _, id := range ids {
		if strings.HasPrefix(id, prefix) {
			out = append(out, id)
		}
	}
	return out
}
