// Package source is the PostgreSQL adapter of the retention job: it reads policies, holds and
// the session source, takes the run lock, and writes runs and deletion outcomes. It translates
// driver errors into the errors listed in errors.go and knows nothing about HTTP.
package source

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/sethvargo/go-retry"

	"github.com/convai-retention/retention/internal/pgrows"
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
}

var _ job.Store = (*Store)(nil)

// Config tunes a Store.
type Config struct {
	// WriteRetry is how long a write that failed for a transient reason (a lost connection, a
	// restarting server) is retried before its error is returned. Default 1m.
	WriteRetry time.Duration
	// Sign, if set, signs each run's checkpoint when it finishes.
	Sign Signer
	// LockLease is how long the server keeps a run's lock once the run stops renewing it.
	// Default LockLeaseDefault.
	LockLease time.Duration
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

// Undated counts source rows without a usable last_active_at: NULL, infinite, or outside the
// years 1 to 9999 (policy.ValidLastActive). They never expire, Page leaves them out, and a run
// reports them as skipped (malformed).
func (s *Store) Undated(ctx context.Context) (int64, error) {
	var n int64
	if err := s.q.QueryRow(ctx, s.src.undatedSQL).Scan(&n); err != nil {
		return 0, fmt.Errorf("count undated rows of %s: %w", s.src.rel, err)
	}
	return n, nil
}

// UnmatchedHolds returns the active holds that match no row of the source.
func (s *Store) UnmatchedHolds(ctx context.Context) ([]policy.Hold, error) {
	rows, err := s.q.Query(ctx, s.src.unmatchedSQL)
	if err != nil {
		return nil, fmt.Errorf("check holds against %s: %w", s.src.rel, err)
	}
	holds, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (policy.Hold, error) {
		var h policy.Hold
		err := r.Scan(&h.CharacterID, &h.SessionID)
		return h, err
	})
	if err != nil {
		return nil, fmt.Errorf("check holds against %s: %w", s.src.rel, err)
	}
	return holds, nil
}

// SourceSize counts the source's rows whose character belongs to shard (by policy.Shard, the
// job's own rule), whatever their age or state. One shard counts the whole source; several
// count per character and add up the shard's.
func (s *Store) SourceSize(ctx context.Context, shard job.Shard) (int64, error) {
	if shard.Count <= 1 {
		var n int64
		if err := s.q.QueryRow(ctx, s.src.sizeSQL).Scan(&n); err != nil {
			return 0, fmt.Errorf("count the rows of %s: %w", s.src.rel, err)
		}
		return n, nil
	}
	rows, err := s.q.Query(ctx, s.src.sizeByCharacterSQL)
	if err != nil {
		return 0, fmt.Errorf("count the rows of %s: %w", s.src.rel, err)
	}
	var total, n int64
	var char *string
	_, err = pgx.ForEachRow(rows, []any{&char, &n}, func() error {
		c := ""
		if char != nil {
			c = *char
		}
		if policy.Shard(c, shard.Count) == shard.Index {
			total += n
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("count the rows of %s: %w", s.src.rel, err)
	}
	return total, nil
}

// ReadOnly runs fn against a Store bound to one read-only, repeatable-read transaction, which
// is rolled back: a dry-run cannot write.
func (s *Store) ReadOnly(ctx context.Context, fn func(job.Reader) error) error {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("begin read-only transaction: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read-only: nothing to lose
	return fn(&Store{pool: s.pool, q: tx, src: s.src, cfg: s.cfg})
}

// Held returns those of ids that an active hold protects now.
func (s *Store) Held(ctx context.Context, characterID string, ids []string) ([]string, error) {
	return pgrows.Strings(ctx, s.q, "check holds", `
		SELECT u.session_id FROM unnest($2::text[]) AS u(session_id)
		WHERE EXISTS (
		        SELECT 1 FROM retention.holds h
		        WHERE h.released_at IS NULL AND h.character_id = $1
		          AND (h.session_id IS NULL OR h.session_id = u.session_id))`,
		characterID, ids)
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
