package source

import (
	"cmp"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/convai-retention/retention/job"
)

// lockLostCode is the SQLSTATE the schema's functions raise when a run's lock is no longer
// held by the server session that took it.
const lockLostCode = "RL001"

// lockTimeoutCode is the SQLSTATE of a lock wait that ran out (retention.seal waits 15 s).
const lockTimeoutCode = "55P03"

// layoutCode is the SQLSTATE start_run raises when a run of another shard layout holds its lock.
const layoutCode = "RL002"

// Signer signs a run's checkpoint: the tree size and root of the log when the run finished. It
// returns the signed note to store and write out, or "" when it has no key.
type Signer func(ctx context.Context, runID int64, size int64, root []byte) (string, error)

// Run is one running run's handle: its lock, and its credentials. It implements job.RunStore;
// every write goes through the schema's functions, which check the credentials (and, for a
// claim, the lock) in the same statement.
type Run struct {
	s     *Store
	lock  *runLock
	id    int64
	token string
}

var _ job.RunStore = (*Run)(nil)

// StartRun takes the run lock of start.Shard on a connection of its own (see runLock), then
// starts the run on the pool, naming the server process that holds the lock: the database
// checks that it does, marks dead runs interrupted and hands back the run's token. It fails with
// an error wrapping job.ErrLocked when another run holds the lock, or when runs with another
// shard count are in progress (their shards would overlap this one's).
func (s *Store) StartRun(ctx context.Context, start job.RunStart) (job.RunStore, job.RunInfo, error) {
	lock, err := s.takeLock(ctx, start.Shard, cmp.Or(s.cfg.LockLease, LockLeaseDefault))
	if err != nil {
		return nil, job.RunInfo{}, err
	}
	settings, err := json.Marshal(start.Settings)
	if err != nil {
		lock.release(ctx) //nolint:errcheck // the lock goes with the connection anyway
		return nil, job.RunInfo{}, fmt.Errorf("encode settings: %w", err)
	}
	var info job.RunInfo
	var token string
	err = s.q.QueryRow(ctx, `SELECT run_id, cutoff, token, recovered FROM retention.start_run($1, $2, $3, $4, $5, $6, $7, $8)`,
		start.Shard.Index, start.Shard.Count, start.Source, settings, start.Host, start.PID, start.Version, lock.pid,
	).Scan(&info.ID, &info.Cutoff, &token, &info.Recovered)
	if err != nil {
		lock.release(ctx) //nolint:errcheck // the lock goes with the connection anyway
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == layoutCode {
			return nil, job.RunInfo{}, fmt.Errorf("%w: %s", job.ErrLocked, pgErr.Message)
		}
		return nil, job.RunInfo{}, fmt.Errorf("start run: %w", err)
	}
	if len(info.Recovered) == 0 {
		info.Recovered = nil
	}
	return &Run{s: s, lock: lock, id: info.ID, token: token}, info, nil
}

// ID returns the run's ID.
func (r *Run) ID() int64 { return r.id }

// CheckLock makes a round trip in the lock's transaction, which also renews its lease.
func (r *Run) CheckLock(ctx context.Context) error { return r.lock.check(ctx) }

// Close releases the run lock. It is safe to call more than once.
func (r *Run) Close(ctx context.Context) error { return r.lock.release(ctx) }

// lockLost translates the database's "lock no longer held" into job.ErrLockLost.
func lockLost(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == lockLostCode {
		return fmt.Errorf("%w: %s", job.ErrLockLost, pgErr.Message)
	}
	return err
}

// Claim writes the chunk's sessions as the run's claim in one call of retention.claim, which
// checks the run's credentials and lock, and leaves out any session an active hold now protects
// or that is already recorded deleted. Only the IDs it returns may be sent.
func (r *Run) Claim(ctx context.Context, c job.Chunk) (job.Claim, error) {
	if c.Erasure != 0 {
		return r.claimErasure(ctx, c)
	}
	ids := make([]string, len(c.Sessions))
	at := make([]time.Time, len(c.Sessions))
	for i, rec := range c.Sessions {
		ids[i], at[i] = rec.SessionID, rec.LastActive
	}
	var policyChar *string
	if !c.Policy.IsDefault() {
		policyChar = &c.Policy.CharacterID
	}
	claim := job.Claim{CharacterID: c.CharacterID}
	err := r.s.retrying(ctx, func(ctx context.Context) error {
		return r.s.q.QueryRow(ctx, `SELECT claim_id, session_ids FROM retention.claim($1, $2, $3, $4, $5, $6::interval, $7, $8)`,
			r.id, r.token, c.CharacterID, c.Policy.ID, policyChar, c.Policy.MaxAge, ids, at,
		).Scan(&claim.ID, &claim.SessionIDs)
	})
	if err != nil {
		return job.Claim{}, fmt.Errorf("claim chunk of %d for character %q: %w", len(ids), c.CharacterID, lockLost(err))
	}
	return claim, nil
}

// Held returns those of ids that an active hold protects now.
func (r *Run) Held(ctx context.Context, characterID string, ids []string) ([]string, error) {
	return r.s.Held(ctx, characterID, ids)
}

// Record writes the claim's outcomes, one per claimed session in the claim's order, in one call
// of retention.record. A retry after a lost commit finds the claim recorded and changes nothing.
func (r *Run) Record(ctx context.Context, c job.Claim, outcomes []job.Outcome) error {
	n := len(outcomes)
	if n != len(c.SessionIDs) {
		return fmt.Errorf("record claim %d: %d outcomes for %d claimed sessions", c.ID, n, len(c.SessionIDs))
	}
	statuses, errs := make([]string, n), make([]string, n)
	attempts, codes := make([]int32, n), make([]int32, n)
	for i, o := range outcomes {
		if o.SessionID != c.SessionIDs[i] {
			return fmt.Errorf("record claim %d: outcome %d is for session %q, the claim's is %q", c.ID, i, o.SessionID, c.SessionIDs[i])
		}
		errs[i] = o.Error
		attempts[i], codes[i] = int32(o.Attempts), int32(o.HTTPStatus)
		statuses[i] = "failed"
		if o.Deleted {
			statuses[i] = "deleted"
		}
	}
	err := r.s.retrying(ctx, func(ctx context.Context) error {
		_, err := r.s.q.Exec(ctx, `SELECT retention.record($1, $2, $3, $4, $5, $6, $7)`,
			r.id, r.token, c.ID, statuses, attempts, codes, errs)
		return err
	})
	if err != nil {
		return fmt.Errorf("record %d outcomes for character %q: %w", n, c.CharacterID, err)
	}
	return nil
}

// Seal appends the recorded claims to the log.
func (r *Run) Seal(ctx context.Context) error {
	_, _, err := r.s.Seal(ctx)
	return err
}

// Finish closes the run's claims without an outcome, seals the log, signs the checkpoint (with
// the store's Signer, if any) and writes the run's final row with it and the safety cap's
// figures, in three statements.
func (r *Run) Finish(ctx context.Context, end job.RunEnd) (job.Finished, error) {
	var fin job.Finished
	skipped, err := json.Marshal(end.SkippedByReason)
	if err != nil {
		return fin, fmt.Errorf("encode skip reasons: %w", err)
	}
	var errText *string
	if end.Error != "" {
		errText = &end.Error
	}
	if err := r.s.retrying(ctx, func(ctx context.Context) error {
		return r.s.q.QueryRow(ctx, `SELECT retention.close_run($1, $2)`, r.id, r.token).Scan(&fin.Closed)
	}); err != nil {
		return fin, fmt.Errorf("close unanswered claims of run %d: %w", r.id, err)
	}
	size, root, err := r.s.Seal(ctx)
	if err != nil {
		return fin, err
	}
	fin.Checkpoint = job.Checkpoint{TreeSize: size, Root: hex.EncodeToString(root)}
	var note *string
	if r.s.cfg.Sign != nil {
		n, err := r.s.cfg.Sign(ctx, r.id, size, root)
		if err != nil {
			return fin, fmt.Errorf("sign checkpoint of run %d: %w", r.id, err)
		}
		if n != "" {
			note = &n
			fin.Checkpoint.Signed = true
		}
	}
	var wouldSend, sourceSessions, limit *int64
	if c := end.Cap; c != nil {
		wouldSend, sourceSessions, limit = &c.WouldSend, c.SourceSessions, &c.Limit
	}
	err = r.s.retrying(ctx, func(ctx context.Context) error {
		_, err := r.s.q.Exec(ctx, `SELECT retention.finish_run($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
			r.id, r.token, string(end.Status), end.Selected, end.Deleted, end.Failed, end.Skipped, skipped,
			end.BudgetReached, errText, size, root, note, wouldSend, sourceSessions, limit)
		return err
	})
	if err != nil {
		return fin, fmt.Errorf("finish run %d: %w", r.id, err)
	}
	return fin, nil
}

// Seal appends every queued record (claim, memory erasure, memory deletion) to the log and
// returns the tree's size and root.
// retention.seal() appends a bounded batch per call, each its own short transaction; Seal calls
// it until the tree stops growing.
func (s *Store) Seal(ctx context.Context) (size int64, root []byte, err error) {
	last := int64(-1)
	for size != last {
		last = size
		err = s.retrying(ctx, func(ctx context.Context) error {
			return s.q.QueryRow(ctx, `SELECT size, root FROM retention.seal()`).Scan(&size, &root)
		})
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == lockTimeoutCode {
			return 0, nil, fmt.Errorf("seal the log: %w", ErrLogLocked)
		}
		if err != nil {
			return 0, nil, fmt.Errorf("seal the log: %w", err)
		}
	}
	return size, root, nil
}
