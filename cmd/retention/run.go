package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/convai-retention/retention/cmd/retention/exitcode"
	"github.com/convai-retention/retention/internal/cli"
	"github.com/convai-retention/retention/job"
	"github.com/convai-retention/retention/source"
)

// runOptions is the parsed command line of "retention run".
type runOptions struct {
	dryRun   bool
	output   string
	source   string
	logLevel string
	// cfg holds the job's settings as the flags give them; grace holds --shutdown-grace. The
	// job reads them through jobConfig.
	cfg      job.Config
	grace    time.Duration
	apiURL   string
	pushURL  string
	estimate bool
	// allowInsecureURL is --allow-insecure-url.
	allowInsecureURL bool
	// sync holds the flags of the sync a run of an app's source starts with.
	sync syncFlags
}

func runFlags(o *runOptions) *flagSet { return o.table().flagSet("run") }

// table is the flag table of a run: every flag, the variables that set it, its default (the
// job's own), its help, and what the run records of it.
func (o *runOptions) table() options {
	c := &o.cfg
	return slices.Concat(options{
		{name: "dry-run", env: noEnv, value: &o.dryRun, def: false,
			help: "select and print what would be deleted (with --format json, every session ID); send nothing, " +
				"write nothing, need no API key"},
		outputOption(&o.output),
		{name: "source", value: &o.source, def: source.DefaultRelation, setting: "source", record: o.relation,
			help: "SCHEMA.RELATION with columns character_id, session_id, last_active_at; any but retention.sessions " +
				"is first synced into retention.sessions, which the run then reads (see retention sync --help)"},
		logLevelOption(&o.logLevel),
		{name: "chunk-size", value: &c.ChunkSize, def: job.ChunkSizeDefault, nonZero: true, setting: "chunk_size",
			help: "most session IDs in one request"},
		concurrencyOption(c),
	}, apiOptions(c), options{
		{name: "max-deletions", value: &c.MaxDeletions, def: int64(0), setting: "max_deletions",
			help: "most sessions to send this run, oldest first; 0 for no limit"},
		{name: "abort-above", value: &c.AbortAbove, def: int64(0), setting: "abort_above",
			help: "safety cap: if the policies would send more sessions than this, send none of them and exit 6 (erasure requests still go); 0 for off"},
		{name: "abort-above-percent", value: &c.AbortAbovePercent, def: 0.0, setting: "abort_above_percent",
			help: "safety cap: if the run would send more than this percent of the source's sessions (in its shard), " +
				"send none of them and exit 6 (erasure requests still go); 0 for off"},
		{name: "shutdown-grace", value: &o.grace, def: job.ShutdownGraceDefault, setting: "shutdown_grace",
			record: func() any { return max(o.grace, 0) },
			help:   "on SIGTERM/SIGINT, how long requests in flight may finish"},
		{name: "page-size", value: &c.PageSize, def: job.PageSizeDefault, nonZero: true, setting: "page_size",
			help: "source rows read per selection query"},
		{name: "shard-index", env: []string{"RETENTION_SHARD_INDEX", "JOB_COMPLETION_INDEX"}, value: &c.Shard.Index, def: 0,
			setting: "shard_index", help: "this run's shard, 0 to shard-count-1"},
		{name: "shard-count", value: &c.Shard.Count, def: 1, nonZero: true, setting: "shard_count",
			help: "how many shards split the characters"},
		allowInsecureURLOption(&o.allowInsecureURL),
		{name: "pushgateway-url", value: &o.pushURL, def: "",
			help: "push the run's metrics to this Prometheus Pushgateway when it ends (a dry-run pushes nothing)"},
		{name: "estimate", value: &o.estimate, def: true,
			help: "count the sessions to send with a read-only pass beside the run, for the total and time left " +
				"in the progress; false spares the database that pass"},
	}, o.sync.options())
}

// jobConfig is the job's Config for the flags given. The flags hold the values as typed; the one
// translation is --shutdown-grace 0 (or less), "no grace", which the job spells NoShutdownGrace
// because its zero means "the default".
func (o *runOptions) jobConfig() job.Config {
	c := o.cfg
	c.ShutdownGrace = o.grace
	if o.grace <= 0 {
		c.ShutdownGrace = job.NoShutdownGrace
	}
	return c
}

func runHelp(w io.Writer) {
	fmt.Fprint(w, "usage: retention run [flags]\n\n")
	usageOf(w, runFlags)
}

// run is "retention run". A finished run with failures is not an error of the command, but
// still exit 1; an interrupted one exits as the signal says.
func (a *app) run(ctx context.Context, args []string) error {
	o, err := parseOptions(args, a.getenv, runFlags)
	if err != nil {
		return err
	}
	e, err := a.newRunEnv(ctx, *o)
	if err != nil {
		return err
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
		return cli.Exit(a.signalCode(), nil)
	case err != nil:
		return err
	case sum.Status == job.StatusAborted:
		return cli.Exit(exitcode.Aborted, nil)
	case sum.Status == job.StatusPartial:
		return cli.Exit(exitcode.Partial, nil)
	}
	return nil
}

// settings are the effective settings recorded on the run row, from the flag table. Never a
// secret.
func (o *runOptions) settings() map[string]any {
	m := o.table().settings()
	m["api_url"] = safeURL(o.apiURL)
	m["version"] = buildVersion()
	return m
}

// relation is the source as the run records it: folded to lower case when it parses.
func (o *runOptions) relation() any {
	if rel, err := sourceRelation(o.source); err == nil {
		return rel
	}
	return o.source
}

// sourceRelation returns the source name as the run uses it: folded to lower case.
func sourceRelation(name string) (string, error) {
	rel, err := source.ParseRelation(name)
	if err != nil {
		return "", err
	}
	return rel.String(), nil
}
