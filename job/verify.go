package job

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/time/rate"
)

// VerifyBatchSize is the most verifications recorded in one batch.
const VerifyBatchSize = 10_000

// VerifyScope says which recorded deletions a verification checks.
type VerifyScope struct {
	// CharacterID limits the check to one character; empty for every character with a deletion.
	CharacterID string `json:"character_id,omitempty"`
	// Since, if set, limits the check to deletions completed at or after it.
	Since time.Time `json:"since,omitzero"`
	// Sample, if positive, checks at most this many deletions per character, chosen at random.
	Sample int `json:"sample,omitempty"`
}

// VerifyStore is what a verification needs of the store.
type VerifyStore interface {
	// StartVerify writes the verification's row and returns the handle that records it.
	StartVerify(ctx context.Context, start VerifyStart) (VerifyRunStore, VerifyInfo, error)
}

// VerifyRunStore is one verification's handle on the store.
type VerifyRunStore interface {
	// Characters returns the characters with deletions in scope, sorted.
	Characters(ctx context.Context, scope VerifyScope) ([]string, error)
	// Deleted hands fn every deletion of characterID in scope that no verification has refuted:
	// its id and session, recorded before the call.
	Deleted(ctx context.Context, characterID string, scope VerifyScope, fn func(DeletedSession) error) error
	// Now returns the database's clock.
	Now(ctx context.Context) (time.Time, error)
	// Record writes one batch of verifications of characterID, from a list read at listedAt
	// (the database's clock, taken before the list was asked for).
	Record(ctx context.Context, characterID string, listedAt time.Time, vs []Verification) error
	// Finish writes the verification's final row.
	Finish(ctx context.Context, end VerifyEnd) error
	// Live counts the listed sessions the job knows are live: a list that shows none of them
	// verifies nothing (see LiveChecker).
	LiveChecker
	// RecordMemory records what the lists said of each listed session's is_added_to_memory,
	// live or deleted (see MemoryRecorder).
	MemoryRecorder
	// MemoryLeft reads, over all time and every character, what deletions left in long-term
	// memory: the store's reading after this verification's records.
	MemoryLeft(ctx context.Context) (MemoryLeft, error)
	// MemoryRecheckStore reads the erased memories and records their re-checks.
	MemoryRecheckStore
}

// MemoryLeft is what deletions left in long-term memory, as the lists recorded it: deleted
// sessions Convai listed with is_added_to_memory true, with no erasure of their end user's
// memory of the character completed since the deletion. The flag is Convai's word.
type MemoryLeft struct {
	// Sessions counts such deleted sessions (each deletion once).
	Sessions int64 `json:"sessions"`
	// EndUserUnknown counts those of Sessions whose end user is not known: their memory cannot
	// be erased by end user.
	EndUserUnknown int64 `json:"end_user_unknown"`
	// ErasureRequests counts the completed erasure requests with such sessions of a known end
	// user: memory left behind by an erasure that an erasure by end user can still reach (a
	// child of an end user's request counts once that request is complete).
	ErasureRequests int64 `json:"erasure_requests"`
	// MemoriesFoundAgain counts the end users' memories with a character (one per end user
	// request and character of retention.end_user_memory) that a verification found again
	// after their erasure, with no erasure standing since (memory_reopened): the last erasure
	// said erased and a re-check refuted it (memory_status found_again), or the run's erasure
	// after that has not yet succeeded (pending, failed). Read after the verification's
	// re-checks, so it counts those it found.
	MemoriesFoundAgain int64 `json:"memories_found_again"`
}

// MemoryLeftObserver is told what deletions left in long-term memory at the end of a
// verification that listed every character in scope or gave up on some (not one that failed).
// A VerifyObserver may implement it.
type MemoryLeftObserver interface {
	MemoryLeft(MemoryLeft)
}

// VerifyStart describes a verification for its row.
type VerifyStart struct {
	Scope   VerifyScope
	Host    string
	Version string
}

// VerifyInfo is what StartVerify returns.
type VerifyInfo struct {
	ID      int64
	Started time.Time
}

// DeletedSession is a recorded deletion to check.
type DeletedSession struct {
	DeletionID int64
	SessionID  string
}

// Verification is the result of checking one deletion.
type Verification struct {
	DeletionID int64
	Present    bool
}

// VerifyEnd is a verification's final row.
type VerifyEnd struct {
	Status   VerifyStatus
	Unlisted int64
	Error    string
}

// VerifyStatus is how a verification ended.
type VerifyStatus string

// The statuses of a verification.
const (
	// VerifyFinished: every character in scope was listed (sessions may have been found present).
	VerifyFinished VerifyStatus = "finished"
	// VerifyIncomplete: the list of some character could not be read.
	VerifyIncomplete VerifyStatus = "incomplete"
	// VerifyInterrupted: a signal stopped it.
	VerifyInterrupted VerifyStatus = "interrupted"
	// VerifyFailed: the key was rejected, or the database failed.
	VerifyFailed VerifyStatus = "failed"
)

// VerifyObserver is told how many sessions a verification found present and absent.
type VerifyObserver interface {
	Verified(present, absent int)
}

// VerifySummary is what a verification did.
type VerifySummary struct {
	VerifyID   int64               `json:"verify_id"`
	Status     VerifyStatus        `json:"status"`
	Scope      VerifyScope         `json:"scope"`
	Checked    int64               `json:"checked"`
	Present    int64               `json:"present"`
	Absent     int64               `json:"absent"`
	Unlisted   int64               `json:"unlisted"`
	Characters []VerifiedCharacter `json:"characters"`
	// MemoryLeft is what deletions left in long-term memory, over all time, read at the end;
	// nil when the verification failed or was interrupted.
	MemoryLeft *MemoryLeft `json:"memory_left,omitempty"`
	// MemoryRechecks counts the re-checks of erased memories; nil when no memory erasure in
	// scope says erased (no memory endpoint was called) or the verification stopped first.
	MemoryRechecks *MemoryRechecks `json:"memory_rechecks,omitempty"`
}

// VerifiedCharacter is one character's part of a VerifySummary.
type VerifiedCharacter struct {
	CharacterID string `json:"character_id"`
	Checked     int64  `json:"checked"`
	Present     int64  `json:"present"`
	Absent      int64  `json:"absent"`
	// PresentIDs are the first MaxPresentShown sessions found present.
	PresentIDs []string `json:"present_ids,omitempty"`
	// ListedInMemory counts the sessions the character's list showed with is_added_to_memory
	// true: Convai drew long-term memory from them, which deleting their chat history is not
	// known to remove. They are recorded (retention.memory_sightings), as are those listed
	// with false or without a readable answer (retention.memory_listings).
	ListedInMemory int64 `json:"listed_in_memory,omitempty"`
	// ListedMemoryUnstated counts the listed sessions whose is_added_to_memory was absent or
	// neither true nor false: unknown, never taken as false.
	ListedMemoryUnstated int64 `json:"listed_memory_unstated,omitempty"`
	// Error says why the character's list could not be read; empty when it was.
	Error string `json:"error,omitempty"`
}

// MaxPresentShown is the most present session IDs a VerifiedCharacter lists.
const MaxPresentShown = 100

// Verify lists the sessions of every character in scope and checks each recorded deletion:
// absent from the list, it is verified; present, the deletion is refuted, and the store makes the
// session eligible again (the next run sends it). Then it lists again the long-term memories of
// each end user with each character in scope whose last memory erasure says erased, when there
// is any (see recheckMemories): memories found refute the erasure, and the next run erases
// again. Lists are read as streams, retried with cfg's backoff, attempts and rate, one
// character at a time. Memory follows the number of deletions
// checked for one character, not the length of its list. The summary is returned whenever the
// verification row was written. Errors wrap ErrKeyRejected when the API refused the key.
func Verify(ctx context.Context, store VerifyStore, l Lister, cfg Config, obs VerifyObserver, start VerifyStart) (*VerifySummary, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	vs, info, err := store.StartVerify(ctx, start)
	if err != nil {
		return nil, err
	}
	limit := rate.Inf
	if cfg.Rate > 0 {
		limit = rate.Limit(cfg.Rate)
	}
	v := &verifier{cfg: cfg, log: cfg.Logger, store: vs, lister: l, obs: obs, scope: start.Scope,
		limiter: rate.NewLimiter(limit, 1),
		sum:     &VerifySummary{VerifyID: info.ID, Scope: start.Scope, Characters: []VerifiedCharacter{}}}
	v.log.Info("verify started", "verify_id", info.ID, "character_id", start.Scope.CharacterID,
		"since", start.Scope.Since, "sample", start.Scope.Sample)
	err = v.all(ctx)
	return v.finish(ctx, err)
}

type verifier struct {
	cfg     Config
	log     *slog.Logger
	store   VerifyRunStore
	lister  Lister
	obs     VerifyObserver
	scope   VerifyScope
	limiter *rate.Limiter
	sum     *VerifySummary
}

// all verifies every character in scope, in order, then re-checks the erased memories. It returns the first error that stops the
// verification: a rejected key, the database, a cancelled context.
func (v *verifier) all(ctx context.Context) error {
	chars, err := v.store.Characters(ctx, v.scope)
	if err != nil {
		return err
	}
	for _, c := range chars {
		if err := v.character(ctx, c); err != nil {
			return err
		}
	}
	return v.recheckMemories(ctx)
}

// character verifies the deletions of one character.
func (v *verifier) character(ctx context.Context, characterID string) error {
	want := make(map[string][]int64)
	if err := v.store.Deleted(ctx, characterID, v.scope, func(d DeletedSession) error {
		want[d.SessionID] = append(want[d.SessionID], d.DeletionID)
		return nil
	}); err != nil {
		return err
	}
	if len(want) == 0 {
		return nil
	}
	listedAt, err := v.store.Now(ctx)
	if err != nil {
		return err
	}
	l, err := v.list(ctx, characterID, want, listedAt)
	if err != nil {
		return err
	}
	vc := VerifiedCharacter{CharacterID: characterID, ListedInMemory: l.memory.added, ListedMemoryUnstated: l.memory.unstated}
	switch {
	case errors.Is(l.err, ErrKeyRejected):
		return fmt.Errorf("list the sessions of %s: %w", characterID, l.err)
	case ctx.Err() != nil:
		return ctx.Err()
	case l.err != nil:
		vc.Error = l.err.Error()
		v.sum.Unlisted++
		v.sum.Characters = append(v.sum.Characters, vc)
		v.log.Warn("no usable list of a character's sessions: its deletions stay unverified", "character_id", characterID, "err", l.err)
		return nil
	}
	if err := v.record(ctx, characterID, listedAt, want, l.present, &vc); err != nil {
		return err
	}
	v.tally(vc, l.memory)
	return nil
}

// characterList is what one list of a character's sessions showed.
type characterList struct {
	present map[string]bool // the sessions checked that the list shows
	memory  *memorySeen     // what it said of long-term memory
	err     error           // why the list is not usable, if it is not
}

// list lists the character's sessions, notes which of want it shows and records what it says
// of long-term memory. A list that shows none of want must show it can see (a witness). The
// error returned is one that stops the verification; a list that is not usable says why in err.
func (v *verifier) list(ctx context.Context, characterID string, want map[string][]int64, listedAt time.Time) (characterList, error) {
	var w *witness
	l := characterList{memory: &memorySeen{rec: v.store, characterID: characterID, listedAt: listedAt}}
	_, err := listAll(ctx, v.lister, v.cfg, v.limiter, characterID,
		func() { l.present, w = make(map[string]bool), &witness{}; l.memory.reset() },
		func(s ListedSession) error {
			if _, ok := want[s.SessionID]; ok {
				l.present[s.SessionID] = true
			}
			w.add(s.SessionID)
			return l.memory.add(ctx, s)
		})
	if err == nil {
		err = l.memory.flush(ctx)
	}
	if l.memory.err != nil {
		return l, l.memory.err
	}
	if err == nil && len(l.present) == 0 {
		// A list that shows none of the deletions checked must show that it can see: a
		// session the job knows is live. A list that shows a deleted session refutes it,
		// whatever else it shows.
		err = w.credible(ctx, v.store, characterID)
		var nw *errNoWitness
		if err != nil && !errors.As(err, &nw) {
			return l, err
		}
	}
	l.err = err
	return l, nil
}

// record records a verification of every deletion of want, present or absent as the list
// showed, in batches of VerifyBatchSize, and counts them in vc.
func (v *verifier) record(ctx context.Context, characterID string, listedAt time.Time, want map[string][]int64,
	present map[string]bool, vc *VerifiedCharacter) error {
	batch := make([]Verification, 0, min(len(want), VerifyBatchSize))
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := v.store.Record(ctx, characterID, listedAt, batch); err != nil {
			return err
		}
		batch = batch[:0]
		return nil
	}
	for id, deletions := range want {
		for _, d := range deletions {
			batch = append(batch, Verification{DeletionID: d, Present: present[id]})
			vc.Checked++
			if present[id] {
				vc.Present++
			} else {
				vc.Absent++
			}
			if len(batch) == VerifyBatchSize {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		if present[id] && len(vc.PresentIDs) < MaxPresentShown {
			vc.PresentIDs = append(vc.PresentIDs, id)
		}
	}
	return flush()
}

// tally adds a verified character to the summary and the observer, and logs it.
func (v *verifier) tally(vc VerifiedCharacter, memory *memorySeen) {
	v.sum.Checked += vc.Checked
	v.sum.Present += vc.Present
	v.sum.Absent += vc.Absent
	v.sum.Characters = append(v.sum.Characters, vc)
	if v.obs != nil {
		v.obs.Verified(int(vc.Present), int(vc.Absent))
	}
	if vc.Present > 0 {
		v.log.Warn("deleted sessions found present at Convai: the next run sends them again",
			"character_id", vc.CharacterID, "present", vc.Present, "checked", vc.Checked)
	} else {
		v.log.Info("character verified", "character_id", vc.CharacterID, "checked", vc.Checked)
	}
	if memory.added > 0 {
		v.log.Info("sessions listed as added to long-term memory: deleting their chat history is not known to remove it",
			"character_id", vc.CharacterID, "listed_in_memory", memory.added, "listed_not_in_memory", memory.notAdded,
			"listed_memory_unstated", memory.unstated)
	}
}

// memoryLeft reads what deletions left in long-term memory into the summary, tells the
// observer, and warns when an erasure left some.
func (v *verifier) memoryLeft(ctx context.Context) error {
	left, err := v.store.MemoryLeft(ctx)
	if err != nil {
		return fmt.Errorf("read what deletions left in long-term memory: %w", err)
	}
	v.sum.MemoryLeft = &left
	if o, ok := v.obs.(MemoryLeftObserver); ok {
		o.MemoryLeft(left)
	}
	if left.ErasureRequests > 0 {
		v.log.Warn("completed erasure requests left long-term memory behind: Convai listed some of their sessions as added to memory, "+
			"and no erasure of that end user's memory followed (retention.erasure_memory_left)",
			"erasure_requests", left.ErasureRequests, "sessions", left.Sessions, "end_user_unknown", left.EndUserUnknown)
	}
	if left.MemoriesFoundAgain > 0 {
		v.log.Warn("erased long-term memories were found again and not erased since: the next run erases them again "+
			"(retention.end_user_memory where memory_reopened)", "memories_found_again", left.MemoriesFoundAgain)
	}
	return nil
}

// finish writes the final row and returns the summary and the error that ended the
// verification, if any.
func (v *verifier) finish(ctx context.Context, err error) (*VerifySummary, error) {
	end := VerifyEnd{Status: VerifyFinished, Unlisted: v.sum.Unlisted}
	switch {
	case err != nil && ctx.Err() != nil:
		end.Status, end.Error = VerifyInterrupted, err.Error()
	case err != nil:
		end.Status, end.Error = VerifyFailed, err.Error()
	case v.sum.Unlisted > 0:
		end.Status = VerifyIncomplete
		end.Error = fmt.Sprintf("the lists of %d characters could not be read", v.sum.Unlisted)
	}
	v.sum.Status = end.Status
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err == nil {
		err = v.memoryLeft(fctx) // after the lists: a signal now does not undo a finished verification
		if err != nil {
			end.Status, end.Error = VerifyFailed, err.Error()
			v.sum.Status = end.Status
		}
	}
	if ferr := v.store.Finish(fctx, end); ferr != nil {
		return v.sum, errors.Join(err, fmt.Errorf("finish verify: %w", ferr))
	}
	v.log.Info("verify finished", "verify_id", v.sum.VerifyID, "status", end.Status, "checked", v.sum.Checked,
		"present", v.sum.Present, "absent", v.sum.Absent, "unlisted", v.sum.Unlisted)
	return v.sum, err
}
