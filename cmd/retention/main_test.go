package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/convai-retention/retention/convai/convaitest"
	"github.com/convai-retention/retention/internal/pgtest"
	"github.com/convai-retention/retention/internal/syncbuf"
)

// testKey is the API key the fake of every bundle accepts.
const testKey = "test-key-7c1e9a"

func TestMain(m *testing.M) {
	code := pgtest.Wrap(m).Run()
	removeBinaries()
	if code == 0 {
		if err := goleak.Find(
			// signal.Notify, called by Main, starts a loop that lives as long as the process.
			goleak.IgnoreAnyFunction("os/signal.loop"),
			// httptest servers close their idle connections asynchronously.
			goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		); err != nil {
			fmt.Fprintf(os.Stderr, "goroutines left running: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// bundle is what most tests need: a migrated database, a fake Convai API behind a gate, and the
// environment that points the program at both.
type bundle struct {
	db   *pgtest.Database
	fake *convaitest.Fake
	gate *gate
	srv  *httptest.Server
	// env is the program's environment: DATABASE_URL, the API key and URL, and fast retries.
	env map[string]string
}

func setup(t *testing.T) *bundle {
	t.Helper()
	db := pgtest.New(t)
	fake := convaitest.New(convaitest.Options{APIKey: testKey})
	g := &gate{next: fake, open: make(chan struct{})}
	srv := httptest.NewServer(g)
	t.Cleanup(func() {
		g.release()
		fake.Close()
		srv.CloseClientConnections()
		srv.Close()
	})
	return &bundle{db: db, fake: fake, gate: g, srv: srv, env: map[string]string{
		"DATABASE_URL":           db.URL,
		"CONVAI_API_KEY":         testKey,
		"CONVAI_API_URL":         srv.URL,
		"RETENTION_RATE":         "0",
		"RETENTION_BACKOFF_BASE": "1ms",
		"RETENTION_BACKOFF_MAX":  "5ms",
	}}
}

// with returns a copy of env with the given name/value pairs set; an empty value removes it.
func with(env map[string]string, kv ...string) map[string]string {
	out := maps.Clone(env)
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			delete(out, kv[i])
		} else {
			out[kv[i]] = kv[i+1]
		}
	}
	return out
}

// result is what one invocation of the program did.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// run calls Main in-process with env as its whole environment.
func run(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	var stdout, stderr syncbuf.Buffer
	getenv := func(k string) string { return env[k] }
	code := Main(context.Background(), args, strings.NewReader(""), &stdout, &stderr, getenv)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// run calls Main with the bundle's environment.
func (b *bundle) run(t *testing.T, args ...string) result {
	t.Helper()
	return run(t, b.env, args...)
}

func (b *bundle) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	_, err := b.db.Pool.Exec(context.Background(), sql, args...)
	require.NoError(t, err)
}

func (b *bundle) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, b.db.Pool.QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}

// strings returns the first column of every row, sorted.
func (b *bundle) strings(t *testing.T, sql string, args ...any) []string {
	t.Helper()
	rows, err := b.db.Pool.Query(context.Background(), sql, args...)
	require.NoError(t, err)
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		out = append(out, s)
	}
	require.NoError(t, rows.Err())
	sort.Strings(out)
	return out
}

// dump returns every row of the retention tables as text, in a stable order.
func (b *bundle) dump(t *testing.T, tables ...string) string {
	t.Helper()
	var sb strings.Builder
	for _, tbl := range tables {
		var n int
		var rows string
		require.NoError(t, b.db.Pool.QueryRow(context.Background(), `
			SELECT count(*), coalesce(string_agg(x::text, E'\n' ORDER BY x::text), '')
			FROM retention.`+tbl+` x`).Scan(&n, &rows))
		fmt.Fprintf(&sb, "%s (%d rows)\n%s\n", tbl, n, rows)
	}
	return sb.String()
}

// recordedDeleted returns "character/session" of every row recorded deleted, with repeats.
func (b *bundle) recordedDeleted(t *testing.T) []string {
	t.Helper()
	return b.strings(t, `SELECT character_id || '/' || session_id FROM retention.deletions WHERE status = 'deleted'`)
}

// fakeDeleted returns "character/session" of everything the fake deleted.
func (b *bundle) fakeDeleted() []string {
	out := []string{}
	for c, ids := range b.fake.Deleted() {
		for _, id := range ids {
			out = append(out, c+"/"+id)
		}
	}
	sort.Strings(out)
	return out
}

// seed adds n sessions of a character named character-prefix-i, last active days ago plus i
// seconds, and returns them as "character/session".
func (b *bundle) seed(t *testing.T, character, prefix string, n int, days float64) []string {
	t.Helper()
	b.exec(t, `
		INSERT INTO retention.sessions (character_id, session_id, last_active_at)
		SELECT $1::text, $1::text || '-' || $2::text || '-' || i, now() - $4::float8 * interval '1 day' - i * interval '1 second'
		FROM generate_series(0, $3::int - 1) AS i`, character, prefix, n, days)
	out := make([]string, n)
	for i := range n {
		out[i] = fmt.Sprintf("%s/%s-%s-%d", character, character, prefix, i)
	}
	return out
}

// seedWorld writes policies, holds and sessions that exercise every rule, and returns the
// sessions a run must delete, sorted, as "character/session":
//
//	default policy 30 days; c-own has its own 7 days; c-off its own, disabled
//	c-held is held as a whole; session c-def-old-1 is held on its own
func (b *bundle) seedWorld(t *testing.T) []string {
	t.Helper()
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age, enabled) VALUES
		(NULL, '30 days', true), ('c-own', '7 days', true), ('c-off', '1 day', false)`)
	b.exec(t, `INSERT INTO retention.holds (character_id, session_id, reason) VALUES
		('c-held', NULL, 'legal hold'), ('c-def', 'c-def-old-1', 'support ticket')`)
	var eligible []string
	for _, id := range b.seed(t, "c-def", "old", 4, 40) {
		if id != "c-def/c-def-old-1" {
			eligible = append(eligible, id)
		}
	}
	b.seed(t, "c-def", "new", 2, 10) // not expired under the default
	eligible = append(eligible, b.seed(t, "c-own", "old", 2, 8)...)
	b.seed(t, "c-own", "new", 1, 3)    // not expired under its own policy
	b.seed(t, "c-off", "old", 2, 400)  // its policy is disabled
	b.seed(t, "c-held", "old", 2, 400) // held
	eligible = append(eligible, b.seed(t, "c-two", "old", 3, 31)...)
	sort.Strings(eligible)
	return eligible
}

// worldSkippedHeld is how many expired sessions of seedWorld a hold protects.
const worldSkippedHeld = 3

// closedURL returns a DATABASE_URL on a local port where nothing listens.
func closedURL(t *testing.T, userinfo string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return "postgres://" + userinfo + "@" + addr + "/retention?sslmode=disable&connect_timeout=5"
}

// gate passes requests to the fake and records the IDs of each. Once armed with hangAfter, it
// holds every request past the first n until the client goes away or release is called; held
// requests never reach the fake.
type gate struct {
	next http.Handler
	open chan struct{}

	pass     atomic.Int64 // requests let through before holding; 0 = all
	served   atomic.Int64
	holding  atomic.Int64
	once     sync.Once
	mu       sync.Mutex
	received []string // "character/session" of every request, with repeats
}

func (g *gate) hangAfter(n int64) { g.pass.Store(n) }

func (g *gate) release() { g.once.Do(func() { close(g.open) }) }

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	var req struct {
		CharID     string   `json:"charID"`
		SessionIDs []string `json:"sessionIDs"`
	}
	_ = json.Unmarshal(body, &req)
	g.mu.Lock()
	for _, id := range req.SessionIDs {
		g.received = append(g.received, req.CharID+"/"+id)
	}
	g.mu.Unlock()
	if n := g.served.Add(1); g.pass.Load() > 0 && n > g.pass.Load() {
		g.holding.Add(1)
		defer g.holding.Add(-1)
		select {
		case <-g.open:
		case <-r.Context().Done():
			return
		}
	}
	g.next.ServeHTTP(w, r)
}

// requested returns "character/session" of every ID any request carried, sorted, with repeats.
func (g *gate) requested() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := slices.Clone(g.received)
	sort.Strings(out)
	return out
}

// unique reports whether the sorted ss has no repeats.
func unique(ss []string) bool {
	return len(slices.Compact(slices.Clone(ss))) == len(ss)
}

// subset reports whether every element of sub is in set.
func subset(sub, set []string) bool {
	in := make(map[string]bool, len(set))
	for _, s := range set {
		in[s] = true
	}
	for _, s := range sub {
		if !in[s] {
			return false
		}
	}
	return true
}
