package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"
	_ "time/tzdata" // --time-zone works on an image without a zoneinfo database

	"github.com/robfig/cron/v3"

	"github.com/convai-retention/retention/internal/cli"
	"github.com/convai-retention/retention/job"
	"github.com/convai-retention/retention/metrics"
)

// scheduleOptions is the parsed command line of "retention schedule": a run's options and the
// schedule's own.
type scheduleOptions struct {
	run      runOptions
	cron     string
	timeZone string
	listen   string
}

func scheduleFlags(o *scheduleOptions) *flagSet {
	return append(o.run.table(), options{
		{name: "cron", value: &o.cron, def: "",
			help: "when to run (required): exactly 5 fields (minute hour day-of-month month day-of-week; " +
				"a 6th, seconds, field is refused), or @yearly, @monthly, @weekly, @daily, @hourly, @every 6h"},
		{name: "time-zone", value: &o.timeZone, def: "UTC", help: "IANA time zone of --cron, e.g. Europe/Berlin"},
		{name: "listen", value: &o.listen, def: ":9090", help: "address serving /metrics, /healthz and /readyz"},
	}...).flagSet("schedule")
}

// cronParser reads --cron: the five standard fields and the descriptors @yearly, @monthly,
// @weekly, @daily, @hourly and @every <duration>. No seconds field: "* * * * * *" would run every
// second while looking like an ordinary expression.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// cronWant says what --cron takes, for its errors.
const cronWant = "want 5 fields (minute hour day-of-month month day-of-week), or @daily, @hourly, @every 6h"

// parseSchedule checks the expression and the time zone.
func parseSchedule(spec, zone string) (cron.Schedule, *time.Location, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return nil, nil, usagef("schedule: --cron is required, e.g. --cron '0 3 * * *' for 03:00 every day")
	}
	if strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=") {
		return nil, nil, usagef("invalid --cron %q: give the time zone with --time-zone, not in the expression", spec)
	}
	loc, err := time.LoadLocation(zone)
	if err != nil || zone == "" || zone == "Local" {
		return nil, nil, usagef("invalid --time-zone %q: want an IANA name such as UTC or Europe/Berlin", zone)
	}
	if n := len(strings.Fields(spec)); !strings.HasPrefix(spec, "@") && n != 5 {
		return nil, nil, usagef("invalid --cron %q: it has %d fields, want 5 (minute hour day-of-month month day-of-week; "+
			"no seconds field), or @daily, @hourly, @every 6h", spec, n)
	}
	sched, err := cronParser.Parse(spec)
	if err != nil {
		return nil, nil, usagef("invalid --cron %q: %v; %s", spec, err, cronWant)
	}
	if sched.Next(time.Now().In(loc)).IsZero() {
		return nil, nil, usagef("invalid --cron %q: it never fires (no such date in the next five years, e.g. 31 February)", spec)
	}
	return sched, loc, nil
}

func scheduleHelp(w io.Writer) {
	fmt.Fprint(w, "usage: retention schedule --cron EXPR [flags]\n\n"+
		"Runs at each tick of EXPR, never two at once, and serves /metrics, /healthz and /readyz.\n\n")
	usageOf(w, scheduleFlags)
}

// schedule is "retention schedule": a long-lived process that does a run at each tick. It
// ends with exit 0, or 143/130 once stopped by SIGTERM/SIGINT, or the code of an error that
// kept it from starting.
func (a *app) schedule(ctx context.Context, args []string) error {
	o, err := parseOptions(args, a.getenv, scheduleFlags)
	if err != nil {
		return err
	}
	if o.run.dryRun {
		return usagef("schedule: --dry-run makes no sense on a schedule; use retention run --dry-run")
	}
	sched, loc, err := parseSchedule(o.cron, o.timeZone)
	if err != nil {
		return err
	}
	e, err := a.newRunEnv(ctx, o.run)
	if err != nil {
		return err
	}
	defer e.close()

	s := &scheduler{
		schedule: sched,
		spec:     o.cron,
		loc:      loc,
		listen:   o.listen,
		log:      e.log,
		metrics:  e.metrics,
		run: func(ctx context.Context) (*job.Summary, error) {
			sum, err := e.realRun(ctx)
			e.writeSummary(sum)
			return sum, err
		},
		ready: func(ctx context.Context) error {
			if err := e.ready(ctx); err != nil {
				return errors.New(a.redactor().Redact(err.Error()))
			}
			return nil
		},
	}
	if err := s.Run(ctx); err != nil {
		return err
	}
	if a.signal.Load() != nil {
		return cli.Exit(a.signalCode(), nil)
	}
	return nil
}

// scheduler does a run at each tick of a cron schedule, never two at once, and serves the
// metrics and health endpoints, until its context is done.
//
// A tick while the previous run is still going is skipped (cron.SkipIfStillRunning). A tick
// that finds the lock held by another process (a second replica, a manual run) logs it and
// waits for the next tick. A run that fails, the API key rejected included, is logged at error
// and the schedule goes on: the metrics (runs_total, last_success_timestamp_seconds,
// requests_total{answer="auth_rejected"}) are what alerts watch.
type scheduler struct {
	schedule cron.Schedule
	spec     string
	loc      *time.Location
	listen   string
	log      *slog.Logger
	metrics  *metrics.Metrics
	// run does one run; cancelling its context gives it the shutdown of a run.
	run func(ctx context.Context) (*job.Summary, error)
	// ready reports whether a run can start: the database answers, the schema is current.
	ready func(ctx context.Context) error
}

// readyTimeout bounds one readiness check.
const readyTimeout = 5 * time.Second

// serverShutdown bounds the HTTP server's shutdown, once the last run has ended.
const serverShutdown = 5 * time.Second

// Run serves and schedules until ctx is done. Then no tick starts a run, the run in flight
// gets the normal shutdown of a run (it claims nothing more, requests in flight may finish for
// --shutdown-grace, it records and ends interrupted), and the HTTP server stops last. It
// returns an error only when the server cannot listen or stops serving.
func (s *scheduler) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.listen, err)
	}
	srv := &http.Server{Handler: s.mux(), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	s.log.Info("serving metrics and health", "addr", ln.Addr().String())

	// runCtx also ends when the server fails, so the run in flight stops as on a signal.
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	cl := cronLogger{log: s.log, skipped: func() { s.metrics.TickSkipped(metrics.SkipOverlap) }}
	c := cron.New(cron.WithLocation(s.loc), cron.WithLogger(cl),
		cron.WithChain(cron.Recover(cl), cron.SkipIfStillRunning(cl)))
	c.Schedule(s.schedule, cron.FuncJob(func() { s.tick(runCtx) }))
	c.Start()
	s.log.Info("schedule started", "cron", s.spec, "time_zone", s.loc.String(), "next", s.next())

	var serveErr error
	select {
	case <-ctx.Done():
		s.log.Info("stopping: no new runs; the run in flight, if any, ends as on a signal")
	case err := <-served:
		serveErr = fmt.Errorf("serve on %s: %w", s.listen, err)
		s.log.Error("stopping: the HTTP server failed", "err", err)
		cancel(serveErr)
	}
	<-c.Stop().Done()
	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), serverShutdown)
	defer scancel()
	if err := srv.Shutdown(sctx); err != nil && serveErr == nil {
		s.log.Warn("HTTP server shutdown", "err", err)
	}
	s.log.Info("schedule stopped")
	return serveErr
}

// tick does one run and logs how it went. Nothing a run does ends the schedule.
func (s *scheduler) tick(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	s.log.Info("scheduled run starting")
	sum, err := s.run(ctx)
	switch {
	case errors.Is(err, job.ErrLocked):
		s.metrics.TickSkipped(metrics.SkipLocked)
		s.log.Warn("another run holds the lock; waiting for the next tick", "err", err, "next", s.next())
	case errors.Is(err, job.ErrKeyRejected):
		s.log.Error("the API rejected the key; the schedule goes on, and every run fails until the key is fixed "+
			"(restart to read a new key)", "err", err, "next", s.next())
	case sum != nil && sum.Status == job.StatusInterrupted:
		s.log.Warn("scheduled run interrupted", "run_id", sum.RunID, "err", err)
	case err != nil:
		s.log.Error("scheduled run failed; the schedule goes on", "err", err, "next", s.next())
	default:
		s.log.Info("scheduled run done", "run_id", sum.RunID, "status", sum.Status, "next", s.next())
	}
}

// next is the time of the next tick.
func (s *scheduler) next() time.Time {
	return s.schedule.Next(time.Now().In(s.loc))
}

func (s *scheduler) mux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metrics.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		if err := s.ready(ctx); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	return mux
}

// cronLogger passes the cron library's messages to the log: a tick skipped because the
// previous run is still going as a warning (and to skipped), a recovered panic as an error,
// the rest at debug.
type cronLogger struct {
	log     *slog.Logger
	skipped func()
}

func (l cronLogger) Info(msg string, keysAndValues ...any) {
	if msg == "skip" { // cron.SkipIfStillRunning's only message
		l.skipped()
		l.log.Warn("tick skipped: the previous run is still going")
		return
	}
	l.log.Debug("cron: "+msg, keysAndValues...)
}

func (l cronLogger) Error(err error, msg string, keysAndValues ...any) {
	l.log.Error("cron: "+msg, append(keysAndValues, "err", err)...)
}
