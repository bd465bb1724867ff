package job

import (
	"context"
	"fmt"
	"math"
	"strings"

	"github.com/convai-retention/retention/policy"
)

// CapCheck is what the safety cap measured before a run's first claim.
type CapCheck struct {
	// WouldSend is how many sessions the run's selection would send (MaxDeletions applied).
	WouldSend int64 `json:"would_send"`
	// SourceSessions is the source's rows within the run's shard; counted only for a percent cap.
	SourceSessions *int64 `json:"source_sessions,omitempty"`
	// Limit is the lowest of the caps set, in sessions.
	Limit int64 `json:"limit"`
	// AbortAbove and AbortAbovePercent are the caps as set (0: off).
	AbortAbove        int64   `json:"abort_above"`
	AbortAbovePercent float64 `json:"abort_above_percent"`
	// Aborted is true when WouldSend is above Limit: the run sent nothing its policies
	// selected.
	Aborted bool `json:"aborted"`
	// ErasureSessions counts the sessions erasure requests ask for: never capped (a person
	// asked), and sent even by an aborted run. WouldSend leaves them out.
	ErasureSessions int64 `json:"erasure_sessions"`
}

// Reason says which limit WouldSend was measured against, for logs and errors.
func (c *CapCheck) Reason() string {
	var parts []string
	if c.AbortAbove > 0 {
		parts = append(parts, fmt.Sprintf("--abort-above %d", c.AbortAbove))
	}
	if c.AbortAbovePercent > 0 && c.SourceSessions != nil {
		parts = append(parts, fmt.Sprintf("--abort-above-percent %g of %d source sessions = %d",
			c.AbortAbovePercent, *c.SourceSessions, percentLimit(c.AbortAbovePercent, *c.SourceSessions)))
	}
	return strings.Join(parts, ", ")
}

// percentLimit is p percent of n sessions, rounded down.
func percentLimit(p float64, n int64) int64 { return int64(math.Floor(p / 100 * float64(n))) }

// capSet reports whether cfg sets a safety cap.
func (c Config) capSet() bool { return c.AbortAbove > 0 || c.AbortAbovePercent > 0 }

// checkCap counts what the run's selection would send, with the run's rules and cut-off, before
// anything is claimed, and the source's size in the run's shard when a percent cap is set. The
// count walks the same selection the run then walks, in short read queries.
func (ru *run) checkCap(ctx context.Context) (*CapCheck, error) {
	c := &CapCheck{AbortAbove: ru.cfg.AbortAbove, AbortAbovePercent: ru.cfg.AbortAbovePercent, Limit: math.MaxInt64}
	sel := &selection{r: ru.rd, rules: ru.rules, shard: ru.cfg.Shard, page: ru.cfg.PageSize,
		budget: ru.cfg.MaxDeletions, tally: newTally(false, NopObserver{}), exclude: ru.erasures.exclude()}
	c.ErasureSessions = ru.erasures.sum.Sessions - ru.erasures.sum.Held
	if _, err := sel.walk(ctx, func(policy.Record, policy.Decision) bool { c.WouldSend++; return true }); err != nil {
		return nil, fmt.Errorf("count for the safety cap: %w", err)
	}
	if c.AbortAbove > 0 {
		c.Limit = c.AbortAbove
	}
	if c.AbortAbovePercent > 0 {
		n, err := ru.rd.SourceSize(ctx, ru.cfg.Shard)
		if err != nil {
			return nil, fmt.Errorf("count the source for the safety cap: %w", err)
		}
		c.SourceSessions = &n
		c.Limit = min(c.Limit, percentLimit(c.AbortAbovePercent, n))
	}
	c.Aborted = c.WouldSend > c.Limit
	return c, nil
}
