package metrics

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus/push"

	"github.com/convai-retention/retention/job"
)

// PushJob is the job label of every push.
const PushJob = Namespace

// pushTimeout bounds one push when the caller's context has no earlier deadline.
const pushTimeout = 10 * time.Second

// Push sends the metrics to the Pushgateway at url, grouped by job PushJob and, when the run
// is sharded, by shard (its index): /metrics/job/convai_retention[/shard/N]. Never by pod or
// instance, so each run replaces the previous run's values instead of adding a group.
//
// It uses POST (push.Add), which replaces only the metric names this push carries: a metric
// this process never set (the last-success timestamp after a run that did not succeed, a
// backlog not measured) keeps the value an earlier run pushed. A PUT would delete it.
func (m *Metrics) Push(ctx context.Context, url string, shard job.Shard) error {
	ctx, cancel := context.WithTimeout(ctx, pushTimeout)
	defer cancel()
	// One request per run: no connection is kept open after it.
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.DisableKeepAlives = true
	p := push.New(url, PushJob).Gatherer(m.reg).Client(&http.Client{Transport: transport})
	if shard.Count > 1 {
		p = p.Grouping("shard", strconv.Itoa(shard.Index))
	}
	if err := p.AddContext(ctx); err != nil {
		return fmt.Errorf("push metrics: %w", err)
	}
	return nil
}
