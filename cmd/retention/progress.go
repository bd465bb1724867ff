package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/term"

	"github.com/convai-retention/retention/job"
)

// liveEvery is how often the live line is redrawn.
const liveEvery = 500 * time.Millisecond

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// liveLine is one line at the bottom of a terminal, rewritten in place with \r. Log records
// that go through its handler clear it first and draw it again after, so the two never mix on
// one line. A nil *liveLine does nothing: stderr is not a terminal, and logs stay clean JSON.
type liveLine struct {
	mu   sync.Mutex
	w    io.Writer
	text string // what is shown; "" when nothing is
}

// newLiveLine returns a live line on w, or nil unless w is a terminal.
func newLiveLine(w io.Writer) *liveLine {
	if !isTerminal(w) {
		return nil
	}
	return &liveLine{w: w}
}

// set shows text in place of what the line showed; "" clears it.
func (l *liveLine) set(text string) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if text == l.text {
		return
	}
	if l.text != "" {
		io.WriteString(l.w, "\r\x1b[K") //nolint:errcheck // a terminal that fails to draw is not an error of the run
	}
	l.text = text
	io.WriteString(l.w, text) //nolint:errcheck // as above
}

// handler returns h wrapped so that its records are written above the live line.
func (l *liveLine) handler(h slog.Handler) slog.Handler {
	if l == nil {
		return h
	}
	return &liveHandler{Handler: h, line: l}
}

type liveHandler struct {
	slog.Handler
	line *liveLine
}

func (h *liveHandler) Handle(ctx context.Context, r slog.Record) error {
	l := h.line
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.text != "" {
		io.WriteString(l.w, "\r\x1b[K") //nolint:errcheck // see set
	}
	err := h.Handler.Handle(ctx, r)
	if l.text != "" {
		io.WriteString(l.w, l.text) //nolint:errcheck // see set
	}
	return err
}

func (h *liveHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &liveHandler{Handler: h.Handler.WithAttrs(attrs), line: h.line}
}

func (h *liveHandler) WithGroup(name string) slog.Handler {
	return &liveHandler{Handler: h.Handler.WithGroup(name), line: h.line}
}

// progress follows one real run for a person. It counts what the run does (it is a
// job.Observer), estimates how many sessions the run will do in all, for the job's progress
// log (job.Config.EstimatedTotal) and, on a terminal, draws the live line.
//
// The estimate is a dry-run count of the same selection, started once the run holds its lock
// and run beside it in a read-only transaction: the sessions deleted so far plus those the
// count finds not yet deleted, capped by the run's budget. Until it is known, the live line
// shows what has been selected so far instead of a total.
type progress struct {
	job.NopObserver
	line   *liveLine
	log    *slog.Logger
	count  func(ctx context.Context) (int64, error) // nil: no estimate
	budget int64
	now    func() time.Time
	every  time.Duration

	selected, deleted, failed atomic.Int64
	total                     atomic.Int64 // -1 until estimated
	estimating                atomic.Bool  // the count is running

	mu      sync.Mutex
	began   time.Time
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	started bool
	closed  bool
}

// newProgress returns a progress for one run. count may be nil (no estimate), line nil (no
// live line).
func newProgress(line *liveLine, log *slog.Logger, count func(context.Context) (int64, error), budget int64) *progress {
	p := &progress{line: line, log: log, count: count, budget: budget, now: time.Now, every: liveEvery}
	p.total.Store(-1)
	return p
}

// RunStarted starts the estimate and the live line.
func (p *progress) RunStarted(job.RunInfo) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started || p.closed {
		return
	}
	p.started = true
	p.began = p.now()
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	if p.count != nil {
		p.estimating.Store(true)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.estimate(ctx)
		}()
	}
	if p.line != nil {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			tick := time.NewTicker(p.every)
			defer tick.Stop()
			for {
				p.line.set(p.render())
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		}()
	}
}

func (p *progress) Selected(string) { p.selected.Add(1) }

func (p *progress) Recorded(deleted, failed int) {
	p.deleted.Add(int64(deleted))
	p.failed.Add(int64(failed))
}

// estimate counts the sessions the run still has to delete and stores the total.
func (p *progress) estimate(ctx context.Context) {
	defer p.estimating.Store(false)
	deleted := p.deleted.Load()
	n, err := p.count(ctx)
	if err != nil {
		if ctx.Err() == nil {
			p.log.Warn("could not estimate the sessions to send; progress goes on without a total", "err", err)
		}
		return
	}
	total := deleted + n
	if p.budget > 0 {
		total = min(total, p.budget)
	}
	p.total.Store(total)
	p.log.Info("estimated the sessions this run will send", "total", total)
}

// CapChecked implements job.CapObserver: the safety cap's count, with the sessions erasure
// requests ask for (which it leaves out, and the run sends first), is what the run will send, so
// it is the estimate when no count runs beside the run.
func (p *progress) CapChecked(c job.CapCheck) {
	if p.count != nil || c.Aborted {
		return
	}
	total := c.WouldSend + c.ErasureSessions
	p.total.Store(total)
	p.log.Info("estimated the sessions this run will send", "total", total, "from", "safety cap count")
}

// estimated is the job's EstimatedTotal: the estimate, never below what is already done.
func (p *progress) estimated() (int64, bool) {
	total := p.total.Load()
	if total < 0 {
		return 0, false
	}
	return max(total, p.deleted.Load()+p.failed.Load()), true
}

// render is the text of the live line.
func (p *progress) render() string {
	done := p.deleted.Load() + p.failed.Load()
	p.mu.Lock()
	elapsed := p.now().Sub(p.began)
	p.mu.Unlock()
	rate := float64(done) / max(elapsed.Seconds(), 0.001)
	total, ok := p.estimated()
	if !ok {
		line := fmt.Sprintf("retention: %d done, %d selected so far, %.1f/s", done, p.selected.Load(), rate)
		if p.estimating.Load() {
			line += ", estimating the total…"
		}
		return line
	}
	pct := 100.0
	if total > 0 {
		pct = 100 * float64(done) / float64(total)
	}
	left := "time left unknown"
	if rate > 0 {
		left = time.Duration(float64(total-done)/rate*float64(time.Second)).Round(time.Second).String() + " left"
	}
	return fmt.Sprintf("retention: %d/%d sessions (%.0f%%), %.1f/s, %s", done, total, pct, rate, left)
}

// close stops the estimate and the live line, and clears it. It is safe to call twice.
func (p *progress) close() {
	p.mu.Lock()
	p.closed = true
	cancel := p.cancel
	p.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	p.wg.Wait()
	p.line.set("")
}

// observers passes each event to every one of them.
type observers []job.Observer

// CapChecked passes the safety cap's count to those that want it.
func (obs observers) CapChecked(c job.CapCheck) {
	for _, o := range obs {
		if co, ok := o.(job.CapObserver); ok {
			co.CapChecked(c)
		}
	}
}

func (obs observers) RunStarted(info job.RunInfo) {
	for _, o := range obs {
		o.RunStarted(info)
	}
}

func (obs observers) Selected(characterID string) {
	for _, o := range obs {
		o.Selected(characterID)
	}
}

func (obs observers) Skipped(reason string, n int64) {
	for _, o := range obs {
		o.Skipped(reason, n)
	}
}

func (obs observers) Requested(a job.Answer, latency time.Duration) {
	for _, o := range obs {
		o.Requested(a, latency)
	}
}

func (obs observers) Retrying(a job.Answer) {
	for _, o := range obs {
		o.Retrying(a)
	}
}

func (obs observers) Recorded(deleted, failed int) {
	for _, o := range obs {
		o.Recorded(deleted, failed)
	}
}

func (obs observers) RunFinished(s *job.Summary) {
	for _, o := range obs {
		o.RunFinished(s)
	}
}
