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
		cutoff, err := rd.Now(ctx)
		if err != nil {
			return err
		}
		sum.Cutoff = cutoff
		policies, holds, err := rd.Rules(ctx, cutoff)
		if err != nil {
			return err
		}
		rules, err := policy.NewSet(policies, holds)
		if err != nil {
			return err
		}
		if n, err := rd.Undated(ctx); err != nil {
			return err
		} else if n > 0 {
			t.skip(policy.SkipMalformed, policy.Record{}, policy.Decision{}, n)
		}
		sel := &selection{r: rd, rules: rules, shard: r.cfg.Shard, page: r.cfg.PageSize, budget: r.cfg.MaxDeletions, tally: t}
		sum.BudgetReached, err = sel.walk(ctx, func(policy.Record, policy.Decision) bool { return true })
		return err
	})
	t.fill(sum)
	sum.Duration = time.Since(began)
	sum.DurationSeconds = sum.Duration.Seconds()
	if err != nil {
		sum.Status = StatusFailed
		sum.Error = truncate(err.Error())
		return sum, err
	}
	return sum, nil
}
