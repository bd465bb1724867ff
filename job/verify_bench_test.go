package job_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/convai-retention/retention/convai"
	"github.com/convai-retention/retention/convai/convaitest"
	"github.com/convai-retention/retention/internal/pgtest"
	"github.com/convai-retention/retention/internal/proccpu"
	"github.com/convai-retention/retention/internal/sender"
	"github.com/convai-retention/retention/job"
	"github.com/convai-retention/retention/source"
)

// benchVerifySessions is how many sessions BenchmarkVerifyMemoryFlags deletes, and how many
// live ones the lists show; BENCH_VERIFY_SESSIONS overrides it (a smaller set for a quick look).
const benchVerifySessions = 200_000

// benchVerifyCharacters is how many characters the sessions are spread over: each character's
// list shows benchVerifySessions/benchVerifyCharacters live sessions.
const benchVerifyCharacters = 40

// BenchmarkVerifyMemoryFlags measures what recording the lists' is_added_to_memory costs a
// verification (retention.record_memory_flags: a row of retention.memory_sightings per session
// listed as added, of retention.memory_listings per one listed as not added or unstated). A real
// database holds N deleted sessions (a run deleted them) and N live ones over 40 characters;
// the fake lists every live session, a quarter with is_added_to_memory true, a twentieth without
// it, the rest false. Then, on that one database, verifications one after the other:
//
//   - off: the flags are not recorded (a store whose RecordMemory does nothing): the
//     verification's own cost, N deletions checked and recorded;
//   - first: every listed session's flag is recorded for the first time (N rows);
//   - again: the same lists again: every row exists, ON CONFLICT DO NOTHING skips them.
//
// off runs first as a warm-up, then once more between the others. Each reports PostgreSQL's
// CPU (its whole process tree, from /proc: the server must run on this machine), in all and
// per session listed (as many as the deletions checked), the rows and bytes the two tables gained
// (pg_total_relation_size), and the record_memory_flags statements per character list. It needs
// -benchtime=1x, and -count=1: first can only be measured once per database, and -count repeats
// each phase on the same one (repeat the command instead):
//
//	make bench ARGS='go -bench=VerifyMemoryFlags -benchtime=1x -timeout=60m ./job/'
func BenchmarkVerifyMemoryFlags(b *testing.B) {
	n := benchVerifySessions
	if v := os.Getenv("BENCH_VERIFY_SESSIONS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < benchVerifyCharacters {
			b.Fatalf("BENCH_VERIFY_SESSIONS=%q: want a number of sessions, at least %d", v, benchVerifyCharacters)
		}
	}
	e := seedVerifyBench(b, n)
	for _, phase := range []string{"off-warmup", "off", "first", "again", "off-after"} {
		b.Run(phase, func(b *testing.B) {
			if b.N != 1 {
				b.Fatal("run with -benchtime=1x: the first recording can be measured once per database")
			}
			e.measure(b, phase)
		})
	}
}

// verifyBench is the seeded database, the fake and the client of BenchmarkVerifyMemoryFlags.
type verifyBench struct {
	pool     *pgxpool.Pool
	store    *source.Store
	lister   job.Lister
	pgRoot   int
	sessions int
}

func seedVerifyBench(b *testing.B, n int) *verifyBench {
	b.Helper()
	ctx := context.Background()
	fake := convaitest.New(convaitest.Options{APIKey: testKey})
	srv := httptest.NewServer(fake)
	b.Cleanup(srv.Close)
	b.Cleanup(fake.Close)
	client, err := convai.New(convai.Config{BaseURL: srv.URL, APIKey: testKey})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(client.CloseIdleConnections)
	db := pgtest.New(b)
	char := func(i int) string { return fmt.Sprintf("character-%02d", i%benchVerifyCharacters) }
	// Expired sessions, deleted by a run; then live ones, which the lists show.
	for _, sql := range []string{
		`INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '30 days')`,
		`INSERT INTO retention.sessions (character_id, session_id, last_active_at)
		 SELECT 'character-' || lpad((i % $2::int)::text, 2, '0'), 'expired-' || i, now() - interval '31 days'
		 FROM generate_series(1, $1::int) AS i`,
		`VACUUM (FREEZE, ANALYZE) retention.sessions`,
	} {
		var args []any
		if len(sql) > 100 {
			args = []any{n, benchVerifyCharacters}
		}
		if _, err := db.Pool.Exec(ctx, sql, args...); err != nil {
			b.Fatalf("seed: %v", err)
		}
	}
	seed := convaitest.Seed{}
	flags := map[string]map[string]string{}
	for i := 1; i <= n; i++ {
		c := char(i)
		if seed[c] == nil {
			seed[c], flags[c] = map[string][]time.Time{}, map[string]string{}
		}
		seed[c]["expired-"+strconv.Itoa(i)] = nil
		live := "live-" + strconv.Itoa(i)
		seed[c][live] = nil
		switch {
		case i%4 == 0:
			flags[c][live] = "true"
		case i%20 == 1:
			flags[c][live] = convaitest.ListFlagAbsent
		}
	}
	fake.AddSessions(seed)
	if err := fake.AddMemories(convaitest.MemorySeed{ListFlags: flags}); err != nil {
		b.Fatal(err)
	}
	rel, err := source.ParseRelation(source.DefaultRelation)
	if err != nil {
		b.Fatal(err)
	}
	src, err := source.Inspect(ctx, db.Pool, rel)
	if err != nil {
		b.Fatal(err)
	}
	store := source.New(db.Pool, src, source.Config{})
	runner, err := job.New(store, sender.Convai{Client: client}, job.Config{Concurrency: 8, ChunkSize: 100})
	if err != nil {
		b.Fatal(err)
	}
	sum, err := runner.Run(ctx, job.RunStart{Source: rel.String()})
	if err != nil || sum.Deleted != int64(n) {
		b.Fatalf("seed: the run deleted %d of %d: %v", sum.Deleted, n, err)
	}
	for _, sql := range []string{
		`INSERT INTO retention.sessions (character_id, session_id, last_active_at)
		 SELECT 'character-' || lpad((i % $2::int)::text, 2, '0'), 'live-' || i, now()
		 FROM generate_series(1, $1::int) AS i`,
		`VACUUM (ANALYZE)`,
	} {
		var args []any
		if len(sql) > 100 {
			args = []any{n, benchVerifyCharacters}
		}
		if _, err := db.Pool.Exec(ctx, sql, args...); err != nil {
			b.Fatalf("seed: %v", err)
		}
	}
	var checkpointer int
	if err := db.Pool.QueryRow(ctx, `SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'`).Scan(&checkpointer); err != nil {
		b.Fatal(err)
	}
	root := proccpu.PostgresParent(checkpointer)
	if root == 0 {
		b.Fatal("the PostgreSQL server does not run on this machine: its CPU cannot be read from /proc")
	}
	return &verifyBench{pool: db.Pool, store: store, lister: sender.Convai{Client: client}, pgRoot: root, sessions: n}
}

// measure runs one verification of a phase, recording the flags or not (off), and reports what
// it cost.
func (e *verifyBench) measure(b *testing.B, phase string) {
	ctx := context.Background()
	off := phase != "first" && phase != "again"
	store := &flagCountingStore{VerifyStore: e.store, off: off}
	rowsBefore, bytesBefore := e.flagTables(b)
	if phase == "first" && rowsBefore != 0 {
		b.Fatal("first found rows recorded before it: run with -count=1, and repeat the command for a spread")
	}
	cpuBefore, _ := proccpu.Tree(e.pgRoot)
	b.ResetTimer()
	sum, err := job.Verify(ctx, store, e.lister, job.Config{Rate: 0}, nil, job.VerifyStart{Host: "bench"})
	b.StopTimer()
	cpuAfter, _ := proccpu.Tree(e.pgRoot)
	if err != nil || sum.Status != job.VerifyFinished || sum.Absent != int64(e.sessions) {
		b.Fatalf("verify: %v, %s, %d of %d absent", err, sum.Status, sum.Absent, e.sessions)
	}
	rowsAfter, bytesAfter := e.flagTables(b)
	// Every live session is listed (e.sessions), and only those: the deleted ones are gone.
	pg := float64((cpuAfter - cpuBefore).Microseconds())
	b.ReportMetric(pg/1e6, "pg-s")
	b.ReportMetric(pg/float64(e.sessions), "pg-µs/listed")
	b.ReportMetric(float64(rowsAfter-rowsBefore), "rows")
	b.ReportMetric(float64(bytesAfter-bytesBefore)/float64(e.sessions), "bytes/listed")
	b.ReportMetric(float64(store.calls.Load())/float64(len(sum.Characters)), "stmts/list")
}

// flagTables returns the rows and the bytes (tables, indexes, TOAST) of memory_sightings and
// memory_listings.
func (e *verifyBench) flagTables(b *testing.B) (rows, bytes int64) {
	b.Helper()
	err := e.pool.QueryRow(context.Background(), `
		SELECT (SELECT count(*) FROM retention.memory_sightings) + (SELECT count(*) FROM retention.memory_listings),
		       pg_total_relation_size('retention.memory_sightings') + pg_total_relation_size('retention.memory_listings')`).
		Scan(&rows, &bytes)
	if err != nil {
		b.Fatal(err)
	}
	return rows, bytes
}

// flagCountingStore counts the RecordMemory calls of the verifications it starts, and with off
// makes them do nothing.
type flagCountingStore struct {
	job.VerifyStore
	off   bool
	calls atomic.Int64
}

func (s *flagCountingStore) StartVerify(ctx context.Context, start job.VerifyStart) (job.VerifyRunStore, job.VerifyInfo, error) {
	vs, info, err := s.VerifyStore.StartVerify(ctx, start)
	if err != nil {
		return nil, info, err
	}
	return &flagCountingRun{VerifyRunStore: vs, s: s}, info, nil
}

type flagCountingRun struct {
	job.VerifyRunStore
	s *flagCountingStore
}

func (r *flagCountingRun) RecordMemory(ctx context.Context, characterID string, listedAt time.Time, listed []job.MemoryListed) error {
	r.s.calls.Add(1)
	if r.s.off {
		return nil
	}
	return r.VerifyRunStore.RecordMemory(ctx, characterID, listedAt, listed)
}
