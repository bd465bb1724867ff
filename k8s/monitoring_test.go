package k8s

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/job"
	"github.com/convai-retention/retention/metrics"
)

// exportedMetrics returns the names of every series the binary exports under its namespace, read
// from the metrics package itself: every metric is given a value first (some are exported only
// once set), and a histogram counts as its _bucket, _sum and _count series.
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	m := metrics.New(metrics.Config{})
	m.Selected("c")
	m.Skipped("held", 1)
	m.Requested(job.Answer{Class: job.Confirmed, StatusCode: 200}, time.Millisecond)
	m.Retrying(job.Answer{Class: job.Retryable, StatusCode: 503})
	m.Recorded(1, 1)
	m.SetBacklog(1)
	m.RunFinished(&job.Summary{Status: job.StatusAborted, DurationSeconds: 1})
	m.TickSkipped(metrics.SkipOverlap)
	m.RunFinished(&job.Summary{Status: job.StatusSucceeded, DurationSeconds: 1, Erasure: &job.ErasureSummary{}})
	families, err := m.Gatherer().Gather()
	require.NoError(t, err)
	v := metrics.NewVerify(metrics.Config{})
	v.Verified(1, 1)
	v.MemoryLeft(job.MemoryLeft{})
	v.MemoryRechecked(job.RecheckFound)
	v.Finished()
	verifyFamilies, err := v.Gatherer().Gather()
	require.NoError(t, err)
	families = append(families, verifyFamilies...)
	names := map[string]bool{}
	for _, f := range families {
		name := f.GetName()
		require.True(t, strings.HasPrefix(name, metrics.Namespace+"_"), name)
		if f.GetType().String() == "HISTOGRAM" {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				names[name+suffix] = true
			}
			continue
		}
		names[name] = true
	}
	// Sanity: the names the alerts are built on.
	for _, n := range []string{"convai_retention_last_success_timestamp_seconds", "convai_retention_backlog_sessions"} {
		require.True(t, names[n], n)
	}
	return names
}

// checkQuery parses a PromQL expression with Prometheus's own parser and returns an error if it
// does not parse, names no metric, or names a metric outside exported.
func checkQuery(expr string, exported map[string]bool) error {
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		return fmt.Errorf("parse %q: %w", expr, err)
	}
	var names []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			name := vs.Name
			for _, m := range vs.LabelMatchers {
				if m.Name == model.MetricNameLabel {
					name = m.Value
				}
			}
			names = append(names, name)
		}
		return nil
	})
	if len(names) == 0 {
		return fmt.Errorf("%q names no metric", expr)
	}
	for _, n := range names {
		if !exported[n] {
			return fmt.Errorf("%q names %s, which the binary does not export", expr, n)
		}
	}
	return nil
}

func TestCheckQuery_FailsOnWhatItMustCatch(t *testing.T) {
	t.Parallel()
	exported := exportedMetrics(t)
	require.NoError(t, checkQuery(`time() - max(convai_retention_last_success_timestamp_seconds) > 2 * 86400`, exported))
	require.ErrorContains(t, checkQuery(`convai_retention_last_succes_timestamp_seconds > 0`, exported), "does not export")
	require.ErrorContains(t, checkQuery(`{__name__="convai_retention_deleted_total"}`, exported), "does not export")
	require.ErrorContains(t, checkQuery(`rate(convai_retention_sessions_deleted_total[1d]`, exported), "parse")
	require.ErrorContains(t, checkQuery(`vector(1) > 0`, exported), "names no metric")
}

func TestPrometheusRule_AlertsParseAndNameExportedMetrics(t *testing.T) {
	t.Parallel()
	objs, err := Render("monitoring")
	require.NoError(t, err)
	require.Len(t, objs.PrometheusRules, 1)
	exported := exportedMetrics(t)

	var alerts []string
	for _, g := range objs.PrometheusRules[0].Spec.Groups {
		for _, r := range g.Rules {
			require.NotEmpty(t, r.Alert, "only alerting rules")
			alerts = append(alerts, r.Alert)
			require.NoError(t, checkQuery(r.Expr.String(), exported), r.Alert)
			require.Contains(t, []string{"page", "ticket"}, r.Labels["severity"], r.Alert)
			require.NotEmpty(t, r.Annotations["summary"], r.Alert)
			if r.For != nil {
				_, err := model.ParseDuration(string(*r.For))
				require.NoError(t, err, "%s: for", r.Alert)
			}
		}
	}
	// The alerts docs/GUIDE.md and docs/OPERATIONS.md promise.
	for _, want := range []string{
		"ConvaiRetentionNoRecentSuccess", "ConvaiRetentionBacklogGrowing",
		"ConvaiRetentionSessionsFailing", "ConvaiRetentionRunAborted",
		"ConvaiRetentionAborted", "ConvaiRetentionErasureOverdue", "ConvaiRetentionErasureMemoryLeft",
		"ConvaiRetentionMemoryFoundAgain",
	} {
		require.Contains(t, alerts, want)
	}
	require.Len(t, slices.Compact(slices.Sorted(slices.Values(alerts))), len(alerts), "alert names are unique")
}

func TestDashboard_QueriesParseAndNameExportedMetrics(t *testing.T) {
	t.Parallel()
	objs, err := Render("monitoring")
	require.NoError(t, err)
	require.Len(t, objs.ConfigMaps, 1)
	cm := objs.ConfigMaps[0]
	require.Equal(t, "1", cm.Labels["grafana_dashboard"], "the label Grafana's sidecar loads dashboards by")
	raw, ok := cm.Data["dashboard.json"]
	require.True(t, ok)

	var dash struct {
		UID    string
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	require.NoError(t, json.Unmarshal([]byte(raw), &dash))
	require.NotEmpty(t, dash.UID)
	exported := exportedMetrics(t)
	// Grafana replaces its variables before Prometheus sees the query.
	grafana := strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1d")
	seen := map[string]bool{}
	for _, p := range dash.Panels {
		require.NotEmpty(t, p.Targets, p.Title)
		for _, q := range p.Targets {
			expr := grafana.Replace(q.Expr)
			require.NotContains(t, expr, "$", "%s: a variable the test does not know", p.Title)
			require.NoError(t, checkQuery(expr, exported), p.Title)
			for name := range exported {
				if strings.Contains(expr, name) {
					seen[name] = true
				}
			}
		}
	}
	// What the dashboard promises: backlog, deleted and failed, request classes and latency, run
	// duration, last success, long-term memory left behind and found again.
	for _, want := range []string{
		"convai_retention_backlog_sessions",
		"convai_retention_sessions_deleted_total", "convai_retention_sessions_failed_total",
		"convai_retention_requests_total", "convai_retention_request_duration_seconds_bucket",
		"convai_retention_last_run_duration_seconds", "convai_retention_last_success_timestamp_seconds",
		"convai_retention_erasure_requests_memory_left", "convai_retention_memories_found_again",
		"convai_retention_memory_rechecks_total",
	} {
		require.True(t, seen[want], "no panel shows %s", want)
	}
}

func TestPodMonitor_ScrapesTheScheduler(t *testing.T) {
	t.Parallel()
	objs, err := Render("monitoring")
	require.NoError(t, err)
	require.Len(t, objs.PodMonitors, 1)
	pm := objs.PodMonitors[0].Spec
	require.Equal(t, map[string]string{
		"app.kubernetes.io/name":      "convai-retention",
		"app.kubernetes.io/component": "schedule",
	}, pm.Selector.MatchLabels)
	require.Len(t, pm.PodMetricsEndpoints, 1)
	ep := pm.PodMetricsEndpoints[0]
	require.NotNil(t, ep.Port)
	require.Equal(t, "metrics", *ep.Port)
	require.Equal(t, "/metrics", ep.Path, "what retention schedule serves")
}
