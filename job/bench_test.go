package job

import (
	"fmt"
	"testing"
	"time"

	"github.com/convai-retention/retention/policy"
)

// BenchmarkChunker measures the chunker alone, per record added, with the default chunk size
// (100) and buffer (50,000 records). Sessions come either interleaved over 1000 characters in
// time, as a real backlog is and as cmd/retention-bench seeds it, or one character after the
// other. The sessions/chunk metric is how full the chunks it hands on are: past the buffer, the
// oldest chunk goes out short, so with C characters interleaved a chunk holds about 50,000/C
// sessions.
//
//	make bench ARGS='go -bench=Chunker ./job/'
func BenchmarkChunker(b *testing.B) {
	for _, chars := range []int{1, 100, 1000, 5000} {
		b.Run(fmt.Sprintf("interleaved-%d", chars), func(b *testing.B) { benchChunker(b, chars) })
	}
}

func benchChunker(b *testing.B, characters int) {
	const n = 1 << 16 // distinct records, reused round-robin
	recs := make([]policy.Record, n)
	at := time.Now().Add(-40 * 24 * time.Hour)
	for i := range recs {
		c := fmt.Sprintf("character-%d", i%characters)
		recs[i] = policy.Record{CharacterID: c, SessionID: fmt.Sprintf("%032x", i), LastActive: at.Add(time.Duration(i) * time.Second)}
	}
	d := policy.Decision{Delete: true, Policy: policy.Policy{ID: 1, MaxAge: "30 days", Enabled: true}}
	ck := newChunker(100, 50_000)
	chunks, sessions := 0, 0
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		for _, c := range ck.add(recs[i%n], d) {
			chunks++
			sessions += len(c.Sessions)
		}
		i++
	}
	if chunks > 0 {
		b.ReportMetric(float64(sessions)/float64(chunks), "sessions/chunk")
	}
}
