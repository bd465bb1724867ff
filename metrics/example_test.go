package metrics_test

import (
	"context"
	"fmt"
	"net/http"

	"github.com/convai-retention/retention/job"
	"github.com/convai-retention/retention/metrics"
)

// A run fills the metrics as its observer. A long-lived process serves them; a one-off run
// pushes them once it has ended.
func Example() {
	m := metrics.New(metrics.Config{})
	cfg := job.Config{Observer: m} // then job.New(store, sender, cfg) and Run
	_ = cfg

	mux := http.NewServeMux()
	mux.Handle("/metrics", m.Handler()) // a scheduler: scraped

	push := func(ctx context.Context) error { // a one-off run: pushed at its end
		return m.Push(ctx, "http://pushgateway:9091", job.Shard{Index: 2, Count: 4})
	}
	_ = push

	m.Recorded(98, 2) // as the run records outcomes
	families, _ := m.Gatherer().Gather()
	for _, f := range families {
		if f.GetName() == "convai_retention_sessions_deleted_total" {
			fmt.Println(f.GetName(), f.GetMetric()[0].GetCounter().GetValue())
		}
	}
	// Output: convai_retention_sessions_deleted_total 98
}
