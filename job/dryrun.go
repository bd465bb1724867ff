package job

import (
	"context"
	"time"

	"github.com/convai-retention/retention/policy"
)

// DryRun selects what a run would send, through the same selection as Run, in a read-only
// transaction: it makes no request and writes nothing. With withIDs the summary lists every
// selected session ID per character (memory grows with the selection; pair it with
// MaxDeletions for a very large backlog).
func (r *Runner) DryRun(ctx context.Context, source string, withIDs bool) (*Summary, error) {
	began := time.Now()
	t := newTally(withIDs, NopObserver{})
	sum := &Summary{Status: StatusSucceeded, DryRun: true, Source: source, Shard: r.cfg.Shard}
	err := r.store.ReadOnly(ctx, func(rd Reader) error {
		var err error
		var er *erasures
		if sum.Cutoff, sum.BudgetReached, er, err = r.selectAll(ctx, rd, t); err != nil {
			return err
		}
		sum.Erasure = er.summary(sum.Cutoff)
		if _, sum.MemoryRetention, err = readMemoryPolicies(ctx, rd, sum.Cutoff, r.cfg.Shard); err != nil {
			return err
		}
		return warnUnmatchedHolds(ctx, rd, sum, r.cfg.Logger)
	})
	t.fill(sum)
	sum.NotSent = 0 // a dry-run sends nothing by design: nothing was kept from being sent
	sum.Duration = time.Since(began)
	sum.DurationSeconds = sum.Duration.Seconds()
	if err != nil {
		sum.Status = StatusFailed
		sum.Error = truncate(err.Error())
		return sum, err
	}
	return sum, nil
}

// Count returns how many sessions a run would select now. Unlike DryRun it reads in short
// queries outside any transaction, so it can run beside a real run (for its progress) without
// holding a snapshot open; it writes nothing either.
func (r *Runner) Count(ctx context.Context) (int64, error) {
	t := newTally(false, NopObserver{})
	if _, _, _, err := r.selectAll(ctx, r.store, t); err != nil {
		return 0, err
	}
	selected, _, _ := t.progress()
	return selected, nil
}

// selectAll counts into t what a run as of the reader's clock would send: the erasure
// requests' sessions, then the whole selection.
func (r *Runner) selectAll(ctx context.Context, rd Reader, t *tally) (cutoff time.Time, budgetReached bool, er *erasures, err error) {
	cutoff, err = rd.Now(ctx)
	if err != nil {
		return cutoff, false, nil, err
	}
	rules, err := loadRules(ctx, rd, cutoff, t, nil)
	if err != nil {
		return cutoff, false, nil, err
	}
	// A dry-run reads no API: a character's request shows the sessions the source has.
	if er, err = planErasures(ctx, rd, rules, r.cfg.Shard, r.cfg.ChunkSize, nil, nil); err != nil {
		return cutoff, false, nil, err
	}
	er.count(t)
	sel := &selection{r: rd, rules: rules, shard: r.cfg.Shard, page: r.cfg.PageSize, budget: r.cfg.MaxDeletions,
		tally: t, exclude: er.exclude()}
	budgetReached, err = sel.walk(ctx, func(policy.Record, policy.Decision) bool { return true })
	return cutoff, budgetReached, er, err
}

// Due counts, per character, the sessions a run with cut-off at would select from rd: the same
// rules and selection as a run, the Runner's shard, no budget. A plan uses it with a reader
// inside a transaction that changed the policies, to see what the change would make due, and
// with a future cut-off, to see what falls due soon. It writes nothing.
func (r *Runner) Due(ctx context.Context, rd Reader, at time.Time) (map[string]int64, error) {
	t := newTally(false, NopObserver{})
	rules, err := loadRules(ctx, rd, at, t, nil)
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	sel := &selection{r: rd, rules: rules, shard: r.cfg.Shard, page: r.cfg.PageSize, tally: t}
	if _, err := sel.walk(ctx, func(rec policy.Record, _ policy.Decision) bool {
		out[rec.CharacterID]++
		return true
	}); err != nil {
		return nil, err
	}
	return out, nil
}
