package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/cmd/retention/exitcode"
	"github.com/convai-retention/retention/internal/syncbuf"
)

// scheduled is a "retention schedule" running in-process on a free local port.
type scheduled struct {
	app            *app
	cancel         context.CancelFunc
	stdout, stderr *syncbuf.Buffer
	exited         chan int
	addr           string
	client         *http.Client
}

// schedule starts "retention schedule --listen 127.0.0.1:0 args..." with env as its whole
// environment and waits until it serves. It is stopped when the test ends.
func startSchedule(t *testing.T, env map[string]string, args ...string) *scheduled {
	t.Helper()
	s := &scheduled{stdout: &syncbuf.Buffer{}, stderr: &syncbuf.Buffer{}, exited: make(chan int, 1),
		client: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}}
	s.app = &app{stdout: s.stdout, stderr: s.stderr, getenv: func(k string) string { return env[k] }}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() { s.exited <- s.app.main(ctx, append([]string{"schedule", "--listen", "127.0.0.1:0"}, args...)) }()
	t.Cleanup(func() {
		cancel()
		s.wait(t)
	})
	rec := s.waitLog(t, "serving metrics and health")
	s.addr = rec["addr"].(string)
	return s
}

// stop cancels the schedule as the signal sig would (0: as a caller would, without a signal),
// and returns the exit code.
func (s *scheduled) stop(t *testing.T, sig syscall.Signal) int {
	t.Helper()
	if sig != 0 {
		s.app.signal.Store(sig)
	}
	s.cancel()
	return s.wait(t)
}

func (s *scheduled) wait(t *testing.T) int {
	t.Helper()
	select {
	case code := <-s.exited:
		s.exited <- code
		return code
	case <-time.After(2 * time.Minute):
		t.Fatalf("the schedule did not stop\nstderr:\n%s", s.stderr.String())
		return -1
	}
}

// logs returns the log records with message msg.
func (s *scheduled) logs(t *testing.T, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(s.stderr.String(), "\n") {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &rec), line)
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// waitLog waits for the first log record with message msg.
func (s *scheduled) waitLog(t *testing.T, msg string) map[string]any {
	t.Helper()
	var rec map[string]any
	s.waitUntil(t, "log "+msg, func() bool {
		if recs := s.logs(t, msg); len(recs) > 0 {
			rec = recs[0]
			return true
		}
		return false
	})
	return rec
}

// waitUntil polls cond until it holds; it fails if the schedule ends first.
func (s *scheduled) waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		select {
		case code := <-s.exited:
			s.exited <- code
			t.Fatalf("the schedule ended (exit %d) before %s\nstderr:\n%s", code, what, s.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting until %s\nstderr:\n%s", what, s.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// get fetches a path and returns the status and the body.
func (s *scheduled) get(t *testing.T, path string) (int, http.Header, []byte) {
	t.Helper()
	resp, err := s.client.Get("http://" + s.addr + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, body
}

// scrape returns the metrics served on /metrics.
func (s *scheduled) scrape(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	code, header, body := s.get(t, "/metrics")
	require.Equal(t, http.StatusOK, code)
	return families(t, body, header)
}

// metric scrapes and returns one series' value, 0 when it is absent.
func (s *scheduled) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	v, _ := value(s.scrape(t), name, labels...)
	return v
}

// runLock holds the run lock of shard 0 of 1, as another run would, on its own connection.
type runLock struct{ conn *pgx.Conn }

func (b *bundle) runLock(t *testing.T) *runLock {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), b.db.URL)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(context.Background()) })
	return &runLock{conn: conn}
}

// try takes the lock unless a run holds it (source/runs.go: class "RETE", count<<16 | index).
func (l *runLock) try(t *testing.T) bool {
	t.Helper()
	var ok bool
	require.NoError(t, l.conn.QueryRow(context.Background(), `SELECT pg_try_advisory_lock(1380275269, 65536)`).Scan(&ok))
	return ok
}

func (l *runLock) release(t *testing.T) {
	t.Helper()
	var ok bool
	require.NoError(t, l.conn.QueryRow(context.Background(), `SELECT pg_advisory_unlock(1380275269, 65536)`).Scan(&ok))
	require.True(t, ok)
}

func TestScheduleRunsOnTicksAndServesMetrics(t *testing.T) {
	t.Parallel()
	b := setup(t)
	eligible := b.seedWorld(t)
	began := time.Now()
	s := startSchedule(t, b.env, "--cron", "@every 1s")

	code, _, body := s.get(t, "/healthz")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "ok\n", string(body))
	code, _, _ = s.get(t, "/readyz")
	require.Equal(t, http.StatusOK, code)

	// Ticks run: the first deletes everything, the next find nothing left.
	s.waitUntil(t, "two runs succeeded", func() bool {
		return b.countNow(`SELECT count(*) FROM retention.runs WHERE status = 'succeeded'`) >= 2
	})
	require.Equal(t, eligible, b.recordedDeleted(t))
	require.Equal(t, eligible, b.fakeDeleted())

	// Another run takes the lock between two ticks: the next ticks wait, the schedule goes on.
	lock := b.runLock(t)
	s.waitUntil(t, "the test holds the run lock", func() bool { return lock.try(t) })
	s.waitUntil(t, "a tick found the lock taken", func() bool {
		return s.metric(t, "convai_retention_schedule_skipped_ticks_total", "reason", "locked") >= 1
	})
	require.NotEmpty(t, s.logs(t, "another run holds the lock; waiting for the next tick"))

	// Nothing runs while the lock is held, so the metrics can be held against the database.
	fams := s.scrape(t)
	runs := b.count(t, `SELECT count(*) FROM retention.runs`)
	requireValue(t, fams, float64(runs), "convai_retention_runs_total", "status", "succeeded")
	requireValue(t, fams, 0, "convai_retention_runs_total", "status", "failed")
	requireValue(t, fams, float64(len(eligible)), "convai_retention_sessions_selected_total")
	requireValue(t, fams, float64(len(eligible)), "convai_retention_sessions_deleted_total")
	requireValue(t, fams, 0, "convai_retention_sessions_failed_total")
	requireValue(t, fams, float64(b.count(t, `SELECT sum((skipped_by_reason->>'held')::int) FROM retention.runs`)),
		"convai_retention_sessions_skipped_total", "reason", "held")
	requireValue(t, fams, float64(b.gate.served.Load()), "convai_retention_requests_total", "class", "2xx", "answer", "confirmed")
	requireValue(t, fams, float64(b.gate.served.Load()), "convai_retention_request_duration_seconds")
	requireValue(t, fams, 0, "convai_retention_backlog_sessions")
	success, ok := value(fams, "convai_retention_last_success_timestamp_seconds")
	require.True(t, ok)
	require.GreaterOrEqual(t, success, float64(began.Unix()))
	require.LessOrEqual(t, success, float64(time.Now().Unix()+1))
	_, ok = value(fams, "go_goroutines")
	require.True(t, ok, "the process serves the runtime metrics too")

	// Once the lock is free, ticks run again and take what expired meanwhile.
	more := b.seed(t, "c-late", "old", 3, 31)
	lock.release(t)
	s.waitUntil(t, "the late sessions are deleted", func() bool {
		return b.countNow(`SELECT count(*) FROM retention.deletions WHERE character_id = 'c-late' AND status = 'deleted'`) == len(more)
	})

	require.Equal(t, exitcode.OK, s.stop(t, 0), "stopped without a signal: %s", s.stderr.String())
	require.Regexp(t, `(?m)^run \d+ succeeded: \d+ selected`, s.stdout.String(), "each run prints its summary")
	require.NotEmpty(t, s.logs(t, "schedule stopped"))
	_, err := s.client.Get("http://" + s.addr + "/healthz")
	require.Error(t, err, "the HTTP server is down once the schedule stopped")
}

func TestScheduleSkipsOverlapAndStopsGracefully(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ids := b.seed(t, "c-one", "old", 5, 40)
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age, enabled) VALUES (NULL, '30 days', true)`)
	b.gate.hangAfter(1) // the first request passes, the second hangs until released
	s := startSchedule(t, b.env, "--cron", "@every 1s", "--chunk-size", "1", "--concurrency", "1", "--shutdown-grace", "1m")

	s.waitUntil(t, "a request hangs", func() bool { return b.gate.holding.Load() == 1 })
	s.waitUntil(t, "a tick skipped while the run goes on", func() bool {
		return s.metric(t, "convai_retention_schedule_skipped_ticks_total", "reason", "overlap") >= 1
	})
	require.NotEmpty(t, s.logs(t, "tick skipped: the previous run is still going"))

	// SIGTERM: the run claims nothing more, the request in flight finishes and is recorded.
	s.app.signal.Store(syscall.SIGTERM)
	s.cancel()
	s.waitLog(t, "stopping: no new chunks; requests in flight may finish")
	b.gate.release()
	require.Equal(t, exitcode.Terminated, s.wait(t), "%s", s.stderr.String())

	oldest := ids[3:] // seed makes the last sessions the oldest
	require.Equal(t, oldest, b.recordedDeleted(t), "the first request and the one in flight")
	require.Equal(t, oldest, b.gate.requested(), "nothing sent after the signal")
	require.Equal(t, []string{"interrupted"}, b.strings(t, `SELECT status FROM retention.runs`), "one run, no tick after the signal")
	require.Zero(t, b.count(t, `SELECT count(*) FROM retention.deletions WHERE status = 'pending'`))
	require.NotEmpty(t, s.logs(t, "scheduled run interrupted"))
	_, err := s.client.Get("http://" + s.addr + "/healthz")
	require.Error(t, err, "the HTTP server is down once the schedule stopped")
}

func TestScheduleKeyRejectedGoesOn(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seedWorld(t)
	b.fake.SetAPIKey("another-key-entirely")
	s := startSchedule(t, b.env, "--cron", "@every 1s")

	s.waitUntil(t, "two runs failed", func() bool {
		return s.metric(t, "convai_retention_runs_total", "status", "failed") >= 2
	})
	fams := s.scrape(t)
	rejected, ok := value(fams, "convai_retention_requests_total", "class", "4xx", "answer", "auth_rejected")
	require.True(t, ok)
	require.GreaterOrEqual(t, rejected, 2.0)
	_, ok = value(fams, "convai_retention_last_success_timestamp_seconds")
	require.False(t, ok, "never succeeded")
	recs := s.logs(t, "the API rejected the key; the schedule goes on, and every run fails until the key is fixed (restart to read a new key)")
	require.NotEmpty(t, recs)
	require.Equal(t, "ERROR", recs[0]["level"])
	require.Equal(t, exitcode.Interrupted, s.stop(t, syscall.SIGINT))
	require.Empty(t, b.fake.Deleted())
}

func TestScheduleReadiness(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := startSchedule(t, b.env, "--cron", "0 3 1 1 *", "--time-zone", "Europe/Berlin")
	rec := s.waitLog(t, "schedule started")
	require.Equal(t, "Europe/Berlin", rec["time_zone"])

	code, _, _ := s.get(t, "/readyz")
	require.Equal(t, http.StatusOK, code)
	b.exec(t, `UPDATE retention.schema_version SET version = 0`)
	code, _, body := s.get(t, "/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, string(body), "retention migrate")
	code, _, _ = s.get(t, "/healthz")
	require.Equal(t, http.StatusOK, code, "alive all the same")
	require.Equal(t, exitcode.Terminated, s.stop(t, syscall.SIGTERM))
	require.Zero(t, b.count(t, `SELECT count(*) FROM retention.runs`), "no tick came")
}

func TestScheduleCommandLine(t *testing.T) {
	t.Parallel()
	env := offline(t)
	tests := []struct {
		name   string
		args   []string
		stderr string
	}{
		{"no --cron", nil, "--cron is required"},
		{"bad expression", []string{"--cron", "61 * * * *"}, `invalid --cron "61 * * * *"`},
		{"too few fields", []string{"--cron", "0 3 *"}, `invalid --cron "0 3 *"`},
		{"bad descriptor", []string{"--cron", "@fortnightly"}, `invalid --cron "@fortnightly"`},
		{"zone in the expression", []string{"--cron", "CRON_TZ=Europe/Berlin 0 3 * * *"}, "give the time zone with --time-zone"},
		{"bad time zone", []string{"--cron", "0 3 * * *", "--time-zone", "Mars/Olympus"}, `invalid --time-zone "Mars/Olympus"`},
		{"dry-run", []string{"--cron", "0 3 * * *", "--dry-run"}, "--dry-run makes no sense on a schedule"},
		{"run flags apply", []string{"--cron", "0 3 * * *", "--chunk-size", "-1"}, "invalid --chunk-size -1"},
		{"never fires: 31 February", []string{"--cron", "0 0 31 2 *"}, `invalid --cron "0 0 31 2 *": it never fires`},
		{"six fields: every second", []string{"--cron", "* * * * * *"}, `invalid --cron "* * * * * *": it has 6 fields, want 5`},
		{"six fields: seconds first", []string{"--cron", "30 0 3 * * *"}, `invalid --cron "30 0 3 * * *": it has 6 fields, want 5`},
		{"seven fields", []string{"--cron", "0 0 3 * * * 2027"}, "it has 7 fields, want 5"},
		{"six fields in the environment", nil, ""}, // below, with RETENTION_CRON
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := env
			if tt.stderr == "" {
				env, tt.stderr = with(env, "RETENTION_CRON", "*/5 * * * * *"), "it has 6 fields, want 5"
			}
			r := run(t, env, append([]string{"schedule"}, tt.args...)...)
			require.Equal(t, exitcode.Usage, r.code, "%s", r)
			require.Contains(t, r.stderr, tt.stderr, "%s", r)
			require.NotContains(t, r.stderr, "connect to database", "stopped before the database: %s", r)
		})
	}

	r := run(t, with(env, "RETENTION_CRON", "not a schedule"), "schedule")
	require.Equal(t, exitcode.Usage, r.code, "%s", r)
	require.Contains(t, r.stderr, `invalid --cron "not a schedule"`)

	r = run(t, env, "schedule", "--help")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	for _, flag := range []string{"--cron", "--time-zone", "--listen", "--pushgateway-url", "--chunk-size", "$RETENTION_CRON"} {
		require.Contains(t, r.stdout, flag)
	}
}

func TestParseSchedule(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 28, 12, 0, 0, 0, time.UTC) // a Saturday
	for _, tt := range []struct {
		spec, zone string
		next       time.Time
	}{
		{"0 3 * * *", "UTC", time.Date(2026, 3, 29, 3, 0, 0, 0, time.UTC)},
		{"0 3 * * *", "Europe/Berlin", time.Date(2026, 3, 29, 1, 0, 0, 0, time.UTC)}, // 03:00 CEST after the switch at 02:00
		{"@daily", "UTC", time.Date(2026, 3, 29, 0, 0, 0, 0, time.UTC)},
		{"  @hourly ", "UTC", time.Date(2026, 3, 28, 13, 0, 0, 0, time.UTC)},
		{"0\t3 *  * *", "UTC", time.Date(2026, 3, 29, 3, 0, 0, 0, time.UTC)},
		{"@every 90m", "UTC", at.Add(90 * time.Minute)},
		{"0 12 * * MON-FRI", "UTC", time.Date(2026, 3, 30, 12, 0, 0, 0, time.UTC)},
	} {
		sched, loc, err := parseSchedule(tt.spec, tt.zone)
		require.NoError(t, err, tt.spec)
		require.Equal(t, tt.next.UTC(), sched.Next(at.In(loc)).UTC(), "%s in %s", tt.spec, tt.zone)
	}
}
