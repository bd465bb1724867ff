package metrics_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/convai-retention/retention/job"
	"github.com/convai-retention/retention/metrics"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var _ job.Observer = (*metrics.Metrics)(nil)

type bundle struct {
	m   *metrics.Metrics
	now time.Time
}

func setup(t *testing.T) *bundle {
	t.Helper()
	b := &bundle{now: time.Date(2026, 3, 1, 3, 0, 0, 0, time.UTC)}
	b.m = metrics.New(metrics.Config{Now: func() time.Time { return b.now }})
	return b
}

// compare checks the named metrics against want, in the text exposition format.
func (b *bundle) compare(t *testing.T, want string, names ...string) {
	t.Helper()
	require.NoError(t, testutil.GatherAndCompare(b.m.Gatherer(), strings.NewReader(want), names...))
}

func TestObserverFillsTheMetrics(t *testing.T) {
	t.Parallel()
	b := setup(t)
	m := b.m
	m.RunStarted(job.RunInfo{ID: 1})
	for range 5 {
		m.Selected("c1")
	}
	m.Skipped("held", 3)
	m.Skipped("malformed", 1)
	m.Requested(job.Answer{Class: job.Confirmed, StatusCode: 200}, 40*time.Millisecond)
	m.Requested(job.Answer{Class: job.Retryable, StatusCode: 503}, 2*time.Second)
	m.Retrying(job.Answer{Class: job.Retryable, StatusCode: 503})
	m.Requested(job.Answer{Class: job.Retryable}, time.Second)
	m.Retrying(job.Answer{Class: job.Retryable})
	m.Requested(job.Answer{Class: job.Permanent, StatusCode: 400}, 30*time.Millisecond)
	m.Recorded(4, 1)
	m.RunFinished(&job.Summary{Status: job.StatusPartial, DurationSeconds: 12.5})

	b.compare(t, `
# HELP convai_retention_sessions_selected_total Expired sessions selected to be sent.
# TYPE convai_retention_sessions_selected_total counter
convai_retention_sessions_selected_total 5
# HELP convai_retention_sessions_deleted_total Sessions whose deletion the API confirmed.
# TYPE convai_retention_sessions_deleted_total counter
convai_retention_sessions_deleted_total 4
# HELP convai_retention_sessions_failed_total Sessions sent without a confirmed deletion; the next run sends them again.
# TYPE convai_retention_sessions_failed_total counter
convai_retention_sessions_failed_total 1
# HELP convai_retention_sessions_skipped_total Sessions met but not sent, by reason: malformed, duplicate or held.
# TYPE convai_retention_sessions_skipped_total counter
convai_retention_sessions_skipped_total{reason="duplicate"} 0
convai_retention_sessions_skipped_total{reason="held"} 3
convai_retention_sessions_skipped_total{reason="malformed"} 1
# HELP convai_retention_request_retries_total Delete requests tried again, by the status class of the answer that made them retry.
# TYPE convai_retention_request_retries_total counter
convai_retention_request_retries_total{class="2xx"} 0
convai_retention_request_retries_total{class="4xx"} 0
convai_retention_request_retries_total{class="5xx"} 1
convai_retention_request_retries_total{class="network"} 1
# HELP convai_retention_runs_total Finished runs, by status: succeeded, partial, failed, interrupted or aborted (stopped by the safety cap before sending anything).
# TYPE convai_retention_runs_total counter
convai_retention_runs_total{status="aborted"} 0
convai_retention_runs_total{status="failed"} 0
convai_retention_runs_total{status="interrupted"} 0
convai_retention_runs_total{status="partial"} 1
convai_retention_runs_total{status="succeeded"} 0
# HELP convai_retention_last_run_duration_seconds How long the last finished run took.
# TYPE convai_retention_last_run_duration_seconds gauge
convai_retention_last_run_duration_seconds 12.5
# HELP convai_retention_last_completion_timestamp_seconds When the last run finished, whatever its status, in Unix seconds. Absent until one has.
# TYPE convai_retention_last_completion_timestamp_seconds gauge
convai_retention_last_completion_timestamp_seconds 1772334000
`, "convai_retention_sessions_selected_total", "convai_retention_sessions_deleted_total",
		"convai_retention_sessions_failed_total", "convai_retention_sessions_skipped_total",
		"convai_retention_request_retries_total", "convai_retention_runs_total",
		"convai_retention_last_run_duration_seconds", "convai_retention_last_completion_timestamp_seconds",
		"convai_retention_last_success_timestamp_seconds", "convai_retention_backlog_sessions")

	b.compare(t, `
# HELP convai_retention_requests_total Delete requests, by HTTP status class (2xx, 3xx, 4xx, 5xx, network, other) and answer (confirmed, retryable, auth_rejected, permanent).
# TYPE convai_retention_requests_total counter
convai_retention_requests_total{answer="auth_rejected",class="4xx"} 0
convai_retention_requests_total{answer="confirmed",class="2xx"} 1
convai_retention_requests_total{answer="permanent",class="4xx"} 1
convai_retention_requests_total{answer="retryable",class="2xx"} 0
convai_retention_requests_total{answer="retryable",class="4xx"} 0
convai_retention_requests_total{answer="retryable",class="5xx"} 1
convai_retention_requests_total{answer="retryable",class="network"} 1
`, "convai_retention_requests_total")
	n, err := testutil.GatherAndCount(m.Gatherer(), "convai_retention_request_duration_seconds")
	require.NoError(t, err)
	require.Equal(t, 1, n, "one histogram, no labels")
}

func TestLastSuccessOnlyOnSuccess(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.m.RunFinished(&job.Summary{Status: job.StatusFailed, DurationSeconds: 1})
	b.compare(t, "", "convai_retention_last_success_timestamp_seconds")

	b.m.RunFinished(&job.Summary{Status: job.StatusSucceeded, DurationSeconds: 1})
	first := b.now
	b.now = b.now.Add(24 * time.Hour)
	b.m.RunFinished(&job.Summary{Status: job.StatusInterrupted, DurationSeconds: 1})
	b.compare(t, `
# HELP convai_retention_last_success_timestamp_seconds When the last run that succeeded (exit code 0) finished, in Unix seconds. Absent until one has.
# TYPE convai_retention_last_success_timestamp_seconds gauge
convai_retention_last_success_timestamp_seconds `+seconds(first)+`
# HELP convai_retention_last_completion_timestamp_seconds When the last run finished, whatever its status, in Unix seconds. Absent until one has.
# TYPE convai_retention_last_completion_timestamp_seconds gauge
convai_retention_last_completion_timestamp_seconds `+seconds(b.now)+`
`, "convai_retention_last_success_timestamp_seconds", "convai_retention_last_completion_timestamp_seconds")
}

func TestLastAbortedOnlyOnAbort(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.m.RunFinished(&job.Summary{Status: job.StatusSucceeded, DurationSeconds: 1})
	b.m.RunFinished(&job.Summary{Status: job.StatusFailed, DurationSeconds: 1})
	b.compare(t, "", "convai_retention_last_aborted_timestamp_seconds")

	b.now = b.now.Add(time.Hour)
	b.m.RunFinished(&job.Summary{Status: job.StatusAborted, DurationSeconds: 1})
	b.compare(t, `
# HELP convai_retention_last_aborted_timestamp_seconds When the safety cap last aborted a run (it sent nothing: it would have sent more than --abort-above or --abort-above-percent allow), in Unix seconds. Absent until one was.
# TYPE convai_retention_last_aborted_timestamp_seconds gauge
convai_retention_last_aborted_timestamp_seconds `+seconds(b.now)+`
# HELP convai_retention_runs_total Finished runs, by status: succeeded, partial, failed, interrupted or aborted (stopped by the safety cap before sending anything).
# TYPE convai_retention_runs_total counter
convai_retention_runs_total{status="aborted"} 1
convai_retention_runs_total{status="failed"} 1
convai_retention_runs_total{status="interrupted"} 0
convai_retention_runs_total{status="partial"} 0
convai_retention_runs_total{status="succeeded"} 1
`, "convai_retention_last_aborted_timestamp_seconds", "convai_retention_runs_total")
}

func TestBacklogAndSkippedTicks(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.compare(t, "", "convai_retention_backlog_sessions", "convai_retention_schedule_skipped_ticks_total")
	b.m.SetBacklog(42)
	b.m.TickSkipped(metrics.SkipOverlap)
	b.m.TickSkipped(metrics.SkipOverlap)
	b.compare(t, `
# HELP convai_retention_backlog_sessions Expired sessions not yet deleted, measured at the end of the last run that got through its selection or reached its budget. Absent until measured.
# TYPE convai_retention_backlog_sessions gauge
convai_retention_backlog_sessions 42
# HELP convai_retention_schedule_skipped_ticks_total Scheduled ticks that started no run, by reason: overlap (the previous run was still running) or locked (another run held the lock).
# TYPE convai_retention_schedule_skipped_ticks_total counter
convai_retention_schedule_skipped_ticks_total{reason="overlap"} 2
`, "convai_retention_backlog_sessions", "convai_retention_schedule_skipped_ticks_total")
}

func TestClasses(t *testing.T) {
	t.Parallel()
	for code, want := range map[int]string{0: "network", 200: "2xx", 204: "2xx", 302: "3xx", 401: "4xx", 429: "4xx", 503: "5xx", 999: "other"} {
		require.Equal(t, want, metrics.StatusClass(code), code)
	}
	for c, want := range map[job.Class]string{job.Confirmed: "confirmed", job.Retryable: "retryable",
		job.AuthRejected: "auth_rejected", job.Permanent: "permanent", 0: "other"} {
		require.Equal(t, want, metrics.AnswerClass(c), c)
	}
}

func TestHandlerServesJobAndRuntimeMetrics(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.m.Recorded(7, 0)
	srv := httptest.NewServer(b.m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, string(body), "convai_retention_sessions_deleted_total 7\n")
	require.Contains(t, string(body), "go_goroutines ")
}

// pushed is one request a stand-in Pushgateway received.
type pushed struct {
	Method, Path, Body string
}

// gateway is a stand-in Pushgateway that records every request.
type gateway struct {
	mu   sync.Mutex
	reqs []pushed
	srv  *httptest.Server
}

func newGateway(t *testing.T, status int) *gateway {
	g := &gateway{}
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		g.mu.Lock()
		g.reqs = append(g.reqs, pushed{Method: r.Method, Path: r.URL.Path, Body: string(body)})
		g.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(g.srv.Close)
	return g
}

func (g *gateway) requests() []pushed {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]pushed(nil), g.reqs...)
}

func TestPushGrouping(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		shard job.Shard
		path  string
	}{
		{"unsharded", job.Shard{Index: 0, Count: 1}, "/metrics/job/convai_retention"},
		{"sharded", job.Shard{Index: 2, Count: 4}, "/metrics/job/convai_retention/shard/2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.m.Recorded(3, 1)
			b.m.RunFinished(&job.Summary{Status: job.StatusPartial, DurationSeconds: 2})
			g := newGateway(t, http.StatusOK)
			require.NoError(t, b.m.Push(context.Background(), g.srv.URL, tc.shard))
			reqs := g.requests()
			require.Len(t, reqs, 1)
			require.Equal(t, http.MethodPost, reqs[0].Method, "POST keeps the metrics this push does not carry")
			require.Equal(t, tc.path, reqs[0].Path)
			require.NotEmpty(t, reqs[0].Body)
		})
	}
}

func TestPushFailureIsAnError(t *testing.T) {
	t.Parallel()
	b := setup(t)
	g := newGateway(t, http.StatusBadRequest)
	err := b.m.Push(context.Background(), g.srv.URL, job.Shard{Count: 1})
	require.ErrorContains(t, err, "push metrics")
}

func seconds(t time.Time) string {
	return strconv.FormatInt(t.Unix(), 10)
}

func TestErasureRequestGauges(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.m.RunFinished(&job.Summary{Status: job.StatusFailed, DurationSeconds: 1})
	b.compare(t, "", "convai_retention_erasure_requests_open", "convai_retention_erasure_requests_overdue")

	b.m.RunFinished(&job.Summary{Status: job.StatusSucceeded, DurationSeconds: 1,
		Erasure: &job.ErasureSummary{Open: 4, Completed: []int64{1}, Left: 3, Overdue: 2}})
	b.compare(t, `
# HELP convai_retention_erasure_requests_open Erasure requests not completed (blocked by a hold included) in the run's shard, as the last run that read them left them. Absent until read.
# TYPE convai_retention_erasure_requests_open gauge
convai_retention_erasure_requests_open 3
# HELP convai_retention_erasure_requests_overdue Of erasure_requests_open, those past their due time. Absent until read.
# TYPE convai_retention_erasure_requests_overdue gauge
convai_retention_erasure_requests_overdue 2
`, "convai_retention_erasure_requests_open", "convai_retention_erasure_requests_overdue")

	// A run that stopped before reading the requests leaves the gauges as they were.
	b.m.RunFinished(&job.Summary{Status: job.StatusFailed, DurationSeconds: 1})
	b.compare(t, `
# HELP convai_retention_erasure_requests_open Erasure requests not completed (blocked by a hold included) in the run's shard, as the last run that read them left them. Absent until read.
# TYPE convai_retention_erasure_requests_open gauge
convai_retention_erasure_requests_open 3
`, "convai_retention_erasure_requests_open")
}

// TestVerifyMemoryLeftGauges: the gauges of memory left behind are absent until a verification
// reads them, then hold the last reading.
func TestVerifyMemoryLeftGauges(t *testing.T) {
	t.Parallel()
	v := metrics.NewVerify(metrics.Config{})
	names := []string{"convai_retention_deleted_sessions_memory_left", "convai_retention_erasure_requests_memory_left"}
	require.NoError(t, testutil.GatherAndCompare(v.Gatherer(), strings.NewReader(""), names...))
	v.MemoryLeft(job.MemoryLeft{Sessions: 5, EndUserUnknown: 2, ErasureRequests: 1})
	v.MemoryLeft(job.MemoryLeft{Sessions: 3, EndUserUnknown: 2, ErasureRequests: 1})
	require.NoError(t, testutil.GatherAndCompare(v.Gatherer(), strings.NewReader(`
# HELP convai_retention_deleted_sessions_memory_left Deleted sessions Convai listed as added to long-term memory, with no erasure of their end user's memory of the character since (over all time; Convai's word, as verifications and discover recorded it). Absent until a verification read it.
# TYPE convai_retention_deleted_sessions_memory_left gauge
convai_retention_deleted_sessions_memory_left 3
# HELP convai_retention_erasure_requests_memory_left Completed erasure requests with such sessions: long-term memory left behind by an erasure. Absent until a verification read it.
# TYPE convai_retention_erasure_requests_memory_left gauge
convai_retention_erasure_requests_memory_left 1
`), names...))
}

// TestVerifyMemoryRechecks: the re-check counter starts at zero for every result and counts
// each one told; the gauge of memories found again is absent until a verification reads it.
func TestVerifyMemoryRechecks(t *testing.T) {
	t.Parallel()
	v := metrics.NewVerify(metrics.Config{})
	const help = `# HELP convai_retention_memory_rechecks_total Erased long-term memories (an end user's with a character) listed again by the verification, by result: gone (stayed erased), found (the erasure is refuted; the next run erases again) or not_checked (no whole list could be read).
# TYPE convai_retention_memory_rechecks_total counter
`
	names := []string{"convai_retention_memory_rechecks_total", "convai_retention_memories_found_again"}
	require.NoError(t, testutil.GatherAndCompare(v.Gatherer(), strings.NewReader(help+`convai_retention_memory_rechecks_total{result="found"} 0
convai_retention_memory_rechecks_total{result="gone"} 0
convai_retention_memory_rechecks_total{result="not_checked"} 0
`), names...))
	v.MemoryRechecked(job.RecheckGone)
	v.MemoryRechecked(job.RecheckFound)
	v.MemoryRechecked(job.RecheckFound)
	v.MemoryLeft(job.MemoryLeft{MemoriesFoundAgain: 3})
	require.NoError(t, testutil.GatherAndCompare(v.Gatherer(), strings.NewReader(`# HELP convai_retention_memories_found_again End users' memories with a character (per end user request and character) that a verification found again after their erasure, with no erasure standing since (retention.end_user_memory where memory_reopened). Absent until a verification read it.
# TYPE convai_retention_memories_found_again gauge
convai_retention_memories_found_again 3
`+help+`convai_retention_memory_rechecks_total{result="found"} 2
convai_retention_memory_rechecks_total{result="gone"} 1
convai_retention_memory_rechecks_total{result="not_checked"} 0
`), names...))
}
