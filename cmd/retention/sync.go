package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/convai-retention/retention/job"
	"github.com/convai-retention/retention/source"
)

// syncFlags are the settings of a sync: of `retention sync`, and of the sync every run of a
// source other than retention.sessions starts with.
type syncFlags struct {
	full          bool
	changedColumn string
	overlap       time.Duration
	fullEvery     time.Duration
}

// options are the sync's rows of a flag table.
func (f *syncFlags) options() options {
	return options{
		{name: "full-sync", value: &f.full, def: false, setting: "full_sync",
			help: "read the whole source, not only what changed since the last sync (finds the sessions the app no longer has)"},
		{name: "changed-column", value: &f.changedColumn, def: "", setting: "changed_column",
			help: "timestamptz column of the source that is at least a row's last change, for incremental syncs " +
				"(default: last_active_at when the source is a table with a btree index on it; else every sync is full)"},
		{name: "sync-overlap", value: &f.overlap, def: source.SyncOverlapDefault, nonZero: true, setting: "sync_overlap",
			help: "an incremental sync rereads this far before the last one's newest row, for transactions that committed late"},
		{name: "full-sync-every", value: &f.fullEvery, def: source.SyncFullEveryDefault, nonZero: true, setting: "full_sync_every",
			help: "an incremental source is read whole when its last full sync is older than this"},
	}
}

func (f *syncFlags) syncOptions() source.SyncOptions {
	return source.SyncOptions{Full: f.full, ChangedColumn: f.changedColumn, Overlap: f.overlap, FullEvery: f.fullEvery}
}

// syncs reports whether rel is a source the job syncs into retention.sessions: any but
// retention.sessions itself.
func syncs(rel source.Relation) bool { return rel.String() != source.DefaultRelation }

// sourcePool returns the pool the source is read on: a read-only pool on SOURCE_DATABASE_URL
// (or the file SOURCE_DATABASE_URL_FILE names) when set, else retention, the retention
// database's own. owned says the caller must close it.
func (a *app) sourcePool(ctx context.Context, log *slog.Logger, retention *pgxpool.Pool) (pool *pgxpool.Pool, owned bool, err error) {
	dsn, err := a.dsnVar("SOURCE_DATABASE_URL", &a.vault.srcDSN)
	switch {
	case err != nil:
		return nil, false, err
	case dsn == "":
		return retention, false, nil
	}
	warnInsecureDatabase(log, dsn)
	pool, err = connect(ctx, dsn, 2)
	if err != nil {
		return nil, false, fmt.Errorf("source database: %w", err)
	}
	return pool, true, nil
}

// syncer is one source synced into retention.sessions, and the pool it is read on.
type syncer struct {
	*source.Syncer
	from  *pgxpool.Pool
	owned bool
}

func (y *syncer) close() {
	if y != nil && y.owned {
		y.from.Close()
	}
}

// newSyncer checks rel in its database and returns its syncer.
func (a *app) newSyncer(ctx context.Context, log *slog.Logger, retention *pgxpool.Pool, rel source.Relation, f syncFlags) (*syncer, error) {
	from, owned, err := a.sourcePool(ctx, log, retention)
	if err != nil {
		return nil, err
	}
	setup, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	y, err := source.NewSyncer(setup, from, rel, f.syncOptions())
	if err != nil {
		if owned {
			from.Close()
		}
		return nil, err
	}
	return &syncer{Syncer: y, from: from, owned: owned}, nil
}

// logSync logs what a sync did, and warns when the source lost sessions of the set.
func logSync(log *slog.Logger, rep *job.SyncReport) {
	log.Info("source synced", "source", rep.Source, "full_pass", rep.Full, "rows_read", rep.RowsRead,
		"added", rep.Added, "changed", rep.Changed, "unchanged", rep.Unchanged, "already_deleted", rep.AlreadyDeleted,
		"undated", rep.Undated, "malformed", rep.Malformed, "forgotten", rep.Forgotten, "set_size", rep.SetSize,
		"seconds", rep.FinishedAt.Sub(rep.StartedAt).Seconds())
	if rep.Forgotten > 0 {
		msg := "sessions of the set are no longer in the source: they stay in the set and are deleted when they expire"
		if rep.Sessions == 0 {
			msg = "the source is empty (truncated?): every session of the set stays, and is deleted when it expires, as before"
		}
		log.Warn(msg, "source", rep.Source, "forgotten", rep.Forgotten, "forgotten_in_set", rep.ForgottenInSet)
	}
	if rep.Malformed > 0 || rep.Undated > 0 {
		log.Warn("source rows skipped: malformed rows are never sent, undated sessions never deleted",
			"malformed", rep.Malformed, "undated", rep.Undated)
	}
}

// syncText is a sync's line in a text summary.
func syncText(rep *job.SyncReport) string {
	kind := "full"
	if !rep.Full {
		kind = fmt.Sprintf("incremental by %s since %s", rep.ChangedColumn, rep.Since.UTC().Format(time.RFC3339))
	}
	return fmt.Sprintf("synced %s into retention.sessions (%s, %s): read %d rows; %d added, %d changed, %d unchanged, "+
		"%d already deleted, %d undated, %d malformed; %d newly forgotten by the source, %d returned; the set holds %d (%d forgotten)\n",
		rep.Source, kind, rep.FinishedAt.Sub(rep.StartedAt).Round(time.Millisecond), rep.RowsRead, rep.Added, rep.Changed,
		rep.Unchanged, rep.AlreadyDeleted, rep.Undated, rep.Malformed, rep.Forgotten, rep.Returned, rep.SetSize, rep.ForgottenInSet)
}

// syncOptions are the flags of "retention sync".
type syncOptions struct {
	source   string
	output   string
	logLevel string
	flags    syncFlags
}

func (o *syncOptions) table() options {
	return append(options{
		{name: "source", value: &o.source, def: source.DefaultRelation,
			help: "SCHEMA.RELATION with columns character_id, session_id, last_active_at, read into retention.sessions"},
		outputOption(&o.output),
		logLevelOption(&o.logLevel),
	}, o.flags.options()...)
}

func syncHelp(w io.Writer) {
	fmt.Fprint(w, `usage: retention sync [flags]

Read the source (--source, or RETENTION_SOURCE) once, in one streaming pass, into the job's own
set of sessions, retention.sessions. Every run of such a source syncs first; run this on its own
(a CronJob more frequent than the deletions) to keep the set, the report and plan current. A
session the source no longer has stays in the set, with its last activity, until it is deleted.
The source may live in another database: SOURCE_DATABASE_URL (or SOURCE_DATABASE_URL_FILE),
read-only; a replica will do.

`)
	var o syncOptions
	o.table().flagSet("sync").usage(w)
}

// sync is "retention sync".
func (a *app) sync(ctx context.Context, args []string) error {
	var o syncOptions
	if err := o.table().flagSet("sync").parse(args, a.getenv); err != nil {
		return err
	}
	log, err := newLogger(a.stderr, logLevel(o.logLevel, a.getenv), a.redactor)
	if err != nil {
		return err
	}
	rel, err := source.ParseRelation(o.source)
	if err != nil {
		return err
	}
	if !syncs(rel) {
		return usagef("--source %s is the job's own set: there is nothing to sync; name the app's table or view", rel)
	}
	pool, err := a.connectDatabase(ctx, log, connectCurrent, 2)
	if err != nil {
		return err
	}
	defer pool.Close()
	y, err := a.newSyncer(ctx, log, pool, rel, o.flags)
	if err != nil {
		return err
	}
	defer y.close()
	rep, err := y.Sync(ctx, pool)
	if err != nil {
		return err
	}
	logSync(log, &rep)
	if o.output == "json" {
		return writeJSON(a.stdout, rep)
	}
	_, err = io.WriteString(a.stdout, syncText(&rep))
	return err
}
