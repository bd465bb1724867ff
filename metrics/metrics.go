// Package metrics owns the Prometheus metrics of the retention job. Metrics implements
// job.Observer, so a run fills it as it goes; a long-lived process serves it over HTTP
// (Handler), a one-off run pushes it to a Pushgateway at its end (Push).
//
// Every metric is in the namespace convai_retention and on a registry of its own, never the
// global one. Labels are bounded: a skip reason, a status class, an answer class, a run status;
// never a character or a session.
package metrics

import (
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/convai-retention/retention/job"
	"github.com/convai-retention/retention/policy"
)

// Namespace prefixes every metric name.
const Namespace = "convai_retention"

// The reasons a scheduled tick starts no run, for TickSkipped.
const (
	// SkipOverlap: the previous scheduled run was still running.
	SkipOverlap = "overlap"
	// SkipLocked: another run (another replica, a manual run) held the lock.
	SkipLocked = "locked"
)

// Config tunes Metrics. Zero fields take the defaults named on each.
type Config struct {
	// Now is the clock of the timestamps. Default time.Now.
	Now func() time.Time
}

// Metrics holds the job's metrics. It is safe for concurrent use. Use New to make one.
type Metrics struct {
	now func() time.Time
	reg *prometheus.Registry

	selected       prometheus.Counter
	deleted        prometheus.Counter
	failed         prometheus.Counter
	skipped        *prometheus.CounterVec
	requests       *prometheus.CounterVec
	retries        *prometheus.CounterVec
	latency        prometheus.Histogram
	runs           *prometheus.CounterVec
	ticksSkipped   *prometheus.CounterVec
	duration       *gauge
	lastSuccess    *gauge
	lastCompletion *gauge
	lastAborted    *gauge
	backlog        *gauge
	erasureOpen    *gauge
	erasureOverdue *gauge
	sync           syncMetrics
}

// New returns Metrics on a registry of their own, with every label value known in advance
// already at zero.
func New(cfg Config) *Metrics {
	m := &Metrics{now: cfg.Now, reg: prometheus.NewRegistry()}
	if m.now == nil {
		m.now = time.Now
	}
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help})
	}
	counterVec := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help}, labels)
	}
	m.selected = counter("sessions_selected_total", "Expired sessions selected to be sent.")
	m.deleted = counter("sessions_deleted_total", "Sessions whose deletion the API confirmed.")
	m.failed = counter("sessions_failed_total", "Sessions sent without a confirmed deletion; the next run sends them again.")
	m.skipped = counterVec("sessions_skipped_total", "Sessions met but not sent, by reason: malformed, duplicate or held.", "reason")
	m.requests = counterVec("requests_total", "Delete requests, by HTTP status class (2xx, 3xx, 4xx, 5xx, network, other) "+
		"and answer (confirmed, retryable, auth_rejected, permanent).", "class", "answer")
	m.retries = counterVec("request_retries_total", "Delete requests tried again, by the status class of the answer that made them retry.", "class")
	m.latency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "request_duration_seconds", Help: "How long each delete request took, retries counted separately.",
		Buckets: []float64{.025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	})
	m.runs = counterVec("runs_total", "Finished runs, by status: succeeded, partial, failed, interrupted or aborted (stopped by the safety cap before sending anything).", "status")
	m.ticksSkipped = counterVec("schedule_skipped_ticks_total",
		"Scheduled ticks that started no run, by reason: overlap (the previous run was still running) or locked (another run held the lock).", "reason")
	m.duration = newGauge("last_run_duration_seconds", "How long the last finished run took.")
	m.lastSuccess = newGauge("last_success_timestamp_seconds",
		"When the last run that succeeded (exit code 0) finished, in Unix seconds. Absent until one has.")
	m.lastCompletion = newGauge("last_completion_timestamp_seconds",
		"When the last run finished, whatever its status, in Unix seconds. Absent until one has.")
	m.lastAborted = newGauge("last_aborted_timestamp_seconds",
		"When the safety cap last aborted a run (it sent nothing: it would have sent more than --abort-above or "+
			"--abort-above-percent allow), in Unix seconds. Absent until one was.")
	m.erasureOpen = newGauge("erasure_requests_open",
		"Erasure requests not completed (blocked by a hold included) in the run's shard, as the last run that read them left them. Absent until read.")
	m.erasureOverdue = newGauge("erasure_requests_overdue",
		"Of erasure_requests_open, those past their due time. Absent until read.")
	m.backlog = newGauge("backlog_sessions",
		"Expired sessions not yet deleted, measured at the end of the last run that got through its selection or reached its budget. Absent until measured.")

	for _, r := range []policy.Skip{policy.SkipMalformed, policy.SkipDuplicate, policy.SkipHeld} {
		m.skipped.WithLabelValues(string(r))
	}
	for class, answers := range map[string][]job.Class{
		"2xx": {job.Confirmed, job.Retryable}, "4xx": {job.Retryable, job.AuthRejected, job.Permanent},
		"5xx": {job.Retryable}, "network": {job.Retryable},
	} {
		for _, a := range answers {
			m.requests.WithLabelValues(class, AnswerClass(a))
		}
		m.retries.WithLabelValues(class)
	}
	for _, s := range []job.Status{job.StatusSucceeded, job.StatusPartial, job.StatusFailed, job.StatusInterrupted, job.StatusAborted} {
		m.runs.WithLabelValues(string(s))
	}
	m.sync = newSyncMetrics()
	m.reg.MustRegister(m.sync.collectors()...)
	m.reg.MustRegister(m.selected, m.deleted, m.failed, m.skipped, m.requests, m.retries, m.latency, m.runs,
		m.ticksSkipped, m.duration, m.lastSuccess, m.lastCompletion, m.lastAborted, m.backlog, m.erasureOpen, m.erasureOverdue)
	return m
}

// Gatherer returns the registry of the job's metrics, without the Go runtime's.
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.reg }

// Handler serves the job's metrics and those of the Go runtime and the process, in the
// Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	runtime := prometheus.NewRegistry()
	runtime.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(prometheus.Gatherers{m.reg, runtime}, promhttp.HandlerOpts{})
}

// SetBacklog records the number of expired sessions not yet deleted.
func (m *Metrics) SetBacklog(n int64) { m.backlog.set(float64(n)) }

// TickSkipped counts a scheduled tick that started no run; reason is SkipOverlap or SkipLocked.
func (m *Metrics) TickSkipped(reason string) { m.ticksSkipped.WithLabelValues(reason).Inc() }

// RunStarted implements job.Observer.
func (m *Metrics) RunStarted(job.RunInfo) {}

// Selected implements job.Observer.
func (m *Metrics) Selected(string) { m.selected.Inc() }

// Skipped implements job.Observer.
func (m *Metrics) Skipped(reason string, n int64) { m.skipped.WithLabelValues(reason).Add(float64(n)) }

// Requested implements job.Observer.
func (m *Metrics) Requested(a job.Answer, latency time.Duration) {
	m.requests.WithLabelValues(StatusClass(a.StatusCode), AnswerClass(a.Class)).Inc()
	m.latency.Observe(latency.Seconds())
}

// Retrying implements job.Observer.
func (m *Metrics) Retrying(a job.Answer) { m.retries.WithLabelValues(StatusClass(a.StatusCode)).Inc() }

// Recorded implements job.Observer.
func (m *Metrics) Recorded(deleted, failed int) {
	m.deleted.Add(float64(deleted))
	m.failed.Add(float64(failed))
}

// RunFinished implements job.Observer: it counts the run by status and sets the duration and
// the timestamps, the last success only when the run succeeded, the last abort only when the
// safety cap aborted it.
func (m *Metrics) RunFinished(s *job.Summary) {
	now := unixSeconds(m.now())
	m.runs.WithLabelValues(string(s.Status)).Inc()
	m.duration.set(s.DurationSeconds)
	m.lastCompletion.set(now)
	if e := s.Erasure; e != nil {
		m.erasureOpen.set(float64(e.Left))
		m.erasureOverdue.set(float64(e.Overdue))
	}
	switch s.Status {
	case job.StatusSucceeded:
		m.lastSuccess.set(now)
	case job.StatusAborted:
		m.lastAborted.set(now)
	}
}

// StatusClass is the value of the class label for an HTTP status; 0 (no answer) is "network".
func StatusClass(code int) string {
	switch {
	case code == 0:
		return "network"
	case code >= 200 && code < 300:
		return "2xx"
	case code >= 300 && code < 400:
		return "3xx"
	case code >= 400 && code < 500:
		return "4xx"
	case code >= 500 && code < 600:
		return "5xx"
	}
	return "other"
}

// AnswerClass is the value of the answer label for a job.Class: the class's own word.
func AnswerClass(c job.Class) string { return c.String() }

func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// gauge is a gauge without labels that is exported only once it has been set: a timestamp
// that never happened must not read as 1970, and a push must not overwrite a value this
// process never measured.
type gauge struct {
	desc  *prometheus.Desc
	mu    sync.Mutex
	value float64
	isSet bool
}

func newGauge(name, help string) *gauge {
	return &gauge{desc: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", name), help, nil, nil)}
}

func (g *gauge) set(v float64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.value, g.isSet = v, true
}

// Describe implements prometheus.Collector.
func (g *gauge) Describe(ch chan<- *prometheus.Desc) { ch <- g.desc }

// Collect implements prometheus.Collector.
func (g *gauge) Collect(ch chan<- prometheus.Metric) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.isSet {
		ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, g.value)
	}
}
