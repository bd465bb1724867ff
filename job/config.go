// Package job drives a retention run: it selects expired sessions through the store, groups them
// into per-character chunks, sends them through a Sender with rate limiting, retries, backoff and
// bisection, and records every outcome. It declares the small interfaces it needs (Store, Sender)
// and imports no adapter.
package job

import (
	"cmp"
	"fmt"
	"log/slog"
	"math"
	"time"
)

// The defaults of Config, each in one place: the job fills a zero field with its default, and
// the command line's flags, its help and the settings recorded on a run read the same constants.
const (
	ChunkSizeDefault         = 100
	ConcurrencyDefault       = 4
	RateDefault              = 10.0 // requests per second; see Config.Rate
	BackoffBaseDefault       = 500 * time.Millisecond
	BackoffMaxDefault        = 30 * time.Second
	MaxAttemptsDefault       = 5
	RequestTimeoutDefault    = 30 * time.Second
	MaxRetryAfterDefault     = 5 * time.Minute
	ShutdownGraceDefault     = 20 * time.Second
	PageSizeDefault          = 1000
	MaxBufferedDefault       = 50_000
	LockCheckIntervalDefault = 10 * time.Second
	// SealIntervalDefault is how often a run appends its recorded outcomes to the log.
	SealIntervalDefault     = time.Second
	ProgressIntervalDefault = 10 * time.Second
	// WindDownReserve bounds a run that stopped for an error (a lost lock, a store that fails,
	// a rejected key): its remaining store calls, the final row's included, end within
	// ShutdownGrace + RequestTimeout + WindDownReserve of the stop. Often the error is a lost
	// database; without a bound, a connection cut for good would keep the process alive for as
	// long as each store call's own limit, one after another.
	WindDownReserve = 15 * time.Second
	// MemoryConfirmWithinDefault is how long a run waits, after a memory delete-all is accepted,
	// for the list to show the end user's memories gone before it leaves the erasure pending
	// for the next run; MemoryPollDefault is its first wait between two lists (doubled each
	// time, capped at BackoffMax).
	MemoryConfirmWithinDefault = 30 * time.Second
	MemoryPollDefault          = time.Second
)

// NoShutdownGrace is a ShutdownGrace that cancels requests in flight as soon as a run is told to
// stop (a zero ShutdownGrace takes the default).
const NoShutdownGrace time.Duration = -1

// Config tunes a run. Zero fields take the defaults named on each.
type Config struct {
	// ChunkSize is the most session IDs in one request. Default ChunkSizeDefault.
	ChunkSize int
	// Concurrency is the most requests in flight. Default ConcurrencyDefault.
	Concurrency int
	// Rate is the most requests per second across the deployment: a run that is one of
	// Shard.Count shards takes Rate/Shard.Count, so the shards together send at Rate. Unlike the other fields, 0 means
	// unlimited, not the default: a caller of the package is never throttled unasked. The
	// command line runs at RateDefault unless told otherwise. A negative value is an error.
	Rate float64
	// BackoffBase is the first retry wait, doubled each try, with jitter. Default BackoffBaseDefault.
	BackoffBase time.Duration
	// BackoffMax caps one retry wait. Default BackoffMaxDefault.
	BackoffMax time.Duration
	// MaxAttempts is the most tries of one request. Default MaxAttemptsDefault.
	MaxAttempts int
	// RequestTimeout bounds each try. Default RequestTimeoutDefault.
	RequestTimeout time.Duration
	// MaxRetryAfter caps how long a Retry-After header can make a chunk wait. Default
	// MaxRetryAfterDefault.
	MaxRetryAfter time.Duration
	// MaxDeletions is the most sessions sent in this run, oldest first; 0 means no limit.
	MaxDeletions int64
	// AbortAbove is the safety cap in sessions: a run whose selection would send more (after
	// MaxDeletions) sends none of it and ends aborted, with an *AbortError; erasure requests'
	// sessions are never counted or capped. 0 means off.
	AbortAbove int64
	// AbortAbovePercent is the safety cap as a percent of the source's sessions within the run's
	// shard, 0 to 100: a run whose selection would send more sends none of it and ends aborted.
	// 0 means off.
	AbortAbovePercent float64
	// ShutdownGrace is how long in-flight requests may finish after the run is told to stop,
	// before they are cancelled. Default ShutdownGraceDefault; NoShutdownGrace (or any negative
	// value) means no grace at all.
	ShutdownGrace time.Duration
	// PageSize is the most source rows read per selection query. Default PageSizeDefault.
	PageSize int
	// MaxBuffered is the most selected sessions held while chunks fill up; past it the chunk
	// that started filling first is sent short. Default MaxBufferedDefault.
	MaxBuffered int
	// LockCheckInterval is how often the run lock's connection is checked. Default
	// LockCheckIntervalDefault.
	LockCheckInterval time.Duration
	// SealInterval is how often the run appends the outcomes recorded so far to the
	// tamper-evident log; the run's finish seals the rest. Default SealIntervalDefault.
	SealInterval time.Duration
	// Shard is the part of the characters this run owns. Default: all of them.
	Shard Shard
	// Logger receives progress and warnings. Default: discard.
	Logger *slog.Logger
	// Observer is told what the run does, for metrics. Default: NopObserver.
	Observer Observer
	// ProgressInterval is how often a real run logs its progress. Default
	// ProgressIntervalDefault.
	ProgressInterval time.Duration
	// EstimatedTotal, if set, estimates how many sessions the run will have done (deleted or
	// failed) in all, ok false while it has no estimate; the progress log then adds the total and
	// the time left. It must return quickly. Default: none.
	EstimatedTotal func() (total int64, ok bool)
	// MemoryConfirmWithin bounds the wait for a memory delete-all to show in the list. Default
	// MemoryConfirmWithinDefault.
	MemoryConfirmWithin time.Duration
	// MemoryPoll is the first wait between two lists of a memory being erased. Default
	// MemoryPollDefault.
	MemoryPoll time.Duration
}

// WithDefaults returns c with its zero fields filled with their defaults: the settings a run
// will use.
func (c Config) WithDefaults() Config { return c.withDefaults() }

func (c Config) withDefaults() Config {
	c.ChunkSize = cmp.Or(c.ChunkSize, ChunkSizeDefault)
	c.Concurrency = cmp.Or(c.Concurrency, ConcurrencyDefault)
	c.BackoffBase = cmp.Or(c.BackoffBase, BackoffBaseDefault)
	c.BackoffMax = cmp.Or(c.BackoffMax, BackoffMaxDefault)
	c.MaxAttempts = cmp.Or(c.MaxAttempts, MaxAttemptsDefault)
	c.RequestTimeout = cmp.Or(c.RequestTimeout, RequestTimeoutDefault)
	c.MaxRetryAfter = cmp.Or(c.MaxRetryAfter, MaxRetryAfterDefault)
	c.ShutdownGrace = cmp.Or(c.ShutdownGrace, ShutdownGraceDefault)
	c.PageSize = cmp.Or(c.PageSize, PageSizeDefault)
	c.MaxBuffered = cmp.Or(c.MaxBuffered, MaxBufferedDefault)
	c.LockCheckInterval = cmp.Or(c.LockCheckInterval, LockCheckIntervalDefault)
	c.SealInterval = cmp.Or(c.SealInterval, SealIntervalDefault)
	c.Shard.Count = cmp.Or(c.Shard.Count, 1)
	c.ProgressInterval = cmp.Or(c.ProgressInterval, ProgressIntervalDefault)
	c.MemoryConfirmWithin = cmp.Or(c.MemoryConfirmWithin, MemoryConfirmWithinDefault)
	c.MemoryPoll = cmp.Or(c.MemoryPoll, MemoryPollDefault)
	if c.Observer == nil {
		c.Observer = NopObserver{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports the first setting out of range, naming it.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.ChunkSize < 1 || c.ChunkSize > 10_000:
		return &ConfigError{Field: "chunk-size", Value: fmt.Sprint(c.ChunkSize), Want: "1 to 10000"}
	case c.Concurrency < 1 || c.Concurrency > 256:
		return &ConfigError{Field: "concurrency", Value: fmt.Sprint(c.Concurrency), Want: "1 to 256"}
	case math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0) || c.Rate < 0:
		return &ConfigError{Field: "rate", Value: fmt.Sprint(c.Rate), Want: "requests per second, 0 for unlimited"}
	case c.BackoffBase < time.Millisecond:
		return &ConfigError{Field: "backoff-base", Value: c.BackoffBase.String(), Want: "at least 1ms"}
	case c.BackoffMax < c.BackoffBase:
		return &ConfigError{Field: "backoff-max", Value: c.BackoffMax.String(), Want: "at least backoff-base (" + c.BackoffBase.String() + ")"}
	case c.MaxAttempts < 1 || c.MaxAttempts > 100:
		return &ConfigError{Field: "max-attempts", Value: fmt.Sprint(c.MaxAttempts), Want: "1 to 100"}
	case c.RequestTimeout < time.Millisecond:
		return &ConfigError{Field: "request-timeout", Value: c.RequestTimeout.String(), Want: "at least 1ms"}
	case c.MaxDeletions < 0:
		return &ConfigError{Field: "max-deletions", Value: fmt.Sprint(c.MaxDeletions), Want: "0 (no limit) or more"}
	case c.AbortAbove < 0:
		return &ConfigError{Field: "abort-above", Value: fmt.Sprint(c.AbortAbove), Want: "0 (off) or more sessions"}
	case math.IsNaN(c.AbortAbovePercent) || c.AbortAbovePercent < 0 || c.AbortAbovePercent > 100:
		return &ConfigError{Field: "abort-above-percent", Value: fmt.Sprint(c.AbortAbovePercent), Want: "0 (off) to 100"}
	case c.PageSize < 1 || c.PageSize > 100_000:
		return &ConfigError{Field: "page-size", Value: fmt.Sprint(c.PageSize), Want: "1 to 100000"}
	case c.MaxBuffered < 1:
		return &ConfigError{Field: "max-buffered", Value: fmt.Sprint(c.MaxBuffered), Want: "at least 1"}
	case c.Shard.Count < 1 || c.Shard.Count > 1024:
		return &ConfigError{Field: "shard-count", Value: fmt.Sprint(c.Shard.Count), Want: "1 to 1024"}
	case c.Shard.Index < 0 || c.Shard.Index >= c.Shard.Count:
		return &ConfigError{Field: "shard-index", Value: fmt.Sprint(c.Shard.Index), Want: fmt.Sprintf("0 to %d (shard-count minus one)", c.Shard.Count-1)}
	}
	return nil
}
