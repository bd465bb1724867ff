package job

import (
	"context"
	"time"

	"github.com/convai-retention/retention/policy"
)

// Reader is the read side of the store: what a dry-run needs.
type Reader interface {
	// Now returns the database's clock; a run takes it once as its cut-off.
	Now(ctx context.Context) (time.Time, error)
	// Rules returns the policies with their thresholds for cutoff, and the active holds.
	Rules(ctx context.Context, cutoff time.Time) ([]policy.Policy, []policy.Hold, error)
	// Page returns the next limit source records last active at or before horizon, after the
	// cursor, oldest first, each marked when already deleted or superseded. A page shorter than
	// limit is the last.
	Page(ctx context.Context, after Cursor, horizon time.Time, limit int) ([]policy.Record, error)
	// Undated counts source rows without a last activity.
	Undated(ctx context.Context) (int64, error)
}

// Store is everything a real run reads and writes.
type Store interface {
	Reader
	// ReadOnly runs fn against a read-only view of the store that writes nothing.
	ReadOnly(ctx context.Context, fn func(Reader) error) error
	// Lock takes the run lock of a shard, or returns an error wrapping ErrLocked.
	Lock(ctx context.Context, shard Shard) (Lock, error)
	// StartRun marks the runs the lock proves dead as interrupted and inserts the new run row,
	// with the database's now() as its cut-off.
	StartRun(ctx context.Context, start RunStart) (RunInfo, error)
	// Claim writes the chunk's sessions as pending and returns the IDs it wrote; sessions a hold
	// now protects, or already deleted, are left out. If the run's lock is no longer held it
	// writes nothing and returns an error wrapping ErrLockLost.
	Claim(ctx context.Context, runID int64, c Chunk) ([]string, error)
	// Held returns those of ids an active hold protects now.
	Held(ctx context.Context, characterID string, ids []string) ([]string, error)
	// Record writes the outcomes of one character's pending sessions.
	Record(ctx context.Context, runID int64, characterID string, outcomes []Outcome) error
	// FinishRun writes the run's final status and counts.
	FinishRun(ctx context.Context, runID int64, s *Summary) error
}

// Lock is a held run lock.
type Lock interface {
	// Check returns an error if the lock may have been lost (its connection is gone).
	Check(ctx context.Context) error
	// Release gives the lock back.
	Release(ctx context.Context) error
}

// Shard says which part of the characters a run owns.
type Shard struct {
	Index, Count int
}

// Cursor is the position of the selection: the last record it returned.
type Cursor struct {
	Started     bool
	LastActive  time.Time
	CharacterID string
	SessionID   string
}

// RunStart describes a run for its row in the runs table.
type RunStart struct {
	// Lock is the run's lock; Run sets it. The store checks it is still held at every claim.
	Lock     Lock
	Shard    Shard
	Source   string
	Settings map[string]any
	Host     string
	PID      int
	Version  string
}

// RunInfo is what StartRun returns.
type RunInfo struct {
	ID     int64
	Cutoff time.Time
	// Recovered lists runs found dead and marked interrupted.
	Recovered []int64
}

// Chunk is one character's sessions bound for one request.
type Chunk struct {
	CharacterID string
	Policy      policy.Policy
	Sessions    []policy.Record
}

// Outcome is the result for one session of a chunk.
type Outcome struct {
	SessionID  string
	Deleted    bool // only when the API confirmed
	Attempts   int
	HTTPStatus int
	Error      string
}
