package job

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/convai-retention/retention/policy"
)

// Runner runs retention runs against one store and one sender.
type Runner struct {
	store  Store
	sender Sender
	cfg    Config
}

// New checks cfg and returns a Runner. sender may be nil for a Runner used only for dry-runs.
func New(store Store, sender Sender, cfg Config) (*Runner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Runner{store: store, sender: sender, cfg: cfg.withDefaults()}, nil
}

// Run does one real run. Cancelling ctx (a signal) stops it from claiming more chunks; requests
// in flight may finish for ShutdownGrace, every answer received is recorded, and the run is
// marked interrupted. The Summary is returned whenever a run row was written, also with an error.
// Errors wrap ErrLocked, ErrKeyRejected or ErrLockLost where those apply.
func (r *Runner) Run(ctx context.Context, start RunStart) (*Summary, error) {
	if r.sender == nil {
		return nil, errors.New("a real run needs a sender")
	}
	cfg, log := r.cfg, r.cfg.Logger
	began := time.Now()
	start.Shard = cfg.Shard

	lock, err := r.store.Lock(ctx, cfg.Shard)
	if err != nil {
		return nil, err
	}
	defer lock.Release(context.WithoutCancel(ctx)) //nolint:errcheck // closing the connection releases it anyway

	start.Lock = lock
	info, err := r.store.StartRun(ctx, start)
	if err != nil {
		return nil, err
	}
	if len(info.Recovered) > 0 {
		log.Warn("marked unfinished runs interrupted; their pending sessions will be sent again", "runs", info.Recovered)
	}
	log.Info("run started", "run_id", info.ID, "cutoff", info.Cutoff, "source", start.Source,
		"shard_index", cfg.Shard.Index, "shard_count", cfg.Shard.Count)

	sum := &Summary{RunID: info.ID, Status: StatusRunning, Cutoff: info.Cutoff, Source: start.Source,
		Shard: cfg.Shard, Recovered: info.Recovered}
	t := newTally(false, cfg.Observer)
	cfg.Observer.RunStarted(info)

	// dbCtx bounds each store call; it is not cancelled by a signal, so answers received during
	// the shutdown grace are still recorded.
	dbCtx := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	}
	finish := func(status Status, runErr error) (*Summary, error) {
		sum.Status = status
		if runErr != nil {
			sum.Error = truncate(runErr.Error())
		}
		t.fill(sum)
		sum.Duration = time.Since(began)
		sum.DurationSeconds = sum.Duration.Seconds()
		fctx, cancel := dbCtx()
		defer cancel()
		if err := r.store.FinishRun(fctx, info.ID, sum); err != nil {
			return sum, errors.Join(runErr, fmt.Errorf("finish run %d: %w", info.ID, err))
		}
		cfg.Observer.RunFinished(sum)
		if sum.NotSent > 0 {
			log.Warn("selected sessions were not sent: the run stopped first; they wait for the next run", "not_sent", sum.NotSent)
		}
		log.Info("run finished", "run_id", info.ID, "status", sum.Status, "selected", sum.Selected,
			"deleted", sum.Deleted, "failed", sum.Failed, "skipped", sum.Skipped,
			"budget_reached", sum.BudgetReached, "duration", sum.Duration.Round(time.Millisecond).String())
		return sum, runErr
	}

	policies, holds, err := r.store.Rules(ctx, info.Cutoff)
	if err != nil {
		return finish(StatusFailed, err)
	}
	if err := policy.CheckThresholds(info.Cutoff, policies); err != nil {
		return finish(StatusFailed, err)
	}
	rules, err := policy.NewSet(policies, holds)
	if err != nil {
		return finish(StatusFailed, fmt.Errorf("policies: %w", err))
	}
	if n, err := r.store.Undated(ctx); err != nil {
		return finish(StatusFailed, err)
	} else if n > 0 {
		t.skip(policy.SkipMalformed, policy.Record{}, policy.Decision{}, n)
		log.Warn("source rows without last_active_at are never selected", "rows", n)
	}

	// stopSelecting ends the selection on a signal or when the run stops sending; sendCtx
	// cancels requests in flight, ShutdownGrace after a signal.
	stopSelecting, cancelSelecting := context.WithCancel(ctx)
	defer cancelSelecting()
	sendCtx, cancelSend := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelSend()
	done := make(chan struct{})
	closeDone := sync.OnceFunc(func() { close(done) })
	defer closeDone()
	go func() {
		select {
		case <-ctx.Done():
			log.Warn("stopping: no new chunks; requests in flight may finish", "grace", cfg.ShutdownGrace)
			timer := time.NewTimer(max(cfg.ShutdownGrace, 0))
			defer timer.Stop()
			select {
			case <-timer.C:
				log.Warn("shutdown grace is over: cancelling requests in flight")
				cancelSend()
			case <-done:
			}
		case <-done:
		}
	}()

	var stopped atomic.Bool
	var fatalOnce sync.Once
	var fatal error
	stop := func(err error) {
		fatalOnce.Do(func() {
			fatal = err
			stopped.Store(true)
			cancelSelecting()
			log.Error("run stops sending", "err", err)
		})
	}

	limit := rate.Inf
	if cfg.Rate > 0 {
		limit = rate.Limit(cfg.Rate)
	}
	limiter := rate.NewLimiter(limit, 1)
	d := &deliverer{
		cfg: cfg, sender: r.sender, store: r.store, limiter: limiter, log: log,
		stopped:     stopped.Load,
		keyRejected: func(a Answer) { stop(fmt.Errorf("%w (HTTP %d)", ErrKeyRejected, a.StatusCode)) },
		dbCtx:       dbCtx,
	}

	// The lock lives on a connection of its own; if that connection goes, so may the lock.
	var watch sync.WaitGroup
	watch.Add(1)
	go func() {
		defer watch.Done()
		tick := time.NewTicker(cfg.LockCheckInterval)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-stopSelecting.Done():
				return
			case <-tick.C:
				if err := lock.Check(sendCtx); err != nil {
					stop(err)
					return
				}
			}
		}
	}()

	go r.logProgress(done, t, began)

	chunks := make(chan Chunk, cfg.Concurrency)
	var budgetReached bool
	var selectErr error
	go func() {
		defer close(chunks)
		ck := newChunker(cfg.ChunkSize, cfg.MaxBuffered)
		send := func(c Chunk) bool {
			select {
			case chunks <- c:
				return true
			case <-stopSelecting.Done():
				return false
			}
		}
		sel := &selection{r: r.store, rules: rules, shard: cfg.Shard, page: cfg.PageSize, budget: cfg.MaxDeletions, tally: t}
		budgetReached, selectErr = sel.walk(stopSelecting, func(rec policy.Record, dec policy.Decision) bool {
			for _, c := range ck.add(rec, dec) {
				if !send(c) {
					return false
				}
			}
			return true
		})
		if stopSelecting.Err() != nil {
			return
		}
		for _, c := range ck.flush() {
			if !send(c) {
				return
			}
		}
	}()

	var workers sync.WaitGroup
	for range cfg.Concurrency {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for c := range chunks {
				if stopped.Load() || ctx.Err() != nil {
					continue // never claimed: these sessions wait for the next run
				}
				r.process(ctx, sendCtx, d, t, info.ID, c, stop)
			}
		}()
	}
	workers.Wait()
	closeDone()
	watch.Wait()

	sum.BudgetReached = budgetReached
	if budgetReached {
		log.Info("deletion budget reached; the rest waits for the next run", "max_deletions", cfg.MaxDeletions)
	}
	switch {
	case fatal != nil:
		return finish(StatusFailed, fatal)
	case ctx.Err() != nil:
		return finish(StatusInterrupted, context.Cause(ctx))
	case selectErr != nil && !errors.Is(selectErr, context.Canceled):
		return finish(StatusFailed, selectErr)
	}
	return finish(StatusSucceeded, nil)
}

// process claims one chunk, sends it and records the outcomes.
func (r *Runner) process(ctx, sendCtx context.Context, d *deliverer, t *tally, runID int64, c Chunk, stop func(error)) {
	// The first request's rate token is taken before the claim, so the claim's hold check and
	// the request are moments apart.
	if err := d.limiter.Wait(sendCtx); err != nil {
		return
	}
	if d.stopped() || ctx.Err() != nil {
		return
	}
	cctx, cancel := d.dbCtx()
	claimed, err := r.store.Claim(cctx, runID, c)
	cancel()
	if err != nil {
		stop(err)
		return
	}
	if n := len(c.Sessions) - len(claimed); n > 0 {
		t.heldAtClaim(c.Sessions[0], policy.Decision{Policy: c.Policy}, int64(n))
	}
	if len(claimed) == 0 {
		return
	}
	outcomes := d.deliver(sendCtx, c.CharacterID, claimed, 0, true)
	rctx, cancel := d.dbCtx()
	defer cancel()
	if err := r.store.Record(rctx, runID, c.CharacterID, outcomes); err != nil {
		confirmed := 0
		for _, o := range outcomes {
			if o.Deleted {
				confirmed++
			}
		}
		r.cfg.Logger.Error("could not record outcomes; those sessions will be sent again by the next run",
			"character_id", c.CharacterID, "confirmed", confirmed, "total", len(outcomes), "err", err)
		stop(err)
		return
	}
	t.outcomes(c.CharacterID, outcomes)
}

// logProgress logs the run's progress every ProgressInterval until done is closed: sessions
// selected so far, done (deleted and failed) and the rate; with an EstimatedTotal, also the
// total and the time left at the rate so far.
func (r *Runner) logProgress(done <-chan struct{}, t *tally, began time.Time) {
	tick := time.NewTicker(r.cfg.ProgressInterval)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-tick.C:
			selected, deleted, failed := t.progress()
			elapsed := time.Since(began).Seconds()
			rate := float64(deleted+failed) / max(elapsed, 0.001)
			attrs := []any{"selected", selected, "done", deleted + failed, "deleted", deleted,
				"failed", failed, "sessions_per_second", rate}
			if r.cfg.EstimatedTotal != nil {
				if total, ok := r.cfg.EstimatedTotal(); ok {
					attrs = append(attrs, "total", total)
					if left := total - deleted - failed; rate > 0 {
						attrs = append(attrs, "time_left", time.Duration(float64(max(left, 0))/rate*float64(time.Second)).Round(time.Second).String())
					}
				}
			}
			r.cfg.Logger.Info("progress", attrs...)
		}
	}
}
