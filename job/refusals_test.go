package job_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/convai/convaitest"
	"github.com/convai-retention/retention/job"
)

func chunkIDs(prefix string, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-%02d", prefix, i)
	}
	return ids
}

// stopRecorder keeps the errors a deliverer stopped the run with.
type stopRecorder struct {
	mu   sync.Mutex
	errs []error
}

func (s *stopRecorder) stop(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errs = append(s.errs, err)
}

func (s *stopRecorder) all() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]error(nil), s.errs...)
}

// TestEveryRequestRefusedStopsTheRun: an API that answers 400 to every request, whatever the
// IDs. Each chunk is split down to single IDs (2N-1 requests), every one refused with the same
// status; after RefusalLimit such chunks the run stops with the status and a description of the
// answer, and no further request goes out.
func TestEveryRequestRefusedStopsTheRun(t *testing.T) {
	t.Parallel()
	var requests atomic.Int64
	b := setup(t, setupOpts{handler: func(http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			requests.Add(1)
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"ERROR": "Unsupported request format, key `+testKey+`"}`)
		})
	}})
	var rec stopRecorder
	deliver := job.NewTestDeliverer(b.store, b.send, fastConfig(), nil, rec.stop)

	const n = 8
	for chunk := 1; chunk <= job.RefusalLimit; chunk++ {
		out := deliver(context.Background(), "c", chunkIDs(fmt.Sprint("chunk", chunk), n))
		require.Len(t, out, n)
		for _, o := range out {
			require.False(t, o.Deleted)
			require.Equal(t, http.StatusBadRequest, o.HTTPStatus)
		}
		require.EqualValues(t, chunk*(2*n-1), requests.Load(), "split down to single IDs")
		if chunk < job.RefusalLimit {
			require.Empty(t, rec.all(), "not yet stopped after %d chunks", chunk)
		}
	}
	errs := rec.all()
	require.Len(t, errs, 1, "stopped once")
	var refused *job.RefusedError
	require.True(t, errors.As(errs[0], &refused), "%v", errs[0])
	require.Equal(t, job.RefusalLimit, refused.Chunks)
	require.Equal(t, http.StatusBadRequest, refused.StatusCode)
	msg := errs[0].Error()
	require.Contains(t, msg, "HTTP 400")
	require.Contains(t, msg, "status 400: JSON body without a known message")
	require.NotContains(t, msg, "Unsupported request format", "no text of the body is kept")
	require.NotContains(t, msg, testKey)

	// Once stopped, the next chunk is not sent at all.
	before := requests.Load()
	out := deliver(context.Background(), "c", chunkIDs("after", n))
	require.Len(t, out, n)
	require.Equal(t, before, requests.Load())
	for _, o := range out {
		require.False(t, o.Deleted)
		require.Contains(t, o.Error, "not sent")
	}
}

// TestBadIDsAmongGoodOnesDoNotStopTheRun: chunks with a few refused IDs among good ones are
// not refused whole: the good IDs are deleted, each chunk costs at most about
// 2·b·⌈log2 N⌉+1 requests, and the run never stops however many such chunks there are; nor
// do chunks of one refused ID.
func TestBadIDsAmongGoodOnesDoNotStopTheRun(t *testing.T) {
	t.Parallel()
	const n, chunks = 16, 6
	var bad []string
	for c := range chunks {
		bad = append(bad, fmt.Sprintf("chunk%d-%02d", c, 3), fmt.Sprintf("chunk%d-%02d", c, 11))
	}
	for c := range chunks {
		bad = append(bad, fmt.Sprintf("single%d-00", c))
	}
	b := setup(t, setupOpts{fake: convaitest.Options{RejectIDs: bad}})
	var rec stopRecorder
	deliver := job.NewTestDeliverer(b.store, b.send, fastConfig(), nil, rec.stop)

	for c := range chunks {
		before := len(b.fake.Requests())
		out := deliver(context.Background(), "c", chunkIDs(fmt.Sprint("chunk", c), n))
		deleted := 0
		for _, o := range out {
			if o.Deleted {
				deleted++
			} else {
				require.Contains(t, bad, o.SessionID)
			}
		}
		require.Equal(t, n-2, deleted, "the good IDs are deleted")
		sent := len(b.fake.Requests()) - before
		require.LessOrEqual(t, sent, 2*2*int(math.Ceil(math.Log2(n)))+1, "chunk %d", c)
	}
	for c := range chunks {
		out := deliver(context.Background(), "c", chunkIDs(fmt.Sprint("single", c), 1))
		require.False(t, out[0].Deleted)
	}
	require.Empty(t, rec.all(), "never stopped")
	// A chunk refused whole between good ones starts no stop either.
	b.fake.SetRejectIDs(chunkIDs("whole", 4)...)
	for range job.RefusalLimit - 1 {
		deliver(context.Background(), "c", chunkIDs("whole", 4))
	}
	deliver(context.Background(), "c", chunkIDs("good", 4))
	deliver(context.Background(), "c", chunkIDs("whole", 4))
	require.Empty(t, rec.all(), "a chunk with a deletion starts the count again")
}

// TestInterruptEndsRetryAfterWait: the run is told to stop while a chunk only waits out a
// Retry-After: nothing is in flight, so the wait ends at once and nothing more is sent.
func TestInterruptEndsRetryAfterWait(t *testing.T) {
	t.Parallel()
	var requests atomic.Int64
	b := setup(t, setupOpts{handler: func(http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			requests.Add(1)
			w.Header().Set("Retry-After", "120")
			w.WriteHeader(http.StatusTooManyRequests)
		})
	}})
	interrupted := make(chan struct{})
	var rec stopRecorder
	deliver := job.NewTestDeliverer(b.store, b.send, fastConfig(), interrupted, rec.stop)

	done := make(chan []job.Outcome, 1)
	go func() { done <- deliver(context.Background(), "c", chunkIDs("s", 3)) }()
	require.Eventually(t, func() bool { return requests.Load() == 1 }, 10*time.Second, time.Millisecond)
	time.Sleep(50 * time.Millisecond) // into the Retry-After wait
	close(interrupted)
	var out []job.Outcome
	select {
	case out = <-done:
	case <-time.After(time.Second):
		t.Fatal("still waiting out the Retry-After a second after the run was told to stop")
	}
	require.EqualValues(t, 1, requests.Load(), "nothing sent after the signal")
	require.Len(t, out, 3)
	for _, o := range out {
		require.False(t, o.Deleted)
		require.Equal(t, 1, o.Attempts)
		require.Equal(t, http.StatusTooManyRequests, o.HTTPStatus)
		require.True(t, strings.Contains(o.Error, "told to stop while waiting to retry"), o.Error)
	}
	require.Empty(t, rec.all())
}

// TestInterruptLetsRequestInFlightFinish: told to stop while a request is in flight, the
// deliverer lets it finish (the shutdown grace is the run's to enforce) and records its answer.
func TestInterruptLetsRequestInFlightFinish(t *testing.T) {
	t.Parallel()
	arrived := make(chan struct{})
	release := make(chan struct{})
	b := setup(t, setupOpts{handler: func(fake http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			close(arrived)
			<-release
			fake.ServeHTTP(w, r)
		})
	}})
	interrupted := make(chan struct{})
	var rec stopRecorder
	deliver := job.NewTestDeliverer(b.store, b.send, fastConfig(), interrupted, rec.stop)
	done := make(chan []job.Outcome, 1)
	go func() { done <- deliver(context.Background(), "c", chunkIDs("s", 2)) }()
	<-arrived
	close(interrupted)
	time.Sleep(50 * time.Millisecond)
	close(release)
	out := <-done
	require.Len(t, out, 2)
	for _, o := range out {
		require.True(t, o.Deleted, "%+v", o)
	}
}
