package job_test

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/convai-retention/retention/convai"
	"github.com/convai-retention/retention/convai/convaitest"
	"github.com/convai-retention/retention/internal/pgtest"
	"github.com/convai-retention/retention/internal/sender"
	"github.com/convai-retention/retention/job"
	"github.com/convai-retention/retention/source"
)

// benchRunSessions is the backlog of one BenchmarkRun iteration.
const benchRunSessions = 20_000

// BenchmarkRun measures whole runs in this process: job.Runner with source.Store on a real
// database seeded with an expired backlog interleaved over 1000 characters, and the convai
// client against the stand-in endpoint answering at once, with --concurrency 8, --chunk-size 100
// and no rate limit (scenario b of cmd/retention-bench, without the binary's wiring). Each
// iteration runs over a fresh database. It is the way to a Go CPU profile of the job:
//
//	make bench ARGS='go -bench=Run -benchtime=3x -cpuprofile=.tmp/run.cpu ./job/'
//	go tool pprof -top job.test .tmp/run.cpu
func BenchmarkRun(b *testing.B) {
	ctx := context.Background()
	fake := convaitest.New(convaitest.Options{APIKey: testKey})
	srv := httptest.NewServer(fake)
	defer srv.Close()
	defer fake.Close()
	client, err := convai.New(convai.Config{BaseURL: srv.URL, APIKey: testKey})
	if err != nil {
		b.Fatal(err)
	}
	defer client.CloseIdleConnections()
	deleted := int64(0)
	for range b.N {
		b.StopTimer()
		db := pgtest.New(b)
		for _, sql := range []string{
			`INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '30 days')`,
			`INSERT INTO retention.sessions (character_id, session_id, last_active_at)
			 SELECT md5('character-' || i % 1000)::uuid::text, md5('session-' || i),
			        now() - interval '31 days' - ($1::int - i) * interval '1 minute'
			 FROM generate_series(1, $1::int) AS i`,
			`VACUUM (FREEZE, ANALYZE) retention.sessions`,
		} {
			var args []any
			if len(sql) > 100 {
				args = append(args, benchRunSessions)
			}
			if _, err := db.Pool.Exec(ctx, sql, args...); err != nil {
				b.Fatalf("seed: %v", err)
			}
		}
		rel, err := source.ParseRelation(source.DefaultRelation)
		if err != nil {
			b.Fatal(err)
		}
		src, err := source.Inspect(ctx, db.Pool, rel)
		if err != nil {
			b.Fatal(err)
		}
		runner, err := job.New(source.New(db.Pool, src, source.Config{}), sender.Convai{Client: client},
			job.Config{Concurrency: 8, ChunkSize: 100, Rate: 0})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		sum, err := runner.Run(ctx, job.RunStart{Source: rel.String()})
		if err != nil {
			b.Fatal(err)
		}
		if sum.Deleted != benchRunSessions {
			b.Fatalf("deleted %d of %d", sum.Deleted, benchRunSessions)
		}
		deleted += sum.Deleted
	}
	b.ReportMetric(float64(deleted)/b.Elapsed().Seconds(), "sessions/s")
}
