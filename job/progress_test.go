package job_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/convai/convaitest"
)

// lockedBuffer is a log destination safe for the run's goroutines and the test.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// records returns the JSON log records with message msg.
func (b *lockedBuffer) records(t *testing.T, msg string) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &rec), line)
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

func TestProgressLogsTotalAndTimeLeft(t *testing.T) {
	t.Parallel()
	// Every request takes a while, so the run outlasts several progress intervals.
	b := setup(t, setupOpts{fake: convaitest.Options{Latency: 20 * time.Millisecond}})
	seedPolicies(t, b)
	b.seed(t, "bulk", 20, days(40))
	var logs lockedBuffer
	cfg := fastConfig()
	cfg.ChunkSize, cfg.Concurrency = 1, 1
	cfg.ProgressInterval = time.Millisecond
	cfg.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	cfg.EstimatedTotal = func() (int64, bool) { return 20, true }
	sum, err := b.run(t, cfg)
	require.NoError(t, err)
	require.EqualValues(t, 20, sum.Deleted)

	var withTimeLeft int
	recs := logs.records(t, "progress")
	require.NotEmpty(t, recs)
	for _, r := range recs {
		require.EqualValues(t, 20, r["total"])
		if left, ok := r["time_left"].(string); ok {
			_, err := time.ParseDuration(left)
			require.NoError(t, err)
			withTimeLeft++
		}
	}
	require.Positive(t, withTimeLeft, "once a session is done, the rate gives the time left")
}

func TestProgressWithoutEstimate(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{fake: convaitest.Options{Latency: 20 * time.Millisecond}})
	seedPolicies(t, b)
	b.seed(t, "bulk", 5, days(40))
	var logs lockedBuffer
	cfg := fastConfig()
	cfg.ChunkSize, cfg.Concurrency = 1, 1
	cfg.ProgressInterval = time.Millisecond
	cfg.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	cfg.EstimatedTotal = func() (int64, bool) { return 0, false }
	_, err := b.run(t, cfg)
	require.NoError(t, err)
	recs := logs.records(t, "progress")
	require.NotEmpty(t, recs)
	for _, r := range recs {
		require.NotContains(t, r, "total")
		require.NotContains(t, r, "time_left")
		require.Contains(t, r, "sessions_per_second")
	}
}
