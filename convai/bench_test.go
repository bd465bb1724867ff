package convai_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/convai-retention/retention/convai"
	"github.com/convai-retention/retention/convai/convaitest"
)

// BenchmarkDelete measures the client's side of one request of 100 session IDs (the default
// --chunk-size): encoding, the HTTP round trip over loopback and classifying the answer, against
// a server that reads the body and confirms at once. "parallel" sends from 8 goroutines, as a
// run with --concurrency 8 does. It needs no database:
//
//	make bench ARGS='go -bench=Delete ./convai/'
func BenchmarkDelete(b *testing.B) {
	b.Run("serial", func(b *testing.B) { benchDelete(b, false) })
	b.Run("parallel", func(b *testing.B) { benchDelete(b, true) })
}

func benchDelete(b *testing.B, parallel bool) {
	const key, chunk = "bench-key", 100
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, convaitest.Confirmation)
	}))
	defer srv.Close()
	c, err := convai.New(convai.Config{BaseURL: srv.URL, APIKey: key})
	if err != nil {
		b.Fatal(err)
	}
	defer c.CloseIdleConnections()
	ids := make([]string, chunk)
	for i := range ids {
		ids[i] = fmt.Sprintf("%032x", i) // Convai session IDs are 32 hex digits
	}
	const character = "0f6e1cb4-8f0e-4b8e-9d55-2f1c1c0d9a11"
	one := func() {
		if r := c.Delete(context.Background(), character, ids); r.Class != convai.Confirmed {
			b.Errorf("not confirmed: %v", r.Err)
		}
	}
	b.ReportAllocs()
	if parallel {
		b.SetParallelism(4) // 8 goroutines on 2 cores
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
	b.ReportMetric(float64(b.N*chunk)/b.Elapsed().Seconds(), "sessions/s")
}
