package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/convai-retention/retention/convai"
	"github.com/convai-retention/retention/internal/secret"
	"github.com/convai-retention/retention/internal/sender"
	"github.com/convai-retention/retention/job"
	"github.com/convai-retention/retention/metrics"
	"github.com/convai-retention/retention/migrations"
	"github.com/convai-retention/retention/source"
)

// backlogTimeout bounds the count of the backlog after a run that reached its budget.
const backlogTimeout = 2 * time.Minute

// runEnv is what runs need once the command line is parsed: the logger, the database, the
// source, the API client and the metrics. "run" makes one for its run, "schedule" one for all
// of its runs.
type runEnv struct {
	o      runOptions
	stdout io.Writer
	log    *slog.Logger
	line   *liveLine // nil unless stderr is a terminal
	pool   *pgxpool.Pool
	store  *source.Store
	rel    source.Relation
	// syncer reads an app's source into retention.sessions, which store reads; nil when the
	// source is retention.sessions itself.
	syncer  *syncer
	client  *convai.Client   // nil for a dry-run
	metrics *metrics.Metrics // nil for a dry-run
	// secrets returns a redactor of every secret known: the last guard on what is recorded.
	secrets func() *secret.Redactor
}

// newRunEnv checks o, reads the environment and connects. Setup is bounded: a database that
// does not answer is a fatal error, not a hang. The caller closes the result.
func (a *app) newRunEnv(ctx context.Context, o runOptions) (*runEnv, error) {
	if o.pushURL != "" {
		if u, err := url.Parse(o.pushURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, usagef("invalid --pushgateway-url %q: want http(s)://host:port of a Pushgateway", safeURL(o.pushURL))
		}
	}
	log, err := newLogger(a.stderr, logLevel(o.logLevel, a.getenv), a.redactor)
	if err != nil {
		return nil, err
	}
	e := &runEnv{o: o, stdout: a.stdout, line: newLiveLine(a.stderr), secrets: a.redactor}
	e.log = slog.New(e.line.handler(log.Handler()))
	if err := o.table().check(); err != nil {
		return nil, err
	}
	e.o.cfg = o.jobConfig()
	e.o.cfg.Logger = e.log
	if err := e.o.cfg.Validate(); err != nil {
		return nil, err
	}
	if e.rel, err = source.ParseRelation(o.source); err != nil {
		return nil, err
	}
	dsn, err := a.databaseURL()
	if err != nil {
		return nil, err
	}
	if !o.dryRun {
		key, err := a.apiKey()
		if err != nil {
			return nil, err
		}
		e.o.apiURL = a.getenv("CONVAI_API_URL")
		e.client, err = a.newClient(e.log, e.o.apiURL, key, o.allowInsecureURL)
		if err != nil {
			return nil, err
		}
		e.metrics = metrics.New(metrics.Config{})
	}

	warnInsecureDatabase(e.log, dsn)
	if e.pool, err = connectCurrent(ctx, dsn, int32(o.cfg.Concurrency)+4); err != nil {
		e.close()
		return nil, err
	}
	read := e.rel
	if syncs(e.rel) {
		if e.syncer, err = a.newSyncer(ctx, e.log, e.pool, e.rel, o.sync); err != nil {
			e.close()
			return nil, err
		}
		read, _ = source.ParseRelation(source.DefaultRelation)
	}
	src, err := inspect(ctx, e.pool, read)
	if err != nil {
		e.close()
		return nil, err
	}
	cfg := source.Config{}
	if !o.dryRun {
		if cfg.Sign, err = a.checkpointSigner(e.log); err != nil {
			e.close()
			return nil, err
		}
	}
	e.store = source.New(e.pool, src, cfg)
	return e, nil
}

func (e *runEnv) close() {
	e.syncer.close()
	if e.pool != nil {
		e.pool.Close()
	}
	if e.client != nil {
		e.client.CloseIdleConnections()
	}
}

// ready reports whether a run can start: the database answers and its schema is current.
func (e *runEnv) ready(ctx context.Context) error {
	if err := e.pool.Ping(ctx); err != nil {
		return fmt.Errorf("database: %w", err)
	}
	_, err := migrations.Check(ctx, e.pool)
	return err
}

// dryRun selects what a real run would send. Over an app's source it rehearses the sync first,
// in a transaction it rolls back, and reads the set as the run would.
func (e *runEnv) dryRun(ctx context.Context) (*job.Summary, error) {
	var store job.Store = e.store
	var rep *job.SyncReport
	if e.syncer != nil {
		store = &source.Rehearsal{Store: e.store, Sync: func(ctx context.Context, tx pgx.Tx) error {
			r, err := e.syncer.Into(ctx, tx)
			if err != nil {
				return err
			}
			rep = &r
			logSync(e.log, rep)
			return nil
		}}
	}
	runner, err := job.New(store, nil, e.o.cfg)
	if err != nil {
		return nil, err
	}
	sum, err := runner.DryRun(ctx, e.rel.String(), e.o.output == "json")
	if sum != nil {
		sum.Sync = rep
	}
	return sum, err
}

// sync brings retention.sessions up to date from the app's source before a real run; a run
// never reads a set its sync could not bring up to date (a session active since would look
// expired).
func (e *runEnv) sync(ctx context.Context) (*job.SyncReport, error) {
	if e.syncer == nil {
		return nil, nil
	}
	rep, err := e.syncer.Sync(ctx, e.pool)
	if err != nil {
		return nil, err
	}
	logSync(e.log, &rep)
	if e.metrics != nil {
		e.metrics.Synced(&rep)
	}
	return &rep, nil
}

// realRun does one real run: it fills the metrics, shows the progress, measures the backlog
// and pushes the metrics when asked to. The summary is returned whenever a run row was written.
func (e *runEnv) realRun(ctx context.Context) (*job.Summary, error) {
	rep, err := e.sync(ctx)
	if err != nil {
		return nil, err
	}
	cfg := e.o.cfg
	var count func(context.Context) (int64, error)
	// A capped run counts what it will send before its first claim: that count is the
	// estimate, and no second pass runs beside the run.
	capped := cfg.AbortAbove > 0 || cfg.AbortAbovePercent > 0
	if e.o.estimate && !capped {
		count = e.counter(cfg.MaxDeletions)
	}
	p := newProgress(e.line, e.log, count, cfg.MaxDeletions)
	defer p.close()
	cfg.Observer = observers{e.metrics, p}
	cfg.EstimatedTotal = p.estimated
	runner, err := job.New(e.store, sender.Convai{Client: e.client}, cfg)
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	sum, err := runner.Run(ctx, job.RunStart{
		Source:   e.store.Relation().String(),
		Settings: redactSettings(e.o.settings(), e.secrets()),
		Host:     host,
		PID:      os.Getpid(),
		Version:  buildVersion(),
	})
	p.close()
	if n := p.total.Load(); sum != nil && n >= 0 {
		sum.EstimatedTotal = &n // what the progress showed as the total, for the summary to compare
	}
	if sum != nil && rep != nil {
		sum.Sync, sum.Source = rep, e.rel.String()
	}
	if errors.Is(err, job.ErrLocked) {
		err = lockedBy(ctx, e.pool, err)
	}
	if sum != nil {
		e.measureBacklog(ctx, sum)
		e.push(ctx)
	}
	return sum, err
}

// counter returns a count of the sessions a run with this budget (0: none) would select now:
// the same selection in short read queries, sending nothing, writing nothing.
func (e *runEnv) counter(budget int64) func(context.Context) (int64, error) {
	return func(ctx context.Context) (int64, error) {
		cfg := e.o.cfg
		cfg.MaxDeletions = budget
		cfg.Logger, cfg.Observer, cfg.EstimatedTotal = nil, nil, nil
		runner, err := job.New(e.store, nil, cfg)
		if err != nil {
			return 0, err
		}
		return runner.Count(ctx)
	}
}

// measureBacklog sets the backlog metric: the sessions still eligible after the run. A run that
// went through its whole selection leaves exactly its failed sessions (as of its cut-off); one
// that reached its budget left the rest unselected, so they are counted with a dry-run. A run
// that failed or was interrupted measures nothing: the last measure stands.
func (e *runEnv) measureBacklog(ctx context.Context, sum *job.Summary) {
	switch {
	case sum.Status != job.StatusSucceeded && sum.Status != job.StatusPartial:
		return
	case !sum.BudgetReached:
		e.metrics.SetBacklog(sum.Failed)
		return
	}
	cctx, cancel := context.WithTimeout(ctx, backlogTimeout)
	defer cancel()
	n, err := e.counter(0)(cctx)
	if err != nil {
		e.log.Warn("could not count the backlog; its metric keeps the last value", "err", err)
		return
	}
	e.metrics.SetBacklog(n)
	e.log.Info("backlog counted", "sessions", n)
}

// push sends the metrics to the Pushgateway, if one is set. A failure is logged and changes
// nothing else: the run is done and recorded, and the exit code says how it went.
func (e *runEnv) push(ctx context.Context) {
	if e.o.pushURL == "" {
		return
	}
	target := safeURL(e.o.pushURL)
	if err := e.metrics.Push(context.WithoutCancel(ctx), e.o.pushURL, e.o.cfg.Shard); err != nil {
		e.log.Error("could not push the metrics; the exit code does not change", "pushgateway", target,
			"err", redact(err.Error(), urlSecrets(e.o.pushURL)...))
		return
	}
	e.log.Info("metrics pushed", "pushgateway", target)
}

// writeSummary prints the summary, if there is one; a failure to print is logged.
func (e *runEnv) writeSummary(sum *job.Summary) {
	if sum == nil {
		return
	}
	sum.Error = e.secrets().Redact(sum.Error)
	if err := writeSummary(e.stdout, e.o.output, sum); err != nil {
		e.log.Error("write summary", "err", err)
	}
}
