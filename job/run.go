package job

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/convai-retention/retention/internal/tick"
	"github.com/convai-retention/retention/policy"
)

// Runner runs retention runs against one store and one sender.
type Runner struct {
	store  Store
	sender Sender
	cfg    Config
}

// New checks cfg and returns a Runner. sender may be nil for a Runner used only for dry-runs.
// A sender that is also a Lister settles the single sessions the API refuses: see
// deliverer.settleRefused.
func New(store Store, sender Sender, cfg Config) (*Runner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Runner{store: store, sender: sender, cfg: cfg.withDefaults()}, nil
}

// Run does one real run. Cancelling ctx (a signal) stops it from claiming more chunks; requests
// in flight may finish for ShutdownGrace, every answer received is recorded, and the run is
// marked interrupted. The Summary is returned whenever a run row was written, also with an error.
// Errors wrap ErrLocked, ErrKeyRejected or ErrLockLost where those apply; a run the safety cap
// stopped (Config.AbortAbove, AbortAbovePercent) sends nothing its policies selected (only the
// erasure requests' sessions), ends StatusAborted and returns an *AbortError.
func (r *Runner) Run(ctx context.Context, start RunStart) (*Summary, error) {
	if r.sender == nil {
		return nil, errors.New("a real run needs a sender")
	}
	start.Shard = r.cfg.Shard
	rs, info, err := r.store.StartRun(ctx, start)
	if err != nil {
		return nil, err
	}
	defer rs.Close(context.WithoutCancel(ctx)) //nolint:errcheck // closing the connection releases the lock anyway
	ru := newRun(r, rs, info, start.Source)
	defer ru.endWindDown()
	return ru.execute(ctx)
}

// run is one real run: its store handle, its rules, its counts, its limiter and why it stopped.
// Its methods are the phases of a run, in the order execute calls them.
type run struct {
	cfg    Config
	log    *slog.Logger
	sender Sender
	rd     Reader
	rs     RunStore
	info   RunInfo
	sum    *Summary
	tally  *tally
	began  time.Time

	limiter *rate.Limiter
	rules   *policy.Set
	// settle looks refused single sessions up in their character's list, once per character;
	// nil when the sender cannot list.
	settle *settler
	// memory records what the run's own lists (settle, erasure requests) said of long-term
	// memory; nil when the run's store cannot record it.
	memory *runMemory

	// done is closed when the workers have finished: the helpers (shutdown timer, lock watch,
	// progress, sealer) end with it.
	done chan struct{}
	// stopSelecting ends the selection on a signal or when the run stops sending; sendCtx
	// cancels requests in flight, ShutdownGrace after a signal.
	stopSelecting context.Context
	cancelSelect  context.CancelFunc
	sendCtx       context.Context
	cancelSend    context.CancelFunc

	// stopped is set, and fatal kept, by the first stop: the run sends nothing more.
	stopped   atomic.Bool
	fatalOnce sync.Once
	fatal     error
	// unrecorded counts claimed sessions whose outcomes could not be written.
	unrecorded atomic.Int64
	// refusals stops the run when the API refuses whole chunks RefusalLimit times in a row.
	refusals *refusalGuard
	// windDown is the parent of every store call, the final row's included: it ends
	// ShutdownGrace + RequestTimeout + WindDownReserve after the run stops for an error, so a
	// database gone for good cannot keep the process alive.
	windDown    context.Context
	endWindDown context.CancelFunc
	// erasures is the shard's erasure work, sent before the policies' selection.
	erasures *erasures
	// memoryPolicies are the characters whose policy sets memory_max_age (see
	// deleteOldMemories).
	memoryPolicies []MemoryPolicy
	// capped is set when the safety cap stopped the policies' selection: the run sends the
	// erasure requests only, and ends aborted.
	capped *AbortError
}

func newRun(r *Runner, rs RunStore, info RunInfo, source string) *run {
	cfg := r.cfg
	ru := &run{
		cfg: cfg, log: cfg.Logger, sender: r.sender, rd: r.store, rs: rs, info: info, began: time.Now(),
		sum: &Summary{RunID: info.ID, Status: StatusRunning, Cutoff: info.Cutoff, Source: source,
			Shard: cfg.Shard, Recovered: info.Recovered},
		tally:   newTally(false, cfg.Observer),
		limiter: rate.NewLimiter(rateLimit(cfg), 1),
		done:    make(chan struct{}),
	}
	ru.windDown, ru.endWindDown = context.WithCancel(context.Background())
	ru.memory = newRunMemory(rs, r.store.Now, ru.dbCtx, cfg.Logger)
	if l, ok := r.sender.(Lister); ok {
		ru.settle = newSettler(l, rs, cfg, ru.limiter, ru.memory)
	}
	return ru
}

// rateLimit is the run's share of the rate: the rate is the deployment's, so each of
// Shard.Count shards takes Rate/Shard.Count. No rate is no limit.
func rateLimit(cfg Config) rate.Limit {
	if cfg.Rate <= 0 {
		return rate.Inf
	}
	return rate.Limit(cfg.Rate / float64(max(cfg.Shard.Count, 1)))
}

// execute runs the phases: the work (rules, erasure requests, memory policies), the safety cap,
// selection and sending, the work after sending, and finish.
func (ru *run) execute(ctx context.Context) (*Summary, error) {
	ru.logStart()
	if status, err := ru.prepare(ctx); err != nil {
		return ru.finish(status, err)
	}
	if ru.cfg.capSet() {
		if status, err := ru.applyCap(ctx); err != nil {
			return ru.finish(status, err)
		}
	}
	budgetReached, selectErr := ru.sendAll(ctx)
	if ru.fatal == nil {
		ru.afterSending(ctx)
	}
	ru.sum.BudgetReached = budgetReached
	if budgetReached {
		ru.log.Info("deletion budget reached; the rest waits for the next run", "max_deletions", ru.cfg.MaxDeletions)
	}
	switch {
	case ru.fatal != nil:
		return ru.finish(StatusFailed, ru.fatal)
	case ctx.Err() != nil:
		return ru.finish(StatusInterrupted, context.Cause(ctx))
	case selectErr != nil && !errors.Is(selectErr, context.Canceled):
		return ru.finish(StatusFailed, selectErr)
	case ru.capped != nil:
		return ru.finish(StatusAborted, ru.capped)
	}
	return ru.finish(StatusSucceeded, nil)
}

// logStart notes the run's start: the unfinished runs it marked interrupted, its cut-off, source
// and shard.
func (ru *run) logStart() {
	if len(ru.info.Recovered) > 0 {
		ru.log.Warn("marked unfinished runs interrupted; their pending sessions will be sent again", "runs", ru.info.Recovered)
	}
	ru.log.Info("run started", "run_id", ru.info.ID, "cutoff", ru.info.Cutoff, "source", ru.sum.Source,
		"shard_index", ru.cfg.Shard.Index, "shard_count", ru.cfg.Shard.Count)
	ru.cfg.Observer.RunStarted(ru.info)
}

// prepare reads what the run works from: the rules, the holds that match nothing, the end users'
// requests, the erasure requests' work and the memory policies. On an error it returns the
// status the run ends with: interrupted when ctx ended during a read that can be interrupted.
func (ru *run) prepare(ctx context.Context) (Status, error) {
	rules, err := loadRules(ctx, ru.rd, ru.info.Cutoff, ru.tally, ru.log)
	if err != nil {
		return StatusFailed, err
	}
	ru.rules = rules
	if err := warnUnmatchedHolds(ctx, ru.rd, ru.sum, ru.log); err != nil {
		return StatusFailed, err
	}
	for _, step := range []func(context.Context) error{ru.expandEndUsers, ru.planErasureWork, ru.loadMemoryPolicies} {
		if err := step(ctx); err != nil {
			return failedOrInterrupted(ctx, err)
		}
	}
	ru.logErasures()
	return "", nil
}

// failedOrInterrupted is the status and error a run ends with after err: interrupted, with the
// signal's cause, when ctx has ended; failed with err otherwise.
func failedOrInterrupted(ctx context.Context, err error) (Status, error) {
	if ctx.Err() != nil {
		return StatusInterrupted, context.Cause(ctx)
	}
	return StatusFailed, err
}

// planErasureWork plans the erasure requests' work (planErasures), listing their characters at
// Convai when the sender can list and the store can tell which listed sessions it lacks, and
// counts their sessions.
func (ru *run) planErasureWork(ctx context.Context) error {
	var list listMissing
	l, canList := ru.sender.(Lister)
	m, canFind := ru.rd.(MissingFinder)
	if canList && canFind {
		list = convaiMissing(l, m, ru.cfg, ru.limiter, ru.memory)
	}
	e, err := planErasures(ctx, ru.rd, ru.rules, ru.cfg.Shard, ru.cfg.ChunkSize, list, ru.log)
	if err != nil {
		return err
	}
	ru.erasures = e
	e.count(ru.tally)
	return nil
}

// logErasures notes the erasure requests the run sends first, and those that stay open.
func (ru *run) logErasures() {
	if s := ru.erasures.sum; s.Open > 0 {
		ru.log.Info("erasure requests: their sessions are sent first", "open", s.Open, "sessions", s.Sessions,
			"held", s.Held, "blocked", s.Blocked)
	}
	if n := len(ru.erasures.malformed); n > 0 {
		ru.log.Warn("erasure requests ask for sessions whose IDs cannot be sent (blank, control characters, too long): "+
			"those requests stay open", "sessions", n)
	}
	if len(ru.erasures.sum.Blocked) > 0 {
		ru.log.Warn("erasure requests stay open: an active hold protects their sessions", "requests", ru.erasures.sum.Blocked)
	}
}

// applyCap checks the safety cap (checkCap) and notes it. Over the cap, the run sends only the
// erasure requests' sessions (ru.capped); with none of those it ends at once, aborted. An error
// returns the status the run ends with.
func (ru *run) applyCap(ctx context.Context) (Status, error) {
	c, err := ru.checkCap(ctx)
	if ctx.Err() != nil || err != nil {
		return failedOrInterrupted(ctx, err)
	}
	ru.sum.Cap = c
	if o, ok := ru.cfg.Observer.(CapObserver); ok {
		o.CapChecked(*c)
	}
	if !c.Aborted {
		ru.log.Info("safety cap checked", "would_send", c.WouldSend, "limit", c.Limit, "caps", c.Reason(),
			"erasure_sessions", c.ErasureSessions)
		return "", nil
	}
	ru.capped = &AbortError{Cap: *c}
	if len(ru.erasures.work) == 0 {
		ru.log.Error("safety cap: sending nothing", "would_send", c.WouldSend, "limit", c.Limit, "caps", c.Reason())
		return StatusAborted, ru.capped
	}
	ru.log.Error("safety cap: sending only the erasure requests' sessions", "would_send", c.WouldSend,
		"limit", c.Limit, "caps", c.Reason(), "erasure_sessions", c.ErasureSessions)
	return "", nil
}

// sendAll selects and sends: it starts the helpers (shutdown timer, lock watch, sealer,
// progress), hands the selection's chunks to Concurrency workers, and returns once the workers
// and then the helpers have finished, with what the selection returned.
func (ru *run) sendAll(ctx context.Context) (budgetReached bool, selectErr error) {
	ru.stopSelecting, ru.cancelSelect = context.WithCancel(ctx)
	defer ru.cancelSelect()
	ru.refusals = newRefusalGuard(RefusalLimit, ru.stop)
	ru.sendCtx, ru.cancelSend = context.WithCancel(context.WithoutCancel(ctx))
	defer ru.cancelSend()

	var helpers sync.WaitGroup
	helpers.Go(func() { ru.shutdownTimer(ctx) })
	helpers.Go(ru.watchLock)
	helpers.Go(ru.sealEvery)
	helpers.Go(ru.logProgress)

	chunks := make(chan Chunk, ru.cfg.Concurrency)
	go func() {
		defer close(chunks)
		budgetReached, selectErr = ru.selectChunks(chunks)
	}()
	var workers sync.WaitGroup
	for range ru.cfg.Concurrency {
		workers.Go(func() {
			for c := range chunks {
				if ru.stopped.Load() || ctx.Err() != nil {
					continue // never claimed: these sessions wait for the next run
				}
				ru.process(ctx, c)
			}
		})
	}
	workers.Wait()
	close(ru.done)
	helpers.Wait()
	return budgetReached, selectErr
}

// afterSending does the work that follows the sending, in order: completing the erasure
// requests, erasing the end users, deleting old memories. The first error stops the run.
func (ru *run) afterSending(ctx context.Context) {
	cctx, cancel := ru.dbCtx()
	err := ru.erasures.complete(cctx, ru.rs)
	cancel()
	if err == nil {
		err = ru.eraseEndUsers(ctx)
	}
	if err == nil {
		err = ru.deleteOldMemories(ctx)
	}
	if err != nil {
		ru.stop(err)
	}
}

// warnUnmatchedHolds notes, once per run, the active holds that match no session of the source.
func warnUnmatchedHolds(ctx context.Context, rd Reader, sum *Summary, log *slog.Logger) error {
	holds, err := rd.UnmatchedHolds(ctx)
	if err != nil {
		return err
	}
	for _, h := range holds {
		name := h.CharacterID
		if h.SessionID != "" {
			name += "/" + h.SessionID
		}
		sum.UnmatchedHolds = append(sum.UnmatchedHolds, name)
	}
	if len(holds) > 0 && log != nil {
		log.Warn("holds match no session of the source and protect nothing now; check them for typos (spaces, case)",
			"holds", sum.UnmatchedHolds)
	}
	return nil
}

// loadRules reads the policies and holds as of cutoff, checks them and counts the source rows
// that can never be selected. The run, the dry-run and the count share it.
func loadRules(ctx context.Context, rd Reader, cutoff time.Time, t *tally, log *slog.Logger) (*policy.Set, error) {
	policies, holds, err := rd.Rules(ctx, cutoff)
	if err != nil {
		return nil, err
	}
	if err := policy.CheckThresholds(cutoff, policies); err != nil {
		return nil, err
	}
	rules, err := policy.NewSet(policies, holds)
	if err != nil {
		return nil, fmt.Errorf("policies: %w", err)
	}
	n, err := rd.Undated(ctx)
	if err != nil {
		return nil, err
	}
	if n > 0 {
		t.skip(policy.SkipMalformed, policy.Record{}, policy.Decision{}, n)
		if log != nil {
			log.Warn("source rows without a usable last_active_at (none, infinite, or outside years 1-9999) are never selected", "rows", n)
		}
	}
	return rules, nil
}

// stop makes the run send nothing more; the first error given is the run's.
func (ru *run) stop(err error) {
	ru.fatalOnce.Do(func() {
		ru.fatal = err
		ru.stopped.Store(true)
		ru.cancelSelect()
		ru.log.Error("run stops sending", "err", err)
		// Requests in flight may still finish, and their answers be recorded; past the bound
		// every store call is cancelled and the run ends (a run left running is repaired by
		// the next).
		left := max(ru.cfg.ShutdownGrace, 0) + ru.cfg.RequestTimeout + WindDownReserve
		ru.log.Warn("recording what the run can and finishing, within a bound", "within", left.String())
		time.AfterFunc(left, ru.endWindDown)
	})
}

// dbCtx bounds one store call; it is not cancelled by a signal, so answers received during the
// shutdown grace are still recorded, but it ends with the wind-down after a stop (see windDown).
func (ru *run) dbCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(ru.windDown, 2*time.Minute)
}

// shutdownTimer cancels requests in flight ShutdownGrace after ctx is cancelled.
func (ru *run) shutdownTimer(ctx context.Context) {
	select {
	case <-ctx.Done():
	case <-ru.done:
		return
	}
	ru.log.Warn("stopping: no new chunks; requests in flight may finish", "grace", ru.cfg.ShutdownGrace)
	timer := time.NewTimer(max(ru.cfg.ShutdownGrace, 0))
	defer timer.Stop()
	select {
	case <-timer.C:
		ru.log.Warn("shutdown grace is over: cancelling requests in flight")
		ru.cancelSend()
	case <-ru.done:
	}
}

// watchLock checks the run lock every LockCheckInterval: it lives on a connection of its own,
// and if that connection goes, so may the lock.
func (ru *run) watchLock() {
	tick.Every(ru.cfg.LockCheckInterval, ru.done, ru.stopSelecting.Done(), func() bool {
		if err := ru.rs.CheckLock(ru.sendCtx); err != nil {
			ru.stop(err)
			return false
		}
		return true
	})
}

// sealEvery appends the outcomes recorded so far to the log every SealInterval, so the log
// follows the run closely without every record waiting on it. A failure is logged: Finish seals
// whatever is left, and so does the next run.
func (ru *run) sealEvery() {
	tick.Every(ru.cfg.SealInterval, ru.done, nil, func() bool {
		sctx, cancel := ru.dbCtx()
		defer cancel()
		if err := ru.rs.Seal(sctx); err != nil {
			ru.log.Warn("could not seal recorded outcomes yet; the run seals them when it finishes", "err", err)
		}
		return true
	})
}

// selectChunks hands out the erasure requests' chunks, then walks the selection, groups the
// eligible sessions into chunks and hands them to out, until the selection ends or the run stops
// selecting. A run the safety cap stopped hands out the erasure requests' chunks only.
func (ru *run) selectChunks(out chan<- Chunk) (budgetReached bool, err error) {
	ck := newChunker(ru.cfg.ChunkSize, ru.cfg.MaxBuffered)
	send := func(c Chunk) bool {
		select {
		case out <- c:
			return true
		case <-ru.stopSelecting.Done():
			return false
		}
	}
	for _, c := range ru.erasures.chunks {
		if !send(c) {
			return false, nil
		}
	}
	if ru.capped != nil {
		return false, nil
	}
	sel := &selection{r: ru.rd, rules: ru.rules, shard: ru.cfg.Shard, page: ru.cfg.PageSize,
		budget: ru.cfg.MaxDeletions, tally: ru.tally, exclude: ru.erasures.exclude()}
	budgetReached, err = sel.walk(ru.stopSelecting, func(rec policy.Record, dec policy.Decision) bool {
		for _, c := range ck.add(rec, dec) {
			if !send(c) {
				return false
			}
		}
		return true
	})
	if ru.stopSelecting.Err() != nil {
		return budgetReached, err
	}
	for _, c := range ck.flush() {
		if !send(c) {
			break
		}
	}
	return budgetReached, err
}

// process claims one chunk, sends it and records the outcomes.
func (ru *run) process(ctx context.Context, c Chunk) {
	// The first request's rate token is taken before the claim, so the claim's hold check and
	// the request are moments apart.
	if err := ru.limiter.Wait(ru.sendCtx); err != nil {
		return
	}
	if ru.stopped.Load() || ctx.Err() != nil {
		return
	}
	cctx, cancel := ru.dbCtx()
	claim, err := ru.rs.Claim(cctx, c)
	cancel()
	if err != nil {
		ru.stop(err)
		return
	}
	if n := len(c.Sessions) - len(claim.SessionIDs); n > 0 {
		ru.tally.heldAtClaim(c.Sessions[0], c.decision(), int64(n))
	}
	if len(claim.SessionIDs) == 0 {
		return
	}
	d := &deliverer{
		cfg: ru.cfg, sender: ru.sender, store: ru.rs, limiter: ru.limiter, log: ru.log,
		stopped:     ru.stopped.Load,
		keyRejected: func(a Answer) { ru.stop(fmt.Errorf("%w (HTTP %d)", ErrKeyRejected, a.StatusCode)) },
		dbCtx:       ru.dbCtx,
		settle:      ru.settle,
		refusals:    ru.refusals,
		interrupted: ctx.Done(),
	}
	outcomes := inClaimOrder(claim, d.deliver(ru.sendCtx, c.CharacterID, claim.SessionIDs, 0, true))
	rctx, cancel := ru.dbCtx()
	defer cancel()
	if err := ru.rs.Record(rctx, claim, outcomes); err != nil {
		confirmed := 0
		for _, o := range outcomes {
			if o.Deleted {
				confirmed++
			}
		}
		ru.unrecorded.Add(int64(len(outcomes)))
		ru.log.Error("could not record outcomes; those sessions will be sent again by the next run",
			"character_id", c.CharacterID, "confirmed", confirmed, "total", len(outcomes), "err", err)
		ru.stop(err)
		return
	}
	ru.tally.outcomes(c.CharacterID, outcomes)
	if c.Erasure != 0 {
		ru.erasures.done(c.Erasure, c.CharacterID, outcomes)
	}
}

// inClaimOrder returns outcomes ordered as the claim's sessions (bisection changes the order).
func inClaimOrder(c Claim, outcomes []Outcome) []Outcome {
	at := make(map[string]int, len(outcomes))
	for i, o := range outcomes {
		at[o.SessionID] = i
	}
	ordered := make([]Outcome, 0, len(outcomes))
	for _, id := range c.SessionIDs {
		if i, ok := at[id]; ok {
			ordered = append(ordered, outcomes[i])
		}
	}
	return ordered
}

// finish decides the run's final status and counts and writes them. A run that succeeded but
// failed some sessions is partial.
func (ru *run) finish(status Status, runErr error) (*Summary, error) {
	sum := ru.sum
	if runErr != nil {
		sum.Error = truncate(runErr.Error())
	}
	ru.tally.fill(sum)
	if ru.erasures != nil {
		sum.Erasure = ru.erasures.summary(time.Now())
	}
	sum.ListedMemory = ru.memory.summary()
	unrecorded := ru.unrecorded.Load()
	sum.Failed += unrecorded
	sum.NotSent = max(sum.NotSent-unrecorded, 0)
	if status == StatusSucceeded && sum.Failed > 0 {
		status = StatusPartial
	}
	sum.Status = status
	// The budget ended only a run that went through its selection: the row, the log and the
	// summary say the same (Summary.Reported).
	sum.BudgetReached = sum.Reported().BudgetReached
	sum.Duration = time.Since(ru.began)
	sum.DurationSeconds = sum.Duration.Seconds()

	fctx, cancel := context.WithTimeout(ru.windDown, 2*time.Minute)
	defer cancel()
	fin, err := ru.rs.Finish(fctx, RunEnd{
		Status: sum.Status, Selected: sum.Selected, Deleted: sum.Deleted, Failed: sum.Failed,
		Skipped: sum.Skipped, SkippedByReason: sum.SkippedByReason, BudgetReached: sum.BudgetReached, Error: sum.Error,
		Cap: sum.Cap,
	})
	if err != nil {
		// The row was not finished: it stays running until the next run marks it interrupted,
		// and the summary says so rather than the status the row never got.
		err = fmt.Errorf("finish run %d: %w", ru.info.ID, err)
		sum.Status, sum.Error = StatusRunning, err.Error()
		return sum, errors.Join(runErr, err)
	}
	if fin.Closed != unrecorded {
		ru.log.Warn("the store closed a different number of unanswered claims than the run counted",
			"closed", fin.Closed, "counted", unrecorded)
	}
	sum.Checkpoint = &fin.Checkpoint
	ru.cfg.Observer.RunFinished(sum)
	if sum.NotSent > 0 {
		ru.log.Warn("selected sessions were not sent: the run stopped first; they wait for the next run", "not_sent", sum.NotSent)
	}
	ru.log.Info("run finished", "run_id", ru.info.ID, "status", sum.Status, "selected", sum.Selected,
		"deleted", sum.Deleted, "failed", sum.Failed, "skipped", sum.Skipped,
		"budget_reached", sum.BudgetReached, "duration", sum.Duration.Round(time.Millisecond).String(),
		"log_size", fin.Checkpoint.TreeSize, "log_root", fin.Checkpoint.Root, "checkpoint_signed", fin.Checkpoint.Signed)
	return sum, runErr
}

// logProgress logs the run's progress every ProgressInterval until the run is done: sessions
// selected so far, done (deleted and failed) and the rate; with an EstimatedTotal, also the
// total and the time left at the rate so far.
func (ru *run) logProgress() {
	tick.Every(ru.cfg.ProgressInterval, ru.done, nil, func() bool {
		selected, deleted, failed := ru.tally.progress()
		elapsed := time.Since(ru.began).Seconds()
		rate := float64(deleted+failed) / max(elapsed, 0.001)
		attrs := []any{"selected", selected, "done", deleted + failed, "deleted", deleted,
			"failed", failed, "sessions_per_second", rate}
		if ru.cfg.EstimatedTotal != nil {
			if total, ok := ru.cfg.EstimatedTotal(); ok {
				attrs = append(attrs, "total", total)
				if left := total - deleted - failed; rate > 0 {
					attrs = append(attrs, "time_left", time.Duration(float64(max(left, 0))/rate*float64(time.Second)).Round(time.Second).String())
				}
			}
		}
		ru.log.Info("progress", attrs...)
		return true
	})
}
