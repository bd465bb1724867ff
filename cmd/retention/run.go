package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/convai-retention/retention/cmd/retention/exitcode"
	"github.com/convai-retention/retention/job"
	"github.com/convai-retention/retention/source"
)

// runOptions is the parsed command line of "retention run".
type runOptions struct {
	dryRun   bool
	output   string
	source   string
	logLevel string
	cfg      job.Config
	apiURL   string
	pushURL  string
	estimate bool
}

func runFlags(o *runOptions) *flagSet { return runFlagsNamed("run", o) }

// runFlagsNamed defines the flags of a run on a flag set called name: "run", or "schedule",
// which adds its own.
func runFlagsNamed(name string, o *runOptions) *flagSet {
	fs := newFlagSet(name)
	c := &o.cfg
	fs.BoolVar(&o.dryRun, "dry-run", false, "select and print what would be deleted; send nothing, write nothing, need no API key")
	fs.StringVar(&o.output, "output", "text", "summary format on stdout: text or json (json lists the session IDs in a dry-run)")
	fs.StringVar(&o.source, "source", source.DefaultRelation, "SCHEMA.RELATION with columns character_id, session_id, last_active_at")
	fs.StringVar(&o.logLevel, "log-level", "", "debug, info, warn or error [$LOG_LEVEL] (default info)")
	fs.IntVar(&c.ChunkSize, "chunk-size", 100, "most session IDs in one request")
	fs.IntVar(&c.Concurrency, "concurrency", 4, "most requests in flight")
	fs.Float64Var(&c.Rate, "rate", 10, "most requests per second across the run; 0 for unlimited")
	fs.DurationVar(&c.BackoffBase, "backoff-base", 500*time.Millisecond, "first retry wait, doubled each try, with jitter")
	fs.DurationVar(&c.BackoffMax, "backoff-max", 30*time.Second, "longest retry wait")
	fs.IntVar(&c.MaxAttempts, "max-attempts", 5, "most tries of one request")
	fs.DurationVar(&c.RequestTimeout, "request-timeout", 30*time.Second, "time limit of each try")
	fs.Int64Var(&c.MaxDeletions, "max-deletions", 0, "most sessions to send this run, oldest first; 0 for no limit")
	fs.DurationVar(&c.ShutdownGrace, "shutdown-grace", 20*time.Second, "on SIGTERM/SIGINT, how long requests in flight may finish")
	fs.IntVar(&c.PageSize, "page-size", 1000, "source rows read per selection query")
	fs.IntVar(&c.Shard.Index, "shard-index", 0, "this run's shard, 0 to shard-count-1")
	fs.IntVar(&c.Shard.Count, "shard-count", 1, "how many shards split the characters")
	fs.StringVar(&o.pushURL, "pushgateway-url", "", "push the run's metrics to this Prometheus Pushgateway when it ends (a dry-run pushes nothing)")
	fs.BoolVar(&o.estimate, "estimate", true, "count the sessions to send with a read-only pass beside the run, for the total and time left "+
		"in the progress; false spares the database that pass")
	for _, name := range []string{"output", "source", "chunk-size", "concurrency", "rate", "backoff-base", "backoff-max",
		"max-attempts", "request-timeout", "max-deletions", "shutdown-grace", "page-size", "shard-count",
		"pushgateway-url", "estimate"} {
		fs.envName(name)
	}
	fs.envName("shard-index", "RETENTION_SHARD_INDEX", "JOB_COMPLETION_INDEX")
	return fs
}

// run is "retention run". It returns the exit code itself: a finished run with failures is
// not an error of the command, but still exit 1.
func (a *app) run(ctx context.Context, args []string) int {
	var o runOptions
	fs := runFlags(&o)
	if err := fs.parse(args, a.getenv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(a.stdout, "usage: retention run [flags]\n\n")
			fs.usage(a.stdout)
			return exitcode.OK
		}
		return a.exit(err)
	}
	e, err := a.newRunEnv(ctx, o)
	if err != nil {
		return a.exit(err)
	}
	defer e.close()

	var sum *job.Summary
	if o.dryRun {
		sum, err = e.dryRun(ctx)
	} else {
		sum, err = e.realRun(ctx)
	}
	e.writeSummary(sum)
	switch {
	case sum != nil && sum.Status == job.StatusInterrupted:
		if err != nil {
			e.log.Warn("run interrupted", "err", err)
		}
		return a.signalCode()
	case err != nil:
		return a.exit(err)
	case sum.Status == job.StatusPartial:
		return exitcode.Partial
	}
	return exitcode.OK
}

// checkZeros refuses 0 for the flags where zero means nothing useful. The job's Config reads
// a zero as "the default", which must not happen silently to a value an operator typed.
func (o *runOptions) checkZeros() error {
	c := o.cfg
	for _, f := range []struct {
		name string
		zero bool
	}{
		{"chunk-size", c.ChunkSize == 0}, {"concurrency", c.Concurrency == 0}, {"max-attempts", c.MaxAttempts == 0},
		{"page-size", c.PageSize == 0}, {"shard-count", c.Shard.Count == 0}, {"backoff-base", c.BackoffBase == 0},
		{"backoff-max", c.BackoffMax == 0}, {"request-timeout", c.RequestTimeout == 0},
	} {
		if f.zero {
			return usagef("invalid --%s 0: want a positive value", f.name)
		}
	}
	return nil
}

// settings are the effective settings recorded on the run row. Never a secret.
func (o *runOptions) settings() map[string]any {
	c := o.cfg.WithDefaults()
	source := o.source
	if rel, err := sourceRelation(o.source); err == nil {
		source = rel
	}
	return map[string]any{
		"source":          source,
		"api_url":         safeURL(o.apiURL),
		"chunk_size":      c.ChunkSize,
		"concurrency":     c.Concurrency,
		"rate":            c.Rate,
		"backoff_base":    c.BackoffBase.String(),
		"backoff_max":     c.BackoffMax.String(),
		"max_attempts":    c.MaxAttempts,
		"request_timeout": c.RequestTimeout.String(),
		"max_deletions":   c.MaxDeletions,
		"shutdown_grace":  max(c.ShutdownGrace, 0).String(),
		"page_size":       c.PageSize,
		"shard_index":     c.Shard.Index,
		"shard_count":     c.Shard.Count,
		"version":         buildVersion(),
	}
}

// sourceRelation returns the source name as the run uses it: folded to lower case.
func sourceRelation(name string) (string, error) {
	rel, err := source.ParseRelation(name)
	if err != nil {
		return "", err
	}
	return rel.String(), nil
}
