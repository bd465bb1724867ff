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
	// Undated counts source rows without a usable last activity (none, or one policy.ValidLastActive
	// refuses).
	Undated(ctx context.Context) (int64, error)
	// UnmatchedHolds returns the active holds that match no row of the source (a character,
	// or a character's session, the source does not have): they protect nothing now.
	UnmatchedHolds(ctx context.Context) ([]policy.Hold, error)
	// SourceSize counts the source's rows whose character belongs to shard, whatever their
	// age or state.
	SourceSize(ctx context.Context, shard Shard) (int64, error)
	// OpenErasures returns the open erasure requests whose character belongs to shard, oldest
	// first, each with the sessions still to delete for it; then the complete ones with
	// sessions whose deletion a verification refuted (ErasureWork.Refuted).
	OpenErasures(ctx context.Context, shard Shard) ([]ErasureWork, error)
}

// Store is everything a real run reads and writes.
type Store interface {
	Reader
	// ReadOnly runs fn against a read-only view of the store that writes nothing.
	ReadOnly(ctx context.Context, fn func(Reader) error) error
	// StartRun takes the run lock of start.Shard (an error wrapping ErrLocked when another run
	// holds it), marks the runs the lock proves dead as interrupted and inserts the new run row
	// with the database's now() as its cut-off. The RunStore it returns holds the lock and is the
	// only way to write the run's records; Close releases it.
	StartRun(ctx context.Context, start RunStart) (RunStore, RunInfo, error)
}

// RunStore is one running run's handle on the store: it owns the run lock and the run's
// credentials, and writes nothing but this run's records.
type RunStore interface {
	// Claim writes the intent to send the chunk's sessions and returns the claim: the sessions
	// written, in order. Sessions a hold now protects, or already deleted, are left out. If the
	// run's lock is no longer held it writes nothing and returns an error wrapping ErrLockLost.
	Claim(ctx context.Context, c Chunk) (Claim, error)
	// CompleteErasure marks an erasure request complete if the store finds every one of its
	// sessions deleted and no active hold on it; it reports whether the request is complete.
	CompleteErasure(ctx context.Context, requestID int64) (bool, error)
	// Held returns those of ids an active hold protects now.
	Held(ctx context.Context, characterID string, ids []string) ([]string, error)
	// Live counts the listed sessions the job knows are live (see LiveChecker).
	LiveChecker
	// Record writes the outcomes of one claim, one per claimed session, in the claim's order.
	Record(ctx context.Context, c Claim, outcomes []Outcome) error
	// CheckLock returns an error wrapping ErrLockLost if the lock may have been lost.
	CheckLock(ctx context.Context) error
	// Seal appends the outcomes recorded so far to the tamper-evident log.
	Seal(ctx context.Context) error
	// Finish closes the claims that have no outcome (they count as failed and are sent again by
	// a later run), seals what is left, writes the run's checkpoint and the run's final row as
	// given.
	Finish(ctx context.Context, end RunEnd) (Finished, error)
	// Close releases the run lock. It is safe to call after Finish, and more than once.
	Close(ctx context.Context) error
}

// Shard says which part of the characters a run owns.
type Shard struct {
	Index int `json:"index"`
	Count int `json:"count"`
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
	Shard    Shard
	Source   string
	Settings map[string]any
	Host     string
	PID      int
	Version  string
}

// RunEnd is a run's final row: the job decides every field.
type RunEnd struct {
	Status          Status
	Selected        int64
	Deleted         int64
	Failed          int64
	Skipped         int64
	SkippedByReason map[string]int64
	BudgetReached   bool
	Error           string
	// Cap is what the safety cap measured, when one was set.
	Cap *CapCheck
}

// Finished is what RunStore.Finish did.
type Finished struct {
	// Closed is how many claimed sessions had no outcome and were closed as failed.
	Closed int64
	// Checkpoint is the log as the run left it.
	Checkpoint Checkpoint
}

// Checkpoint is the tamper-evident log's size and root when a run finished.
type Checkpoint struct {
	TreeSize int64  `json:"tree_size"`
	Root     string `json:"root"`
	// Signed says a signed note of it was stored (and written outside the database).
	Signed bool `json:"signed"`
}

// Claim is a chunk's sessions written as claimed by Claim: only these may be sent.
type Claim struct {
	// ID names the claim in the store.
	ID          int64
	CharacterID string
	SessionIDs  []string
}

// RunInfo is what StartRun returns.
type RunInfo struct {
	ID     int64
	Cutoff time.Time
	// Recovered lists runs found dead and marked interrupted.
	Recovered []int64
}

// Chunk is one character's sessions bound for one request: selected by Policy, or asked for
// by the erasure request Erasure (then Policy is zero).
type Chunk struct {
	CharacterID string
	Policy      policy.Policy
	Erasure     int64
	Sessions    []policy.Record
}

// Outcome is the result for one session of a chunk.
type Outcome struct {
	SessionID string
	Deleted   bool // only when the API confirmed, or the session was settled
	// Settled: the API refused this single session, and its character's list did not have it.
	// Error says so; Deleted is set.
	Settled    bool
	Attempts   int
	HTTPStatus int
	Error      string
}
