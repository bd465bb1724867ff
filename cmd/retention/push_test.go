package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/cmd/retention/exitcode"
)

// families decodes metrics in the format header names.
func families(t *testing.T, body []byte, header http.Header) map[string]*dto.MetricFamily {
	t.Helper()
	out := map[string]*dto.MetricFamily{}
	dec := expfmt.NewDecoder(bytes.NewReader(body), expfmt.ResponseFormat(header))
	for {
		var mf dto.MetricFamily
		err := dec.Decode(&mf)
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		out[mf.GetName()] = &mf
	}
}

// value returns the value of the series of name with the given label pairs (all of its labels),
// and whether there is one.
func value(fams map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	mf, ok := fams[name]
	if !ok {
		return 0, false
	}
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	for _, m := range mf.GetMetric() {
		if len(m.GetLabel()) != len(want) {
			continue
		}
		match := true
		for _, l := range m.GetLabel() {
			if want[l.GetName()] != l.GetValue() {
				match = false
			}
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

// requireValue checks that the series exists with value want.
func requireValue(t *testing.T, fams map[string]*dto.MetricFamily, want float64, name string, labels ...string) {
	t.Helper()
	got, ok := value(fams, name, labels...)
	require.True(t, ok, "%s%v is missing", name, labels)
	require.InDelta(t, want, got, 0, "%s%v", name, labels)
}

// pushRequest is one request the stand-in Pushgateway received.
type pushRequest struct {
	method, path string
	header       http.Header
	body         []byte
}

// pushgateway is a stand-in Pushgateway: it records every request and answers status.
type pushgateway struct {
	srv    *httptest.Server
	status int
	mu     sync.Mutex
	reqs   []pushRequest
}

func newPushgateway(t *testing.T, status int) *pushgateway {
	t.Helper()
	g := &pushgateway{status: status}
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "read body", http.StatusBadRequest)
			return
		}
		g.mu.Lock()
		g.reqs = append(g.reqs, pushRequest{method: r.Method, path: r.URL.Path, header: r.Header.Clone(), body: body})
		g.mu.Unlock()
		w.WriteHeader(g.status)
	}))
	t.Cleanup(func() {
		g.srv.CloseClientConnections()
		g.srv.Close()
	})
	return g
}

func (g *pushgateway) requests() []pushRequest {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]pushRequest(nil), g.reqs...)
}

// only returns the one request received, decoded.
func (g *pushgateway) only(t *testing.T) (pushRequest, map[string]*dto.MetricFamily) {
	t.Helper()
	reqs := g.requests()
	require.Len(t, reqs, 1)
	return reqs[0], families(t, reqs[0].body, reqs[0].header)
}

// requireCleanLogs checks that stderr, not a terminal, is JSON lines without a live line.
func requireCleanLogs(t *testing.T, stderr string) {
	t.Helper()
	require.NotContains(t, stderr, "\r", "no live line when stderr is not a terminal")
	for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
		if strings.HasPrefix(line, "retention: ") { // the final error line of a failed command
			continue
		}
		require.True(t, json.Valid([]byte(line)), "a JSON log line: %q", line)
	}
}

func TestRunPushesMetrics(t *testing.T) {
	t.Parallel()
	b := setup(t)
	eligible := b.seedWorld(t)
	g := newPushgateway(t, http.StatusOK)

	r := b.run(t, "run", "--pushgateway-url", g.srv.URL)
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	requireCleanLogs(t, r.stderr)
	require.Contains(t, r.stderr, `"msg":"metrics pushed"`)

	req, fams := g.only(t)
	require.Equal(t, http.MethodPost, req.method, "POST replaces only the metrics pushed")
	require.Equal(t, "/metrics/job/convai_retention", req.path, "grouped by job alone when not sharded")
	n := float64(len(eligible))
	requireValue(t, fams, n, "convai_retention_sessions_selected_total")
	requireValue(t, fams, n, "convai_retention_sessions_deleted_total")
	requireValue(t, fams, 0, "convai_retention_sessions_failed_total")
	requireValue(t, fams, worldSkippedHeld, "convai_retention_sessions_skipped_total", "reason", "held")
	requireValue(t, fams, 1, "convai_retention_runs_total", "status", "succeeded")
	requireValue(t, fams, 0, "convai_retention_runs_total", "status", "failed")
	requireValue(t, fams, 0, "convai_retention_backlog_sessions")
	sent := float64(b.gate.served.Load())
	require.Positive(t, sent)
	requireValue(t, fams, sent, "convai_retention_requests_total", "class", "2xx", "answer", "confirmed")
	requireValue(t, fams, sent, "convai_retention_request_duration_seconds")
	success, ok := value(fams, "convai_retention_last_success_timestamp_seconds")
	require.True(t, ok, "a run that succeeded pushes its last success")
	completion, ok := value(fams, "convai_retention_last_completion_timestamp_seconds")
	require.True(t, ok)
	require.InDelta(t, completion, success, 0, "the same run")
	for name := range fams {
		require.True(t, strings.HasPrefix(name, "convai_retention_"), "no runtime metrics in a push: %s", name)
	}
}

func TestShardedRunPushesItsShard(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seedWorld(t)
	g := newPushgateway(t, http.StatusOK)

	r := b.run(t, "run", "--shard-count", "2", "--shard-index", "1")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Empty(t, g.requests(), "no URL, no push")

	r = run(t, with(b.env, "RETENTION_PUSHGATEWAY_URL", g.srv.URL), "run", "--shard-count", "2", "--shard-index", "1")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	req, fams := g.only(t)
	require.Equal(t, "/metrics/job/convai_retention/shard/1", req.path)
	requireValue(t, fams, 1, "convai_retention_runs_total", "status", "succeeded")
}

func TestFailedRunPushesNoLastSuccess(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seedWorld(t)
	b.fake.SetAPIKey("another-key-entirely")
	g := newPushgateway(t, http.StatusOK)

	r := b.run(t, "run", "--pushgateway-url", g.srv.URL)
	require.Equal(t, exitcode.KeyRejected, r.code, "%s", r)
	req, fams := g.only(t)
	require.Equal(t, http.MethodPost, req.method)
	_, ok := value(fams, "convai_retention_last_success_timestamp_seconds")
	require.False(t, ok, "the Pushgateway keeps the last success an earlier run pushed")
	_, ok = value(fams, "convai_retention_backlog_sessions")
	require.False(t, ok, "a failed run measures no backlog; the last measure stands")
	_, ok = value(fams, "convai_retention_last_completion_timestamp_seconds")
	require.True(t, ok)
	requireValue(t, fams, 1, "convai_retention_runs_total", "status", "failed")
	got, ok := value(fams, "convai_retention_requests_total", "class", "4xx", "answer", "auth_rejected")
	require.True(t, ok)
	require.Positive(t, got)
}

func TestDryRunPushesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seedWorld(t)
	g := newPushgateway(t, http.StatusOK)

	r := b.run(t, "run", "--dry-run", "--pushgateway-url", g.srv.URL)
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Empty(t, g.requests())
}

func TestPushFailureKeepsTheExitCode(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seedWorld(t)
	g := newPushgateway(t, http.StatusInternalServerError)
	const password = "push-password-5f3a"
	withAuth := strings.Replace(g.srv.URL, "://", "://retention:"+password+"@", 1)

	r := b.run(t, "run", "--pushgateway-url", withAuth)
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	reqs := g.requests()
	require.Len(t, reqs, 1)
	user, pass, ok := (&http.Request{Header: reqs[0].header}).BasicAuth()
	require.True(t, ok, "credentials in the URL are sent as basic authentication")
	require.Equal(t, "retention", user)
	require.Equal(t, password, pass)
	require.Contains(t, r.stderr, "could not push the metrics")
	require.NotContains(t, r.stderr+r.stdout, password)
}

func TestBadPushgatewayURL(t *testing.T) {
	t.Parallel()
	r := run(t, offline(t), "run", "--pushgateway-url", "pushgateway:9091")
	require.Equal(t, exitcode.Usage, r.code, "%s", r)
	require.Contains(t, r.stderr, "invalid --pushgateway-url")
}

func TestBacklog(t *testing.T) {
	t.Parallel()
	t.Run("budget reached: the rest is counted", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		eligible := b.seedWorld(t)
		g := newPushgateway(t, http.StatusOK)
		r := b.run(t, "run", "--max-deletions", "2", "--pushgateway-url", g.srv.URL)
		require.Equal(t, exitcode.OK, r.code, "%s", r)
		_, fams := g.only(t)
		requireValue(t, fams, 2, "convai_retention_sessions_deleted_total")
		requireValue(t, fams, float64(len(eligible)-2), "convai_retention_backlog_sessions")
	})
	t.Run("partial: the failed sessions", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		eligible := b.seedWorld(t)
		char, id, _ := strings.Cut(eligible[0], "/")
		b.fake.SetRejectIDs(id)
		b.fake.AddSession(char, id) // Convai still has it: the refusal is not settled
		g := newPushgateway(t, http.StatusOK)
		r := b.run(t, "run", "--pushgateway-url", g.srv.URL)
		require.Equal(t, exitcode.Partial, r.code, "%s", r)
		_, fams := g.only(t)
		requireValue(t, fams, 1, "convai_retention_sessions_failed_total")
		requireValue(t, fams, 1, "convai_retention_backlog_sessions")
		requireValue(t, fams, 1, "convai_retention_runs_total", "status", "partial")
		_, ok := value(fams, "convai_retention_last_success_timestamp_seconds")
		require.False(t, ok, "a partial run is no success")
	})
}
