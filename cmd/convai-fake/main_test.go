package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/convai-retention/retention/convai"
	"github.com/convai-retention/retention/convai/convaitest"
	"github.com/convai-retention/retention/internal/syncbuf"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const key = "fake-key-0c1d2e"

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// lines is a stdout that hands each write to the test.
type lines chan string

func (l lines) Write(p []byte) (int, error) {
	l <- string(p)
	return len(p), nil
}

type bundle struct {
	baseURL string
	stderr  *syncbuf.Buffer
	stop    func() error // cancels run and returns its error
}

// start runs the program in-process with args and waits until it listens.
func start(t *testing.T, args ...string) *bundle {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout := make(lines, 4)
	stderr := &syncbuf.Buffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"--listen", "127.0.0.1:0"}, args...), env(map[string]string{keyEnv: key}), stdout, stderr)
	}()
	var line string
	select {
	case line = <-stdout:
	case err := <-done:
		cancel()
		t.Fatalf("run returned before listening: %v\n%s", err, stderr)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("run did not start listening")
	}
	require.Regexp(t, `^convai-fake listening on http://127\.0\.0\.1:[1-9][0-9]*\n$`, line)
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			runErr = <-done
		})
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	return &bundle{
		baseURL: strings.TrimSuffix(strings.TrimPrefix(line, "convai-fake listening on "), "\n"),
		stderr:  stderr,
		stop:    stop,
	}
}

func newClient(t *testing.T, baseURL, apiKey string) *convai.Client {
	t.Helper()
	c, err := convai.New(convai.Config{BaseURL: baseURL, APIKey: apiKey})
	require.NoError(t, err)
	t.Cleanup(c.CloseIdleConnections)
	return c
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	require.NoError(t, json.NewDecoder(resp.Body).Decode(v))
}

func TestRunServesDeletes(t *testing.T) {
	t.Parallel()
	b := start(t, "--log-level", "debug", "--reject-ids", " bad , ,worse")

	c := newClient(t, b.baseURL, key)
	res := c.Delete(context.Background(), "char-1", []string{"s2", "s1"})
	require.Equal(t, convai.Confirmed, res.Class, res.Detail)
	require.Equal(t, convai.Permanent, c.Delete(context.Background(), "char-1", []string{"worse"}).Class)
	require.Equal(t, convai.AuthRejected, newClient(t, b.baseURL, "wrong").Delete(context.Background(), "char-1", []string{"s3"}).Class)

	var deleted struct {
		Deleted map[string][]string `json:"deleted"`
		Total   int                 `json:"total"`
	}
	getJSON(t, b.baseURL+"/_fake/deleted", &deleted)
	require.Equal(t, map[string][]string{"char-1": {"s1", "s2"}}, deleted.Deleted)
	require.Equal(t, 2, deleted.Total)

	var stats convaitest.Stats
	getJSON(t, b.baseURL+"/_fake/stats", &stats)
	require.Equal(t, 3, stats.Requests)
	require.Equal(t, 2, stats.Deleted)
	require.Equal(t, 1, stats.Outcomes[convaitest.OutcomeDeleted])
	require.Equal(t, 1, stats.Outcomes[convaitest.OutcomeRejected])
	require.Equal(t, 1, stats.Outcomes[convaitest.OutcomeUnauthorized])

	require.NoError(t, b.stop())
	logs := b.stderr.String()
	require.Contains(t, logs, "outcome=deleted")
	require.Contains(t, logs, "msg=stopped")
	require.NotContains(t, logs, key)
}

func TestRunFaults(t *testing.T) {
	t.Parallel()
	b := start(t, "--fail-rate", "1", "--seed", "9")

	res := newClient(t, b.baseURL, key).Delete(context.Background(), "c", []string{"s"})
	require.Equal(t, convai.Retryable, res.Class)
	require.Equal(t, http.StatusInternalServerError, res.StatusCode)
	require.NotContains(t, b.stderr.String(), "outcome=", "requests log at debug only")
}

func TestRunShutdownReleasesHungRequests(t *testing.T) {
	t.Parallel()
	b := start(t, "--hang-rate", "1")

	c := newClient(t, b.baseURL, key)
	got := make(chan convai.Result, 1)
	go func() { got <- c.Delete(context.Background(), "c", []string{"s"}) }()
	require.Eventually(t, func() bool {
		var st convaitest.Stats
		getJSON(t, b.baseURL+"/_fake/stats", &st)
		return st.InFlight == 1 // the hung delete
	}, 10*time.Second, 5*time.Millisecond)

	require.NoError(t, b.stop())
	res := <-got
	require.Equal(t, convai.Retryable, res.Class)
	require.Equal(t, http.StatusServiceUnavailable, res.StatusCode)
}

func TestRunListenError(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })

	var stderr bytes.Buffer
	err = run(context.Background(), []string{"--listen", ln.Addr().String()}, env(map[string]string{keyEnv: key}), io.Discard, &stderr)
	require.ErrorContains(t, err, "listen on "+ln.Addr().String())
	require.Equal(t, 1, exitCode(err, &stderr))
	require.Contains(t, stderr.String(), "convai-fake: listen on")
}

func TestBadFlags(t *testing.T) {
	t.Parallel()
	withKey := map[string]string{keyEnv: key}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string // the error contains it
	}{
		{"rate above 1", []string{"--fail-rate", "1.5"}, withKey, "--fail-rate 1.5: must be between 0 and 1"},
		{"negative rate", []string{"--drop-rate", "-0.1"}, withKey, "--drop-rate -0.1: must be between 0 and 1"},
		{"NaN rate", []string{"--hang-rate", "NaN"}, withKey, "--hang-rate NaN"},
		{"rates add up past 1", []string{"--fail-rate", "0.6", "--lost-answer-rate", "0.6"}, withKey, "add up to 1.2"},
		{"rate not a number", []string{"--unconfirmed-rate", "lots"}, withKey, "unconfirmed-rate"},
		{"zero retry-after", []string{"--retry-after", "0s"}, withKey, "--retry-after 0s: must be positive"},
		{"negative latency", []string{"--latency", "-1s"}, withKey, "--latency -1s"},
		{"negative hang-for", []string{"--hang-for", "-1ms"}, withKey, "--hang-for -1ms"},
		{"negative max-ids", []string{"--max-ids", "-3"}, withKey, "--max-ids -3"},
		{"bad listen", []string{"--listen", "8089"}, withKey, `--listen "8089": want host:port`},
		{"bad log level", []string{"--log-level", "loud"}, withKey, `--log-level "loud"`},
		{"bad LOG_LEVEL", nil, map[string]string{keyEnv: key, "LOG_LEVEL": "chatty"}, `--log-level "chatty"`},
		{"unknown flag", []string{"--nope"}, withKey, "flag provided but not defined: -nope"},
		{"positional argument", []string{"serve"}, withKey, `unexpected argument "serve"`},
		{"no key", nil, map[string]string{}, "CONVAI_API_KEY is not set"},
		{"blank key", nil, map[string]string{keyEnv: "  "}, "CONVAI_API_KEY is not set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), tt.args, env(tt.env), &stdout, &stderr)
			require.ErrorContains(t, err, tt.want)
			require.Equal(t, 2, exitCode(err, &stderr))
			require.Empty(t, stdout.String(), "nothing listens")
			require.NotContains(t, stderr.String(), key)
		})
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"-h"}, env(nil), io.Discard, &stderr)
	require.True(t, errors.Is(err, flag.ErrHelp))
	require.Equal(t, 0, exitCode(err, &stderr))
	require.Contains(t, stderr.String(), "-lost-answer-rate")
	require.Contains(t, stderr.String(), "CONVAI_API_KEY=KEY convai-fake [flags]")
}

func TestExitCode(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	require.Equal(t, 0, exitCode(nil, &stderr))
	require.Equal(t, 1, exitCode(errors.New("boom"), &stderr))
	require.Equal(t, 2, exitCode(usagef("bad %s", "flag"), &stderr))
	require.Equal(t, "convai-fake: boom\nconvai-fake: bad flag\n", stderr.String())
}

func TestRunServesSessionsFromFile(t *testing.T) {
	t.Parallel()
	path := t.TempDir() + "/sessions.json"
	require.NoError(t, os.WriteFile(path, []byte(`{"char-1": {"s1": ["2026-01-02T03:04:05Z", "2026-01-03T00:00:00Z"], "s2": []}}`), 0o600))
	b := start(t, "--sessions", path, "--refuse-unknown")

	c := newClient(t, b.baseURL, key)
	var ids []string
	res := c.List(context.Background(), "char-1", func(s convai.ListedSession) error {
		ids = append(ids, s.SessionID)
		return nil
	})
	require.Equal(t, convai.Confirmed, res.Class, res.Detail)
	require.ElementsMatch(t, []string{"s1", "s2"}, ids)
	d, res := c.Details(context.Background(), "char-1", "s1")
	require.Equal(t, convai.Confirmed, res.Class, res.Detail)
	require.Equal(t, time.Date(2026, 1, 3, 0, 0, 0, 0, time.UTC), d.Latest)

	require.Equal(t, convai.Confirmed, c.Delete(context.Background(), "char-1", []string{"s1"}).Class)
	again := c.Delete(context.Background(), "char-1", []string{"s1"})
	require.Equal(t, convai.Permanent, again.Class)
	require.Equal(t, http.StatusNotFound, again.StatusCode)

	var sessions struct {
		Sessions []string `json:"sessions"`
	}
	getJSON(t, b.baseURL+"/_fake/sessions?character=char-1", &sessions)
	require.Equal(t, []string{"s2"}, sessions.Sessions)
}

func TestRunRefusesBadSessionsFile(t *testing.T) {
	t.Parallel()
	path := t.TempDir() + "/sessions.json"
	require.NoError(t, os.WriteFile(path, []byte(`{"char-1": ["s1"]}`), 0o600))
	var stderr syncbuf.Buffer
	err := run(context.Background(), []string{"--listen", "127.0.0.1:0", "--sessions", path}, env(map[string]string{keyEnv: key}), io.Discard, &stderr)
	require.Equal(t, 2, exitCode(err, &stderr))
	require.Contains(t, stderr.String(), "--sessions")
	err = run(context.Background(), []string{"--listen", "127.0.0.1:0", "--sessions", path + ".missing"}, env(map[string]string{keyEnv: key}), io.Discard, &stderr)
	require.Equal(t, 2, exitCode(err, &stderr))
}
