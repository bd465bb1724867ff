package audit_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/job"
	"github.com/convai-retention/retention/source"
)

// BenchmarkRecord measures source.Store.Record of one 100-session chunk, the statement the job
// runs once per request, with the seal and guard triggers of migration 002 and with them
// disabled. "parallel" records from GOMAXPROCS goroutines at once, as concurrent workers and
// shards do, all sealing into the one chain.
//
//	go test -run='^$' -bench=Record -benchtime=1000x -count=5 ./audit/
//	make bench ARGS='go -bench=Record -benchtime=1000x -count=5 ./audit/'
func BenchmarkRecord(b *testing.B) {
	for _, sealed := range []bool{true, false} {
		for _, parallel := range []bool{false, true} {
			name := map[bool]string{true: "sealed", false: "unsealed"}[sealed]
			if parallel {
				name += "/parallel"
			}
			b.Run(name, func(b *testing.B) { benchRecord(b, sealed, parallel) })
		}
	}
}

const benchChunk = 100

func benchRecord(b *testing.B, sealed, parallel bool) {
	ctx := context.Background()
	bd := setup(b)
	if !sealed {
		bd.exec(b, `ALTER TABLE retention.deletions DISABLE TRIGGER USER`)
	}
	rel, err := source.ParseRelation(source.DefaultRelation)
	require.NoError(b, err)
	src, err := source.Inspect(ctx, bd.pool, rel)
	require.NoError(b, err)
	store := source.New(bd.pool, src, source.Config{})
	var run int64
	require.NoError(b, bd.pool.QueryRow(ctx, `INSERT INTO retention.runs (cutoff, source) VALUES (now(), 'bench') RETURNING id`).Scan(&run))
	// b.N chunks of pending rows, one character each, as Claim leaves them.
	bd.exec(b, `
		INSERT INTO retention.deletions (run_id, character_id, session_id, last_active_at, max_age, policy_id)
		SELECT $1, 'c-' || c, 's-' || s, now() - interval '40 days', interval '30 days', 1
		FROM generate_series(0, $2::int - 1) AS c, generate_series(0, $3::int - 1) AS s`, run, b.N, benchChunk)
	bd.exec(b, `VACUUM ANALYZE retention.deletions`)
	outcomes := func(i int64) (string, []job.Outcome) {
		outs := make([]job.Outcome, benchChunk)
		for s := range outs {
			outs[s] = job.Outcome{SessionID: fmt.Sprintf("s-%d", s), Deleted: s%10 != 0, Attempts: 1, HTTPStatus: 200}
		}
		return fmt.Sprintf("c-%d", i), outs
	}
	var next atomic.Int64
	record := func() error {
		c, outs := outcomes(next.Add(1) - 1)
		return store.Record(ctx, run, c, outs)
	}
	b.ResetTimer()
	if parallel {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := record(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	} else {
		for range b.N {
			if err := record(); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*benchChunk), "µs/row")
	want := int64(0)
	if sealed {
		want = int64(b.N * benchChunk)
	}
	require.Equal(b, want, bd.count(b, `SELECT count(*) FROM retention.seals`))
}
