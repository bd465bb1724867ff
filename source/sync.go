package source

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/convai-retention/retention/job"
)

// Defaults of SyncOptions.
const (
	// SyncOverlapDefault is how far before the last high-water mark an incremental pass starts
	// reading: a row written by a transaction that committed up to this long after the mark's
	// row is still read.
	SyncOverlapDefault = 10 * time.Minute
	// SyncFullEveryDefault is the longest time between two full passes of an incremental
	// source: only a full pass finds the sessions the source no longer has.
	SyncFullEveryDefault = 24 * time.Hour
)

// SyncOptions tunes a Syncer.
type SyncOptions struct {
	// Full makes the next pass a full one.
	Full bool
	// ChangedColumn names a timestamptz column of the source that is at least the row's last
	// change, so that an incremental pass can read only the rows at or after its last
	// high-water mark (less Overlap). Empty: last_active_at when the source is a table with a
	// btree index that leads with it, else none (every pass is full).
	ChangedColumn string
	// Overlap: default SyncOverlapDefault.
	Overlap time.Duration
	// FullEvery: default SyncFullEveryDefault.
	FullEvery time.Duration
}

// Syncer reads one source, in one streaming pass, into the job's own set of sessions
// (retention.sessions): see migrations/010_sync.sql for what the merge does.
type Syncer struct {
	from    *pgxpool.Pool
	rel     Relation
	opts    SyncOptions
	changed string // the changed column, "" for none
	// endUser is set when the source has an end_user_id column: the sync copies it.
	endUser bool
	readSQL string
}

// NewSyncer checks that rel, in the database of from, has the columns a source needs (see
// Inspect) and, if one is named or found, a timestamptz changed column.
func NewSyncer(ctx context.Context, from *pgxpool.Pool, rel Relation, opts SyncOptions) (*Syncer, error) {
	opts.Overlap = cmp.Or(opts.Overlap, SyncOverlapDefault)
	opts.FullEvery = cmp.Or(opts.FullEvery, SyncFullEveryDefault)
	if opts.Overlap < 0 || opts.FullEvery < 0 {
		return nil, errors.New("sync: the overlap and the full-pass interval must not be negative")
	}
	if _, err := Inspect(ctx, from, rel); err != nil {
		return nil, err
	}
	y := &Syncer{from: from, rel: rel, opts: opts}
	col, err := changedColumn(ctx, from, rel, opts.ChangedColumn)
	if err != nil {
		return nil, err
	}
	y.changed = col
	if y.endUser, err = hasEndUserColumn(ctx, from, rel); err != nil {
		return nil, err
	}
	y.readSQL = readSQL(rel, col, y.endUser)
	return y, nil
}

// Relation returns the source's name.
func (y *Syncer) Relation() Relation { return y.rel }

// ChangedColumn returns the column incremental passes read by, "" when every pass is full.
func (y *Syncer) ChangedColumn() string { return y.changed }

// EndUserColumn reports whether the source has an end_user_id column, which the sync copies
// into the set; without one the set's end users stay as they are (NULL for new sessions).
func (y *Syncer) EndUserColumn() bool { return y.endUser }

// hasEndUserColumn reports whether rel has a column end_user_id, of any type: it is read as
// text, and a value the rules refuse as an ID is taken as none.
func hasEndUserColumn(ctx context.Context, q querier, rel Relation) (bool, error) {
	var ok bool
	err := q.QueryRow(ctx, `
		SELECT EXISTS (
		    SELECT 1 FROM pg_attribute a
		    JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		    WHERE n.nspname = $1 AND c.relname = $2 AND a.attname = 'end_user_id' AND a.attnum > 0 AND NOT a.attisdropped)`,
		rel.Schema, rel.Name).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("inspect source %s: %w", rel, err)
	}
	return ok, nil
}

// changedColumn checks the named column, or finds last_active_at leading a btree index of a
// table.
func changedColumn(ctx context.Context, q querier, rel Relation, named string) (string, error) {
	if named == "" {
		var indexed bool
		err := q.QueryRow(ctx, `
			SELECT EXISTS (
			    SELECT 1 FROM pg_index i
			    JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
			    JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_am am ON am.oid = ic.relam
			    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = i.indkey[0]
			    WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p') AND am.amname = 'btree'
			      AND i.indpred IS NULL AND a.attname = 'last_active_at')`, rel.Schema, rel.Name).Scan(&indexed)
		if err != nil {
			return "", fmt.Errorf("inspect source %s: %w", rel, err)
		}
		if indexed {
			return "last_active_at", nil
		}
		return "", nil
	}
	if len(named) > 63 || !identRE.MatchString(named) {
		return "", &SourceError{Relation: rel.String(), Problem: fmt.Sprintf("invalid changed column %q: want a plain column name", named)}
	}
	var typ string
	err := q.QueryRow(ctx, `
		SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
		JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relname = $2 AND a.attname = $3 AND a.attnum > 0 AND NOT a.attisdropped`,
		rel.Schema, rel.Name, strings.ToLower(named)).Scan(&typ)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", &SourceError{Relation: rel.String(), Problem: fmt.Sprintf("no changed column %s", strings.ToLower(named))}
	}
	if err != nil {
		return "", fmt.Errorf("inspect source %s: %w", rel, err)
	}
	if typ != "timestamp with time zone" {
		return "", &SourceError{Relation: rel.String(), Problem: fmt.Sprintf("changed column %s is %s; want timestamp with time zone", strings.ToLower(named), typ)}
	}
	return strings.ToLower(named), nil
}

// sourceWorkMem is the work_mem of the source's read transaction.
const sourceWorkMem = "64MB"

// inRange is true for a timestamp the job can hold (policy.ValidLastActive): after the first
// instant of year 1, before year 10000 (not infinite).
const inRange = `(%[1]s > '0001-01-01 00:00:00+00' AND %[1]s < '10000-01-01 00:00:00+00')`

// readSQL is the one pass over the source: every row, or with a changed column the rows at or
// after $1 (every row when $1 is NULL: a full pass, which still tracks the high-water mark). A
// timestamp out of range is read as NULL with bad_time set. The end user is the source's
// end_user_id as text when endUser is set, else NULL.
func readSQL(rel Relation, changed string, endUser bool) string {
	at := fmt.Sprintf(inRange, "s.last_active_at")
	eu := "NULL::text"
	if endUser {
		eu = "s.end_user_id::text"
	}
	q := fmt.Sprintf(`
		SELECT s.character_id::text, s.session_id::text,
		       CASE WHEN %[1]s THEN s.last_active_at END,
		       s.last_active_at IS NOT NULL AND NOT %[1]s, %[2]s`, at, eu)
	if changed != "" {
		col := "s." + pgx.Identifier{changed}.Sanitize()
		q += fmt.Sprintf(`,
		       CASE WHEN %s THEN %s END
		FROM %s s WHERE $1::timestamptz IS NULL OR %s >= $1`, fmt.Sprintf(inRange, col), col, rel.quoted(), col)
		return q
	}
	return q + fmt.Sprintf(`, NULL::timestamptz
		FROM %s s WHERE $1::timestamptz IS NULL`, rel.quoted())
}

// Sync runs one sync in its own transaction on pool (the retention database) and commits it.
func (y *Syncer) Sync(ctx context.Context, pool *pgxpool.Pool) (job.SyncReport, error) {
	var rep job.SyncReport
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var err error
		rep, err = y.Into(ctx, tx)
		return err
	})
	return rep, err
}

// Into syncs the source into retention.sessions within tx, a transaction on the retention
// database, and returns what it did; the caller commits it, or rolls it back to rehearse. The
// source is read on a connection of its own, in one statement: its transaction lasts as long
// as the copy into the staging table, never the merge.
func (y *Syncer) Into(ctx context.Context, tx pgx.Tx) (job.SyncReport, error) {
	rep := job.SyncReport{Source: y.rel.String(), ChangedColumn: y.changed}
	var lastFull, lastHigh *time.Time
	var now time.Time
	err := tx.QueryRow(ctx, `
		SELECT clock_timestamp(),
		       (SELECT max(started_at) FROM retention.syncs WHERE source = $1 AND full_pass),
		       (SELECT high_water FROM retention.syncs WHERE source = $1 AND changed_column = $2 AND high_water IS NOT NULL
		        ORDER BY id DESC LIMIT 1)`, rep.Source, y.changed).Scan(&now, &lastFull, &lastHigh)
	if err != nil {
		return rep, fmt.Errorf("sync %s: read the last sync: %w", y.rel, err)
	}
	rep.StartedAt = now
	rep.Full = y.opts.Full || y.changed == "" || lastFull == nil || lastHigh == nil || now.Sub(*lastFull) >= y.opts.FullEvery
	var since *time.Time
	if !rep.Full {
		s := lastHigh.Add(-y.opts.Overlap)
		since, rep.Since = &s, &s
	}

	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE retention_sync_staging (
		character_id text, session_id text, last_active_at timestamptz, bad_time boolean NOT NULL,
		end_user_id text) ON COMMIT DROP`); err != nil {
		return rep, fmt.Errorf("sync %s: create the staging table: %w", y.rel, err)
	}
	high, err := y.copy(ctx, tx, since)
	if err != nil {
		return rep, err
	}
	if high == nil {
		high = lastHigh
	}
	var owner string
	if err := tx.QueryRow(ctx, `SELECT pg_get_userbyid(proowner) FROM pg_proc
		WHERE oid = 'retention.sync_merge(text, boolean, text, timestamptz, timestamptz, timestamptz)'::regprocedure`).Scan(&owner); err != nil {
		return rep, fmt.Errorf("sync %s: %w", y.rel, err)
	}
	if _, err := tx.Exec(ctx, "GRANT SELECT ON pg_temp.retention_sync_staging TO "+pgx.Identifier{owner}.Sanitize()); err != nil {
		return rep, fmt.Errorf("sync %s: grant the staging table to the merge: %w", y.rel, err)
	}
	var changed *string
	if y.changed != "" {
		changed = &y.changed
	}
	err = tx.QueryRow(ctx, `
		SELECT id, finished_at, rows_read, sessions, added, changed, unchanged, already_deleted, undated, malformed,
		       forgotten, returned, high_water
		FROM retention.sync_merge($1, $2, $3, $4, $5, $6)`,
		rep.Source, rep.Full, changed, rep.Since, high, rep.StartedAt).Scan(
		&rep.ID, &rep.FinishedAt, &rep.RowsRead, &rep.Sessions, &rep.Added, &rep.Changed, &rep.Unchanged,
		&rep.AlreadyDeleted, &rep.Undated, &rep.Malformed, &rep.Forgotten, &rep.Returned, &rep.HighWater)
	if err != nil {
		return rep, fmt.Errorf("sync %s: merge: %w", y.rel, err)
	}
	if err := tx.QueryRow(ctx, `SELECT (SELECT count(*) FROM retention.sessions), (SELECT count(*) FROM retention.forgotten_in_set)`).
		Scan(&rep.SetSize, &rep.ForgottenInSet); err != nil {
		return rep, fmt.Errorf("sync %s: count the set: %w", y.rel, err)
	}
	return rep, nil
}

// copy streams the source's rows (at or after since, when set) into the staging table and
// returns the latest changed-column value read.
func (y *Syncer) copy(ctx context.Context, tx pgx.Tx, since *time.Time) (*time.Time, error) {
	// A read-only transaction: the source may be a replica, and the job writes nothing there.
	stx, err := y.from.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, y.readError(err)
	}
	defer stx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read-only: nothing to lose
	// A view that aggregates hashes every session once: give the one pass the memory to do it
	// without spilling (a setting of this transaction only).
	if _, err := stx.Exec(ctx, "SET LOCAL work_mem = '"+sourceWorkMem+"'"); err != nil {
		return nil, y.readError(err)
	}
	rows, err := stx.Query(ctx, y.readSQL, since)
	if err != nil {
		return nil, y.readError(err)
	}
	defer rows.Close()
	src := &sourceRows{rows: rows}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"retention_sync_staging"},
		[]string{"character_id", "session_id", "last_active_at", "bad_time", "end_user_id"}, src); err != nil {
		if src.err != nil {
			return nil, y.readError(src.err)
		}
		return nil, fmt.Errorf("sync %s: stage the source's rows: %w", y.rel, err)
	}
	return src.high, nil
}

// readError is err, from the source's database, as a *ReadError.
func (y *Syncer) readError(err error) error {
	return &ReadError{Relation: y.rel, Login: y.from.Config().ConnConfig.User, Err: err}
}

// sourceRows hands the source's rows to CopyFrom one at a time, keeping the latest changed
// value.
type sourceRows struct {
	rows pgx.Rows
	vals [5]any
	high *time.Time
	err  error
}

func (s *sourceRows) Next() bool {
	if !s.rows.Next() {
		s.err = s.rows.Err()
		return false
	}
	var char, sess, endUser *string
	var at, chg *time.Time
	var bad bool
	if s.err = s.rows.Scan(&char, &sess, &at, &bad, &endUser, &chg); s.err != nil {
		return false
	}
	if chg != nil && (s.high == nil || chg.After(*s.high)) {
		s.high = chg
	}
	s.vals = [5]any{char, sess, at, bad, endUser}
	return true
}

func (s *sourceRows) Values() ([]any, error) { return s.vals[:], nil }
func (s *sourceRows) Err() error             { return s.err }
