package job

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/convai-retention/retention/policy"
)

// RunMemorySummary counts what a run's own lists said of long-term memory: the lists it read to
// settle refused sessions and for its characters' erasure requests (a verification's lists are
// counted by verify). Each answer is recorded through the run's store (see MemoryRecorder).
type RunMemorySummary struct {
	// Lists counts the lists read; Sessions the well-formed sessions they showed.
	Lists    int64 `json:"lists"`
	Sessions int64 `json:"sessions"`
	// Added, NotAdded and Unstated count what the lists said of those sessions.
	Added    int64 `json:"added"`
	NotAdded int64 `json:"not_added"`
	Unstated int64 `json:"unstated"`
	// Unrecorded counts the sessions whose answer could not be recorded: the store failed (the
	// run's log says why). Their deletions are not affected.
	Unrecorded int64 `json:"unrecorded,omitempty"`
}

// runMemory records what a run's own lists said of each listed session's is_added_to_memory,
// through the run's store, in batches of at most VerifyBatchSize: one call per list of up to
// that many sessions, none for an empty list. A failure to record never fails a deletion or the
// run: it is logged and counted (RunMemorySummary.Unrecorded), and the list's remaining answers
// are dropped. A nil *runMemory records and counts nothing.
type runMemory struct {
	rec MemoryRecorder
	// now is the database's clock: a list's time is taken before it is asked for.
	now func(ctx context.Context) (time.Time, error)
	// db bounds each store call (a run's dbCtx: not ended by a signal).
	db  func() (context.Context, context.CancelFunc)
	log *slog.Logger

	mu  sync.Mutex
	sum RunMemorySummary
}

// newRunMemory returns the run's memory recorder, or nil when the run's store cannot record
// (it does not implement MemoryRecorder).
func newRunMemory(rs RunStore, now func(context.Context) (time.Time, error), db func() (context.Context, context.CancelFunc),
	log *slog.Logger) *runMemory {
	rec, ok := rs.(MemoryRecorder)
	if !ok {
		return nil
	}
	return &runMemory{rec: rec, now: now, db: db, log: log}
}

// summary returns the counts, nil when the run read no list.
func (m *runMemory) summary() *RunMemorySummary {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sum.Lists == 0 {
		return nil
	}
	s := m.sum
	return &s
}

// begin starts one list of characterID: it takes the list's time from the database before the
// list is asked for. It returns nil (which records nothing) when m is nil.
func (m *runMemory) begin(characterID string) *listMemory {
	if m == nil {
		return nil
	}
	l := &listMemory{m: m, characterID: characterID}
	ctx, cancel := m.db()
	defer cancel()
	l.listedAt, l.err = m.now(ctx)
	return l
}

// listMemory is what one list of a run said of long-term memory, handed to the store as it
// comes.
type listMemory struct {
	m           *runMemory
	characterID string
	listedAt    time.Time
	batch       []MemoryListed
	// sessions, added, notAdded and unstated count this try's well-formed sessions; recorded
	// those already handed to the store.
	sessions, added, notAdded, unstated, recorded int64
	// err is the first failure to record (or to read the clock): nothing more is recorded.
	err error
}

// reset forgets what a failed try showed; what it recorded stays recorded (the list said it).
func (l *listMemory) reset() {
	if l == nil {
		return
	}
	l.batch = l.batch[:0]
	l.sessions, l.added, l.notAdded, l.unstated = 0, 0, 0, 0
}

// add notes one listed session, recording a full batch. Malformed IDs are neither counted nor
// recorded (they are never sent either).
func (l *listMemory) add(s ListedSession) {
	if l == nil || !policy.ValidIDs(l.characterID, s.SessionID) {
		return
	}
	l.sessions++
	switch s.Memory {
	case MemoryAdded:
		l.added++
	case MemoryNotAdded:
		l.notAdded++
	default:
		l.unstated++
	}
	if l.err != nil {
		return
	}
	l.batch = append(l.batch, MemoryListed{SessionID: s.SessionID, Memory: s.Memory})
	if len(l.batch) >= VerifyBatchSize {
		l.flush()
	}
}

// flush hands the batch to the store.
func (l *listMemory) flush() {
	if len(l.batch) == 0 || l.err != nil {
		return
	}
	ctx, cancel := l.m.db()
	defer cancel()
	if err := l.m.rec.RecordMemory(ctx, l.characterID, l.listedAt, l.batch); err != nil {
		l.err = err
		return
	}
	l.recorded += int64(len(l.batch))
	l.batch = l.batch[:0]
}

// finish records the rest of a complete list (complete: the list was read whole; a failed
// list's last try is not recorded beyond its full batches) and counts the list in the run's
// summary, logging a failure to record.
func (l *listMemory) finish(complete bool) {
	if l == nil {
		return
	}
	if complete {
		l.flush()
	}
	m := l.m
	m.mu.Lock()
	m.sum.Lists++
	m.sum.Sessions += l.sessions
	m.sum.Added += l.added
	m.sum.NotAdded += l.notAdded
	m.sum.Unstated += l.unstated
	unrecorded := int64(0)
	if l.err != nil {
		unrecorded = max(l.sessions-l.recorded, 0)
		m.sum.Unrecorded += unrecorded
	}
	m.mu.Unlock()
	if l.err != nil && m.log != nil {
		m.log.Warn("could not record what a run's list said of long-term memory; the deletions are not affected",
			"character_id", l.characterID, "unrecorded", unrecorded, "err", l.err)
	}
}
