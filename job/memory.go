package job

import (
	"context"
	"time"

	"github.com/convai-retention/retention/policy"
)

// MemoryFlag is what a list says of a session's is_added_to_memory: whether Convai drew
// long-term memory from it. Deleting a session's chat history is not known to remove what went
// into memory, so the flag is evidence of what a deletion may have left behind.
type MemoryFlag int8

// The values of a MemoryFlag. The zero value is MemoryUnstated, so a list that says nothing is
// never taken as "not added".
const (
	// MemoryUnstated: the element had no is_added_to_memory, or not true or false.
	MemoryUnstated MemoryFlag = iota
	// MemoryNotAdded: is_added_to_memory was false when the list was read.
	MemoryNotAdded
	// MemoryAdded: is_added_to_memory was true: the session went into long-term memory.
	MemoryAdded
)

// String returns the flag in snake case, for logs.
func (m MemoryFlag) String() string {
	switch m {
	case MemoryNotAdded:
		return "not_added"
	case MemoryAdded:
		return "added"
	}
	return "unstated"
}

// MemoryListed is what a list said of one session's is_added_to_memory.
type MemoryListed struct {
	SessionID string
	Memory    MemoryFlag
}

// MemoryRecorder records what lists said of each listed session's is_added_to_memory. A
// verification's store implements it (VerifyStore); a run's RunStore may, and then the run
// records what its own lists say (to settle a refused session, for a character's erasure
// request) under its own ID: a store that does not is left alone (see runMemory).
type MemoryRecorder interface {
	// RecordMemory records that the list of characterID read at listedAt (the database's
	// clock, taken before the list was asked for) showed each of listed (at most
	// VerifyBatchSize, well-formed IDs) with what it said of is_added_to_memory: added,
	// not added, or unstated (never taken as not added). A session and answer recorded before
	// are left as they were: once added, a session stays added.
	RecordMemory(ctx context.Context, characterID string, listedAt time.Time, listed []MemoryListed) error
}

// memorySeen gathers what one list said of each session's is_added_to_memory and hands it to a
// MemoryRecorder in batches of at most VerifyBatchSize as it comes: memory stays bounded
// whatever the length of the list.
type memorySeen struct {
	rec         MemoryRecorder
	characterID string
	listedAt    time.Time
	batch       []MemoryListed
	// added, notAdded and unstated count what the list said, malformed IDs included.
	added, notAdded, unstated int64
	err                       error
}

// reset forgets what a failed try showed; what it recorded stays recorded (the list said it).
func (m *memorySeen) reset() {
	m.batch, m.added, m.notAdded, m.unstated, m.err = m.batch[:0], 0, 0, 0, nil
}

// add notes one listed session; an error is the store's, and ends the list.
func (m *memorySeen) add(ctx context.Context, s ListedSession) error {
	switch s.Memory {
	case MemoryNotAdded:
		m.notAdded++
	case MemoryAdded:
		m.added++
	default:
		m.unstated++
	}
	if !policy.ValidIDs(m.characterID, s.SessionID) {
		return nil // never sendable, never recorded: counted only
	}
	m.batch = append(m.batch, MemoryListed{SessionID: s.SessionID, Memory: s.Memory})
	if len(m.batch) < VerifyBatchSize {
		return nil
	}
	return m.flush(ctx)
}

// flush records the batch.
func (m *memorySeen) flush(ctx context.Context) error {
	if len(m.batch) == 0 || m.err != nil {
		return m.err
	}
	if err := m.rec.RecordMemory(ctx, m.characterID, m.listedAt, m.batch); err != nil {
		m.err = err
		return err
	}
	m.batch = m.batch[:0]
	return nil
}
