package source_test

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/convai-retention/retention/internal/pgtest"
	"github.com/convai-retention/retention/job"
	"github.com/convai-retention/retention/policy"
	"github.com/convai-retention/retention/source"
)

// The benchmarks below measure the statements a run sends for each selection page and for each
// chunk, on a real database seeded with benchSessions expired sessions interleaved over
// benchCharacters characters (the layout cmd/retention-bench seeds). They need PostgreSQL, as
// the tests do, and run only with -bench:
//
//	make bench ARGS='go -bench=. ./source/'

const (
	benchSessions   = 100_000
	benchCharacters = 1000
	benchPage       = 1000 // the default --page-size
	benchChunk      = 100  // the default --chunk-size
)

// benchStore is a seeded database and a Store reading it.
type benchStore struct {
	pool    *pgxpool.Pool
	store   *source.Store
	horizon time.Time
	policy  policy.Policy
}

func seedBench(b *testing.B, conns int32) *benchStore {
	b.Helper()
	return seedBenchN(b, conns, benchSessions)
}

// seedBenchN is seedBench with n sessions.
func seedBenchN(b *testing.B, conns int32, n int) *benchStore {
	b.Helper()
	ctx := context.Background()
	db := pgtest.New(b)
	cfg, err := pgxpool.ParseConfig(db.URL)
	if err != nil {
		b.Fatal(err)
	}
	cfg.MaxConns = conns
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	for _, sql := range []string{
		`INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '30 days')`,
		fmt.Sprintf(`INSERT INTO retention.sessions (character_id, session_id, last_active_at)
			SELECT md5('character-' || i %% %[2]d)::uuid::text, md5('session-' || i),
			       now() - interval '31 days' - (%[1]d - i) * interval '1 minute'
			FROM generate_series(1, %[1]d) AS i`, n, benchCharacters),
		`VACUUM (FREEZE, ANALYZE) retention.sessions`,
	} {
		if _, err := pool.Exec(ctx, sql); err != nil {
			b.Fatalf("seed: %v", err)
		}
	}
	rel, err := source.ParseRelation(source.DefaultRelation)
	if err != nil {
		b.Fatal(err)
	}
	src, err := source.Inspect(ctx, pool, rel)
	if err != nil {
		b.Fatal(err)
	}
	store := source.New(pool, src, source.Config{})
	now, err := store.Now(ctx)
	if err != nil {
		b.Fatal(err)
	}
	policies, holds, err := store.Rules(ctx, now)
	if err != nil {
		b.Fatal(err)
	}
	rules, err := policy.NewSet(policies, holds)
	if err != nil {
		b.Fatal(err)
	}
	horizon, ok := rules.Horizon()
	if !ok {
		b.Fatal("no horizon")
	}
	return &benchStore{pool: pool, store: store, horizon: horizon, policy: rules.Decide("any").Policy}
}

// markDeleted records the oldest n sessions deleted by a finished run, as a run that got that far
// leaves them, and analyses the deletions.
func (s *benchStore) markDeleted(b *testing.B, n int) {
	b.Helper()
	ctx := context.Background()
	for _, sql := range []string{
		`ALTER TABLE retention.deletions DISABLE TRIGGER USER`, // seeding, not sealing
		`INSERT INTO retention.runs (cutoff, source, status, finished_at) VALUES (now(), 'bench', 'succeeded', now())`,
		fmt.Sprintf(`INSERT INTO retention.deletions (run_id, character_id, session_id, status, attempts, last_active_at, max_age, completed_at)
			SELECT (SELECT max(id) FROM retention.runs), character_id, session_id, 'deleted', 1, last_active_at, '30 days', now()
			FROM retention.sessions ORDER BY last_active_at LIMIT %d`, n),
		`ALTER TABLE retention.deletions ENABLE TRIGGER USER`,
		`VACUUM ANALYZE retention.deletions`,
	} {
		if _, err := s.pool.Exec(ctx, sql); err != nil {
			b.Fatalf("mark deleted: %v", err)
		}
	}
}

// BenchmarkPage measures Store.Page, one page of benchPage rows:
//   - first: the first page of a fresh backlog (what a run waits for before its first request);
//   - walk: pages one after the other from the cursor, the steady state of a run;
//   - first-half-deleted: the first page when the older half is recorded deleted, as for the next
//     run after an interrupted one: the page walks past every deleted session first;
//   - walk-half-deleted: the pages right after the deleted half, as in the middle of a run.
func BenchmarkPage(b *testing.B) {
	b.Run("first", func(b *testing.B) { benchPageFrom(b, 0, false) })
	b.Run("walk", func(b *testing.B) { benchPageFrom(b, 0, true) })
	b.Run("first-half-deleted", func(b *testing.B) { benchPageFrom(b, benchSessions/2, false) })
	b.Run("walk-half-deleted", func(b *testing.B) { benchPageFrom(b, benchSessions/2, true) })
}

func benchPageFrom(b *testing.B, deleted int, walk bool) {
	ctx := context.Background()
	s := seedBench(b, 4)
	start := job.Cursor{}
	if deleted > 0 {
		s.markDeleted(b, deleted)
		if walk {
			start.Started = true
			if err := s.pool.QueryRow(ctx, `
				SELECT last_active_at, character_id, session_id FROM retention.sessions
				ORDER BY last_active_at, character_id, session_id OFFSET $1 - 1 LIMIT 1`, deleted).
				Scan(&start.LastActive, &start.CharacterID, &start.SessionID); err != nil {
				b.Fatal(err)
			}
		}
	}
	cur := start
	rows := 0
	for b.Loop() {
		recs, err := s.store.Page(ctx, cur, s.horizon, benchPage)
		if err != nil {
			b.Fatal(err)
		}
		rows += len(recs)
		switch last := len(recs) - 1; {
		case !walk || last < 0 || len(recs) < benchPage:
			cur = start
		default:
			r := recs[last]
			cur = job.Cursor{Started: true, LastActive: r.LastActive, CharacterID: r.CharacterID, SessionID: r.SessionID}
		}
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkClaimRecord measures one chunk's database work: Claim of benchChunk sessions, then
// Record of their outcomes (all confirmed); the log is sealed once at the end, outside the timing. "parallel" runs 8 chunks at a time, as a run with --concurrency 8 does.
func BenchmarkClaimRecord(b *testing.B) {
	b.Run("serial", func(b *testing.B) { benchClaimRecord(b, false) })
	b.Run("parallel", func(b *testing.B) { benchClaimRecord(b, true) })
}

func benchClaimRecord(b *testing.B, parallel bool) {
	ctx := context.Background()
	s := seedBench(b, 12)
	run, _, err := s.store.StartRun(ctx, job.RunStart{Shard: job.Shard{Count: 1}, Source: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer run.Close(ctx) //nolint:errcheck // closing the connection releases the lock anyway
	var next atomic.Int64
	at := time.Now().Add(-40 * 24 * time.Hour)
	chunk := func() (job.Chunk, []job.Outcome) {
		n := next.Add(1)
		c := job.Chunk{CharacterID: fmt.Sprintf("character-%d", n%benchCharacters), Policy: s.policy,
			Sessions: make([]policy.Record, benchChunk)}
		outs := make([]job.Outcome, benchChunk)
		for i := range c.Sessions {
			id := fmt.Sprintf("%016x%016x", n, i)
			c.Sessions[i] = policy.Record{CharacterID: c.CharacterID, SessionID: id, LastActive: at}
			outs[i] = job.Outcome{SessionID: id, Deleted: true, Attempts: 1, HTTPStatus: 200}
		}
		return c, outs
	}
	one := func() {
		c, outs := chunk()
		claim, err := run.Claim(ctx, c)
		if err != nil {
			b.Error(err)
			return
		}
		if len(claim.SessionIDs) != benchChunk {
			b.Errorf("claimed %d of %d", len(claim.SessionIDs), benchChunk)
			return
		}
		if err := run.Record(ctx, claim, outs); err != nil {
			b.Error(err)
		}
	}
	if parallel {
		b.SetParallelism(max(1, 8/runtime.GOMAXPROCS(0)))
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				one()
			}
		})
	} else {
		for b.Loop() {
			one()
		}
	}
	elapsed := b.Elapsed()
	if err := run.Seal(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(next.Load()*benchChunk)/elapsed.Seconds(), "sessions/s")
}
