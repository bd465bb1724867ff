package job_test

import (
	"context"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"

	"github.com/convai-retention/retention/job"
)

// A real run against an API that refuses every request stops after RefusalLimit chunks refused
// whole, with the reason on the run row, and sends nothing more.
func TestRunStopsWhenEveryRequestIsRefused(t *testing.T) {
	t.Parallel()
	var requests atomic.Int64
	b := setup(t, setupOpts{handler: func(http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			requests.Add(1)
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"ERROR": "Unsupported request format"}`)
		})
	}})
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '1 day')`)
	for _, c := range []string{"a", "b", "c", "d", "e", "f"} {
		b.seed(t, c, 8, days(2))
	}
	cfg := fastConfig()
	cfg.ChunkSize, cfg.Concurrency = 8, 1
	sum, err := b.run(t, cfg)
	var refused *job.RefusedError
	require.ErrorAs(t, err, &refused)
	require.Equal(t, job.StatusFailed, sum.Status)
	require.Equal(t, http.StatusBadRequest, refused.StatusCode)
	// Three chunks of 8 split down to single IDs: 15 requests each, and one list per character
	// to settle its refused IDs (refused too); the other three never go out.
	require.EqualValues(t, 3*15+3, requests.Load())
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM retention.runs WHERE status = 'failed' AND error LIKE '%refuses the requests%HTTP 400%'`))
	require.Zero(t, b.count(t, `SELECT count(*) FROM retention.deletions WHERE status = 'deleted'`))
}

// A signal while the run only waits out a Retry-After (nothing in flight) ends the wait at once:
// the run does not sit out the Retry-After, nor the shutdown grace (both far longer than the
// test's own time limit), and the session is recorded failed for the next run.
func TestSignalEndsARetryAfterWait(t *testing.T) {
	t.Parallel()
	asked := make(chan struct{}, 1)
	b := setup(t, setupOpts{handler: func(http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Retry-After", "300")
			w.WriteHeader(http.StatusTooManyRequests)
			select {
			case asked <- struct{}{}:
			default:
			}
		})
	}})
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '1 day')`)
	b.seed(t, "c", 1, days(2))
	cfg := fastConfig()
	cfg.ShutdownGrace, cfg.MaxRetryAfter = time.Hour, time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-asked
		cancel()
	}()
	sum, err := b.runWith(t, ctx, b.store, cfg)
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, job.StatusInterrupted, sum.Status)
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM retention.deletions WHERE status = 'failed' AND http_status = 429`))
}

// The rate is the deployment's: each of N shards takes 1/N of it. (That the limiter spaces the
// requests is TestRateLimitSpacesRequests'.)
func TestShardTakesItsShareOfTheRate(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		rate   float64
		shards int
		want   float64
	}{
		{10, 1, 10},
		{10, 4, 2.5},
		{50, 2, 25},
		{0, 4, float64(rate.Inf)}, // no limit
	} {
		cfg := job.Config{Rate: tt.rate, Shard: job.Shard{Index: 0, Count: tt.shards}}
		require.Equal(t, tt.want, job.RateLimit(cfg), "rate %v over %d shards", tt.rate, tt.shards)
	}
}

// Holds whose character or session matches nothing in the source protect nothing: the run and
// the dry-run name them once, since a typo is the likely cause.
func TestHoldsThatMatchNothingAreNamed(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.exec(t, `INSERT INTO retention.policies (character_id, max_age) VALUES (NULL, '1 day')`)
	b.seed(t, "char-0", 2, days(2))
	b.exec(t, `INSERT INTO retention.holds (character_id, session_id, reason) VALUES
		('char-0 ', NULL, 'trailing space'), ('CHAR-0', NULL, 'case'), ('char-0', 'char-0-s9999', 'no such session'),
		('char-0', 'char-0-s0001', 'a real hold')`)
	r, err := job.New(b.store, nil, fastConfig())
	require.NoError(t, err)
	dry, err := r.DryRun(context.Background(), "test", false)
	require.NoError(t, err)
	want := []string{"char-0 ", "CHAR-0", "char-0/char-0-s9999"}
	require.Equal(t, want, dry.UnmatchedHolds)
	sum, err := b.run(t, fastConfig())
	require.NoError(t, err)
	require.Equal(t, want, sum.UnmatchedHolds)
	require.EqualValues(t, 1, sum.Deleted, "the real hold still protects its session")
}
