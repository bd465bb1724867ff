package job

import (
	"context"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// DeliverFunc sends one claimed chunk and returns its outcomes.
type DeliverFunc func(ctx context.Context, characterID string, ids []string) []Outcome

// NewTestDeliverer returns the deliverer of a run as Run is to wire it: with the refusal guard
// (stop is called with its error, and the deliverer stops sending) and interrupted, closed
// when the run is told to stop. For the tests of send.go and refusals.go.
func NewTestDeliverer(store holdChecker, sender Sender, cfg Config, interrupted <-chan struct{}, stop func(error)) DeliverFunc {
	cfg = cfg.withDefaults()
	var stopped atomic.Bool
	d := &deliverer{
		cfg: cfg, sender: sender, store: store, limiter: rate.NewLimiter(rate.Inf, 1), log: cfg.Logger,
		stopped:     stopped.Load,
		keyRejected: func(Answer) { stopped.Store(true) },
		dbCtx: func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), time.Minute)
		},
		refusals: newRefusalGuard(RefusalLimit, func(err error) {
			stopped.Store(true)
			stop(err)
		}),
		interrupted: interrupted,
	}
	return func(ctx context.Context, characterID string, ids []string) []Outcome {
		return d.deliver(ctx, characterID, ids, 0, true)
	}
}

// RateLimit is the requests per second a run with cfg may start (rateLimit).
func RateLimit(cfg Config) float64 { return float64(rateLimit(cfg.withDefaults())) }

// NewTestSettler returns a run's settler: absent looks a refused session up in its character's
// list, read once. With rec, what each list says of long-term memory is recorded through it, as
// a run does through its store; now is the database's clock.
func NewTestSettler(l Lister, live LiveChecker, rec MemoryRecorder, now func(context.Context) (time.Time, error),
	cfg Config) func(ctx context.Context, characterID, sessionID string) (bool, MemoryFlag, error) {
	var m *runMemory
	if rec != nil {
		m = &runMemory{rec: rec, now: now, db: func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), time.Minute)
		}}
	}
	return newSettler(l, live, cfg.withDefaults(), rate.NewLimiter(rate.Inf, 1), m).absent
}
