package job

import (
	"context"
	"fmt"

	"github.com/convai-retention/retention/policy"
)

// selection walks the source oldest first and applies the rules to each record. The real run
// and the dry-run share it, so a dry-run shows exactly what a run would send.
type selection struct {
	r      Reader
	rules  *policy.Set
	shard  Shard
	page   int
	budget int64
	tally  *tally
	// exclude, if set, names sessions the walk leaves alone and does not count: a run's
	// erasure requests send them.
	exclude func(characterID, sessionID string) bool
}

// walk calls emit for each eligible record, oldest first, until the source is exhausted, the
// budget is reached (budgetReached is then true), emit returns false, or ctx is done.
func (s *selection) walk(ctx context.Context, emit func(policy.Record, policy.Decision) bool) (budgetReached bool, err error) {
	horizon, ok := s.rules.Horizon()
	if !ok {
		return false, nil // no policy can delete anything
	}
	var cur Cursor
	var prev policy.Record
	var emitted int64
	for {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		recs, err := s.r.Page(ctx, cur, horizon, s.page)
		if err != nil {
			return false, fmt.Errorf("select page: %w", err)
		}
		for _, r := range recs {
			dup := cur.Started && r.CharacterID == prev.CharacterID && r.SessionID == prev.SessionID
			prev = r
			cur = Cursor{Started: true, LastActive: r.LastActive, CharacterID: r.CharacterID, SessionID: r.SessionID}
			if policy.Check(r) == policy.SkipNone && policy.Shard(r.CharacterID, s.shard.Count) != s.shard.Index {
				continue // another shard's
			}
			if s.exclude != nil && s.exclude(r.CharacterID, r.SessionID) {
				continue // an erasure request's
			}
			v := s.rules.Judge(r)
			switch {
			case v.Skip != policy.SkipNone:
				s.tally.skip(v.Skip, r, v.Decision, 1)
				continue
			case !v.Eligible:
				continue
			case dup:
				s.tally.skip(policy.SkipDuplicate, r, v.Decision, 1)
				continue
			}
			if s.budget > 0 && emitted >= s.budget {
				return true, nil
			}
			emitted++
			s.tally.select_(r, v.Decision)
			if !emit(r, v.Decision) {
				return false, nil
			}
		}
		if len(recs) < s.page {
			return false, nil
		}
	}
}
