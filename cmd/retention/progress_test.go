package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/internal/syncbuf"
	"github.com/convai-retention/retention/job"
)

const clearLine = "\r\x1b[K"

func TestLiveLineOnlyOnATerminal(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	l := newLiveLine(&buf)
	require.Nil(t, l, "a buffer is no terminal")
	l.set("anything") // a nil line does nothing
	h := slog.NewTextHandler(&buf, nil)
	require.Same(t, h, l.handler(h), "logs go straight through")
	require.Empty(t, buf.String())
}

func TestLiveLineKeepsLogsApart(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	l := &liveLine{w: &buf}
	log := slog.New(l.handler(slog.NewTextHandler(&buf, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))).With("run_id", 7)

	log.Info("before")
	l.set("1/10")
	l.set("2/10")
	l.set("2/10") // unchanged: nothing written
	log.Info("between")
	l.set("")
	log.Info("after")

	require.Equal(t, "level=INFO msg=before run_id=7\n"+
		"1/10"+clearLine+"2/10"+
		clearLine+"level=INFO msg=between run_id=7\n2/10"+
		clearLine+
		"level=INFO msg=after run_id=7\n", buf.String())
}

// clock is a settable clock for progress.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newTestProgress(count func(context.Context) (int64, error), budget int64) (*progress, *clock) {
	c := &clock{now: time.Date(2026, 3, 1, 3, 0, 0, 0, time.UTC)}
	p := newProgress(nil, slog.New(slog.DiscardHandler), count, budget)
	p.now = c.Now
	return p, c
}

// waitEstimate waits for the estimate goroutine to finish.
func waitEstimate(t *testing.T, p *progress) {
	t.Helper()
	require.Eventually(t, func() bool { return !p.estimating.Load() }, time.Minute, time.Millisecond)
}

func TestProgressEstimate(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	p, c := newTestProgress(func(ctx context.Context) (int64, error) {
		<-release
		return 60, nil
	}, 0)
	// Recorded before the run starts, so the count begins with these 18 deleted whenever its
	// goroutine is scheduled (a count that began before them would find them not yet deleted).
	p.Recorded(18, 2)
	p.RunStarted(job.RunInfo{})
	defer p.close()
	for range 50 {
		p.Selected("c")
	}
	c.add(10 * time.Second)
	_, ok := p.estimated()
	require.False(t, ok, "no total before the count ends")
	require.Equal(t, "retention: 20 done, 50 selected so far, 2.0/s, estimating the total…", p.render())

	close(release)
	waitEstimate(t, p)
	total, ok := p.estimated()
	require.True(t, ok)
	require.EqualValues(t, 18+60, total, "deleted before the count plus what it found not yet deleted")
	require.Equal(t, "retention: 20/78 sessions (26%), 2.0/s, 29s left", p.render())
}

func TestProgressEstimateCappedByBudget(t *testing.T) {
	t.Parallel()
	p, _ := newTestProgress(func(context.Context) (int64, error) { return 500, nil }, 100)
	p.RunStarted(job.RunInfo{})
	defer p.close()
	waitEstimate(t, p)
	total, ok := p.estimated()
	require.True(t, ok)
	require.EqualValues(t, 100, total)

	p.Recorded(150, 0) // more than estimated: the total follows what is done
	total, _ = p.estimated()
	require.EqualValues(t, 150, total)
}

func TestProgressWithoutEstimate(t *testing.T) {
	t.Parallel()
	p, c := newTestProgress(nil, 0)
	p.RunStarted(job.RunInfo{})
	defer p.close()
	p.Recorded(5, 0)
	c.add(time.Second)
	_, ok := p.estimated()
	require.False(t, ok)
	require.Equal(t, "retention: 5 done, 0 selected so far, 5.0/s", p.render())

	failing, _ := newTestProgress(func(context.Context) (int64, error) { return 0, errors.New("boom") }, 0)
	failing.RunStarted(job.RunInfo{})
	defer failing.close()
	waitEstimate(t, failing)
	_, ok = failing.estimated()
	require.False(t, ok, "a failed count gives no total")
}

func TestProgressCloseStopsTheCountAndClearsTheLine(t *testing.T) {
	t.Parallel()
	var buf syncbuf.Buffer
	started := make(chan struct{})
	p := newProgress(&liveLine{w: &buf}, slog.New(slog.DiscardHandler), func(ctx context.Context) (int64, error) {
		close(started)
		<-ctx.Done()
		return 0, ctx.Err()
	}, 0)
	p.every = time.Millisecond
	p.RunStarted(job.RunInfo{})
	<-started
	require.Eventually(t, func() bool { return strings.Contains(buf.String(), "retention: 0 done") }, time.Minute, time.Millisecond)
	p.close()
	p.close()
	require.True(t, strings.HasSuffix(buf.String(), clearLine), "the line is cleared at the end: %q", buf.String())
	p.RunStarted(job.RunInfo{}) // after close: starts nothing
	require.True(t, strings.HasSuffix(buf.String(), clearLine))
}

func TestObserversPassEveryEvent(t *testing.T) {
	t.Parallel()
	a, b := &countingObserver{}, &countingObserver{}
	var o job.Observer = observers{a, b}
	o.RunStarted(job.RunInfo{})
	o.Selected("c")
	o.Skipped("held", 2)
	o.Requested(job.Answer{}, time.Millisecond)
	o.Retrying(job.Answer{})
	o.Recorded(1, 0)
	o.RunFinished(&job.Summary{})
	require.Equal(t, 7, a.n)
	require.Equal(t, 7, b.n)
}

type countingObserver struct{ n int }

func (c *countingObserver) RunStarted(job.RunInfo)              { c.n++ }
func (c *countingObserver) Selected(string)                     { c.n++ }
func (c *countingObserver) Skipped(string, int64)               { c.n++ }
func (c *countingObserver) Requested(job.Answer, time.Duration) { c.n++ }
func (c *countingObserver) Retrying(job.Answer)                 { c.n++ }
func (c *countingObserver) Recorded(int, int)                   { c.n++ }
func (c *countingObserver) RunFinished(*job.Summary)            { c.n++ }
