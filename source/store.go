// Package source is the PostgreSQL adapter of the retention job: it reads policies, holds and
// the session source, takes the run lock, and writes runs and deletion outcomes. It translates
// driver errors into the errors listed in errors.go and knows nothing about HTTP.
package source

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/sethvargo/go-retry"

	"github.com/convai-retention/retention/job"
	"github.com/convai-retention/retention/policy"
)

// querier is what both a pool and a transaction offer.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Store reads and writes the retention schema and reads one session source. It implements
// job.Store.
type Store struct {
	pool *pgxpool.Pool
	q    querier
	src  *Source
	cfg  Config
	// held maps a run ID to the run lock that run holds: every claim of the run checks that its
	// lock is still held.
	held sync.Map // int64 -> heldLock
}

// heldLock names a run lock and the server process holding it.
type heldLock struct {
	key int32 // shardKey
	pid int32 // pg_backend_pid() of the lock's connection
}

var _ job.Store = (*Store)(nil)

// Config tunes a Store.
type Config struct {
	// WriteRetry is how long a write that failed for a transient reason (a lost connection, a
	// restarting server) is retried before its error is returned. Default 1m.
	WriteRetry time.Duration
}

// New returns a Store reading from src, which Inspect returned.
func New(pool *pgxpool.Pool, src *Source, cfg Config) *Store {
	cfg.WriteRetry = cmp.Or(cfg.WriteRetry, time.Minute)
	return &Store{pool: pool, q: pool, src: src, cfg: cfg}
}

// retrying runs fn until it succeeds, fails for a reason that is not transient, or WriteRetry
// has passed.
func (s *Store) retrying(ctx context.Context, fn func(ctx context.Context) error) error {
	b := retry.NewExponential(100 * time.Millisecond)
	b = retry.WithJitterPercent(20, b)
	b = retry.WithCappedDuration(5*time.Second, b)
	b = retry.WithMaxDuration(s.cfg.WriteRetry, b)
	return retry.Do(ctx, b, func(ctx context.Context) error {
		err := fn(ctx)
		if IsTransient(err) {
			return retry.RetryableError(err)
		}
		return err
	})
}

// Now returns the database's clock.
func (s *Store) Now(ctx context.Context) (time.Time, error) {
	var now time.Time
	if err := s.q.QueryRow(ctx, "SELECT now()").Scan(&now); err != nil {
		return time.Time{}, fmt.Errorf("read database clock: %w", err)
	}
	return now, nil
}

// Rules returns the policies, each with its threshold (cutoff minus max_age, computed in UTC by
// the database so months and days follow PostgreSQL's calendar), and the active holds.
func (s *Store) Rules(ctx context.Context, cutoff time.Time) ([]policy.Policy, []policy.Hold, error) {
	rows, err := s.q.Query(ctx, `
		SELECT id, coalesce(character_id, ''), max_age::text, enabled,
		       (($1::timestamptz AT TIME ZONE 'UTC') - max_age) AT TIME ZONE 'UTC'
		FROM retention.policies ORDER BY id`, cutoff)
	if err != nil {
		return nil, nil, fmt.Errorf("read policies: %w", err)
	}
	policies, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (policy.Policy, error) {
		var p policy.Policy
		err := r.Scan(&p.ID, &p.CharacterID, &p.MaxAge, &p.Enabled, &p.Threshold)
		return p, err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("read policies: %w", err)
	}
	rows, err = s.q.Query(ctx, `
		SELECT character_id, coalesce(session_id, '') FROM retention.holds WHERE released_at IS NULL`)
	if err != nil {
		return nil, nil, fmt.Errorf("read holds: %w", err)
	}
	holds, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (policy.Hold, error) {
		var h policy.Hold
		err := r.Scan(&h.CharacterID, &h.SessionID)
		return h, err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("read holds: %w", err)
	}
	return policies, holds, nil
}

// Page returns the next limit source records last active at or before horizon after the cursor,
// in (last_active_at, character_id, session_id) order, each marked when its session is already
// recorded deleted or the row is superseded by a later row of the same session. A page shorter
// than limit is the last.
func (s *Store) Page(ctx context.Context, after job.Cursor, horizon time.Time, limit int) ([]policy.Record, error) {
	var rows pgx.Rows
	var err error
	if after.Started {
		rows, err = s.q.Query(ctx, s.src.pageSQL, horizon, after.LastActive, after.CharacterID, after.SessionID, limit)
	} else {
		rows, err = s.q.Query(ctx, s.src.firstSQL, horizon, limit)
	}
	if err != nil {
		return nil, fmt.Errorf("select from %s: %w", s.src.rel, err)
	}
	recs := make([]policy.Record, 0, min(limit, 10_000))
	var char, sess *string
	var at *time.Time
	var deleted, superseded bool
	_, err = pgx.ForEachRow(rows, []any{&char, &sess, &at, &deleted, &superseded}, func() error {
		r := policy.Record{Deleted: deleted, Superseded: superseded}
		if char != nil {
			r.CharacterID = *char
		}
		if sess != nil {
			r.SessionID = *sess
		}
		if at != nil {
			r.LastActive = *at
		}
		recs = append(recs, r)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("select from %s: %w", s.src.rel, err)
	}
	return recs, nil
}

// Undated counts source rows without a last_active_at: they never expire, and a run reports
// them as skipped. A strict source cannot have any.
func (s *Store) Undated(ctx context.Context) (int64, error) {
	if s.src.strict {
		return 0, nil
	}
	var n int64
	if err := s.q.QueryRow(ctx, s.src.undatedSQL).Scan(&n); err != nil {
		return 0, fmt.Errorf("count undated rows of %s: %w", s.src.rel, err)
	}
	return n, nil
}

// ReadOnly runs fn against a Store bound to one read-only, repeatable-read transaction, which
// is rolled back: a dry-run cannot write.
func (s *Store) ReadOnly(ctx context.Context, fn func(job.Reader) error) error {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("begin read-only transaction: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read-only: nothing to lose
	return fn(&Store{pool: s.pool, q: tx, src: s.src})
}

// Claim writes the chunk's sessions as pending deletions of the run in one statement, leaving
// out any that an active hold now protects or that is already deleted, and returns the IDs it
// wrote: only those may be sent. The same statement checks that the run lock taken through this
// store is still held by its connection; if it is not (the connection died, and another run may
// have the lock now), nothing is written and the error wraps job.ErrLockLost.
func (s *Store) Claim(ctx context.Context, runID int64, c job.Chunk) ([]string, error) {
	ids := make([]string, len(c.Sessions))
	at := make([]time.Time, len(c.Sessions))
	for i, r := range c.Sessions {
		ids[i], at[i] = r.SessionID, r.LastActive
	}
	var policyChar *string
	if !c.Policy.IsDefault() {
		policyChar = &c.Policy.CharacterID
	}
	lock, _ := s.held.Load(runID)
	hl, _ := lock.(heldLock) // zero when the run took no lock through this store: nothing to check
	var claimed []string
	var stillHeld bool
	err := s.retrying(ctx, func(ctx context.Context) error {
		return s.q.QueryRow(ctx, `
		WITH lock AS (
		    SELECT $8::int = 0 OR EXISTS (
		        SELECT 1 FROM pg_locks
		        WHERE locktype = 'advisory' AND classid = $9::bigint::oid AND objid = $10::bigint::oid
		          AND objsubid = 2 AND granted AND pid = $8
		          AND database = (SELECT oid FROM pg_database WHERE datname = current_database())) AS held
		), ins AS (
		    INSERT INTO retention.deletions
		           (run_id, character_id, session_id, status, last_active_at, policy_id, policy_character_id, max_age)
		    SELECT $1, $2, u.session_id, 'pending', u.last_active_at, $3, $4, $5::interval
		    FROM unnest($6::text[], $7::timestamptz[]) AS u(session_id, last_active_at)
		    WHERE (SELECT held FROM lock)
		      AND NOT EXISTS (
		            SELECT 1 FROM retention.holds h
		            WHERE h.released_at IS NULL AND h.character_id = $2
		              AND (h.session_id IS NULL OR h.session_id = u.session_id))
		      AND NOT EXISTS (
		            SELECT 1 FROM retention.deletions d
		            WHERE d.character_id = $2 AND d.session_id = u.session_id AND d.status = 'deleted')
		    ON CONFLICT (run_id, character_id, session_id) DO NOTHING
		    RETURNING session_id
		)
		SELECT (SELECT held FROM lock), coalesce((SELECT array_agg(session_id) FROM ins), '{}')`,
			runID, c.CharacterID, c.Policy.ID, policyChar, c.Policy.MaxAge, ids, at, hl.pid, lockClass, hl.key,
		).Scan(&stillHeld, &claimed)
	})
	if err == nil && !stillHeld {
		return nil, fmt.Errorf("claim chunk for character %q: %w: another run may hold it now", c.CharacterID, job.ErrLockLost)
	}
	if err != nil {
		return nil, fmt.Errorf("claim chunk of %d for character %q: %w", len(ids), c.CharacterID, err)
	}
	return claimed, nil
}

// Held returns those of ids that an active hold protects now.
func (s *Store) Held(ctx context.Context, characterID string, ids []string) ([]string, error) {
	rows, err := s.q.Query(ctx, `
		SELECT u.session_id FROM unnest($2::text[]) AS u(session_id)
		WHERE EXISTS (
		        SELECT 1 FROM retention.holds h
		        WHERE h.released_at IS NULL AND h.character_id = $1
		          AND (h.session_id IS NULL OR h.session_id = u.session_id))`,
		characterID, ids)
	if err != nil {
		return nil, fmt.Errorf("check holds: %w", err)
	}
	held, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("check holds: %w", err)
	}
	return held, nil
}

// Record turns the run's pending rows of one character into their outcomes, in one statement.
// It reports an error if not every outcome found its pending row.
func (s *Store) Record(ctx context.Context, runID int64, characterID string, outcomes []job.Outcome) error {
	n := len(outcomes)
	ids, statuses, errs := make([]string, n), make([]string, n), make([]string, n)
	attempts, codes := make([]int32, n), make([]int32, n)
	for i, o := range outcomes {
		ids[i], errs[i] = o.SessionID, o.Error
		attempts[i], codes[i] = int32(o.Attempts), int32(o.HTTPStatus)
		statuses[i] = "failed"
		if o.Deleted {
			statuses[i] = "deleted"
		}
	}
	var matched int64
	err := s.retrying(ctx, func(ctx context.Context) error {
		tag, err := s.q.Exec(ctx, `
		UPDATE retention.deletions d
		SET status = u.status, attempts = u.attempts, http_status = nullif(u.http_status, 0),
		    error = nullif(u.error, ''), completed_at = clock_timestamp()
		FROM unnest($3::text[], $4::text[], $5::int[], $6::int[], $7::text[])
		     AS u(session_id, status, attempts, http_status, error)
		WHERE d.run_id = $1 AND d.character_id = $2 AND d.session_id = u.session_id AND d.status = 'pending'`,
			runID, characterID, ids, statuses, attempts, codes, errs)
		matched += tag.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("record %d outcomes for character %q: %w", n, characterID, err)
	}
	if int(matched) != n {
		// An attempt whose answer was lost may have written some rows already: they are no
		// longer pending. Anything else is a protocol breach worth stopping for.
		var final int64
		if err := s.q.QueryRow(ctx, `
			SELECT count(*) FROM retention.deletions
			WHERE run_id = $1 AND character_id = $2 AND session_id = ANY($3) AND status <> 'pending'`,
			runID, characterID, ids).Scan(&final); err != nil {
			return fmt.Errorf("record %d outcomes for character %q: check: %w", n, characterID, err)
		}
		if int(final) != n {
			return fmt.Errorf("record %d outcomes for character %q: only %d pending rows matched", n, characterID, matched)
		}
	}
	return nil
}

// IsTransient reports whether err from this package is worth retrying: a lost connection, a
// server shutting down or restarting, a serialization failure. Constraint violations and
// syntax errors are not.
func IsTransient(err error) bool {
	if err == nil {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code[:2] {
		case "08", "57", "40", "53": // connection, operator intervention (shutdown), rollback, resources
			return true
		}
		return false
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, pgx.ErrNoRows) || errors.Is(err, pgx.ErrTooManyRows) {
		return false
	}
	return true // network errors, dial failures, closed connections
}
