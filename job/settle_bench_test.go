package job_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/convai-retention/retention/internal/pgtest"
	"github.com/convai-retention/retention/job"
	"github.com/convai-retention/retention/source"
)

// sliceLister lists the same sessions for every character, in this process: the benchmark
// measures the job's side of a list, not HTTP and JSON.
type sliceLister []job.ListedSession

func (l sliceLister) List(_ context.Context, _ string, fn func(job.ListedSession) error) job.Answer {
	for _, s := range l {
		if err := fn(s); err != nil {
			return job.Answer{Class: job.Permanent, Err: err}
		}
	}
	return job.Answer{Class: job.Confirmed}
}

// BenchmarkSettle measures what settling refused sessions costs a run: each iteration a fresh
// settler lists one character of listed sessions (0, 1,000 or 10,000, one in ten added to
// memory) and looks up 100 refused sessions in it, with or without recording the list's memory
// flags through a real run's store. ns/op is per iteration; the ns/listed metric divides it by
// the sessions listed. An empty list records nothing: only the clock is read.
//
//	make bench ARGS='go -bench=Settle -benchtime=20x ./job/'
func BenchmarkSettle(b *testing.B) {
	ctx := context.Background()
	db := pgtest.New(b)
	rel, err := source.ParseRelation(source.DefaultRelation)
	if err != nil {
		b.Fatal(err)
	}
	src, err := source.Inspect(ctx, db.Pool, rel)
	if err != nil {
		b.Fatal(err)
	}
	store := source.New(db.Pool, src, source.Config{})
	rs, _, err := store.StartRun(ctx, job.RunStart{Shard: job.Shard{Count: 1}, Source: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer rs.Close(ctx) //nolint:errcheck // the lock goes with the connection
	for _, n := range []int{0, 1_000, 10_000} {
		for _, record := range []bool{false, true} {
			b.Run(fmt.Sprintf("listed-%d/record-%t", n, record), func(b *testing.B) {
				benchSettle(b, store, rs, n, record)
			})
		}
	}
}

var benchSettleIter int

func benchSettle(b *testing.B, store *source.Store, rs job.RunStore, n int, record bool) {
	ctx := context.Background()
	list := make(sliceLister, n)
	for i := range list {
		list[i] = job.ListedSession{SessionID: fmt.Sprintf("%032x", i), Memory: job.MemoryNotAdded}
		if i%10 == 0 {
			list[i].Memory = job.MemoryAdded
		}
	}
	var rec job.MemoryRecorder
	if record {
		rec = rs.(job.MemoryRecorder)
	}
	b.ReportAllocs()
	for b.Loop() {
		benchSettleIter++
		character := fmt.Sprintf("bench-%d", benchSettleIter) // new rows each time, not conflicts
		absent := job.NewTestSettler(list, rs, rec, store.Now, job.Config{})
		for i := range 100 {
			_, _, _ = absent(ctx, character, fmt.Sprintf("%032x", i*7))
		}
	}
	if n > 0 {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/listed")
	}
}
