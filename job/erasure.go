package job

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/convai-retention/retention/policy"
)

// ErasureRequest is a request that sessions be deleted whatever their age and whatever the
// policies say: a person asked. A run sends the sessions of every open request of its shard
// before anything the policies select; an active hold still wins.
type ErasureRequest struct {
	ID          int64
	CharacterID string
	// SessionID is the one session asked for; "" asks for every session of the character in
	// the source.
	SessionID   string
	RequestedAt time.Time
	DueAt       time.Time
}

// ErasureWork is an open erasure request and the sessions a run still has to delete for it.
type ErasureWork struct {
	Request ErasureRequest
	// Sessions are the request's sessions not yet deleted: for a one-session request that
	// session (LastActive zero when the source does not know it: it is sent all the same), for
	// a character's every session of the character in the source, to which a run adds those
	// Convai lists that the source does not have (LastActive zero).
	Sessions []policy.Record
	// Refuted marks a complete request whose deletions of Sessions a verification refuted
	// (found present at Convai): they are sent again under it; it stays complete.
	Refuted bool
	// EndUserRequestID is set for a child of an end user's request: Sessions are the end
	// user's sessions of the character only, Holds the holds that block it, and the end user's
	// request, not this one, says when it is complete (see eraseEndUsers).
	EndUserRequestID int64
	Holds            []int64
}

// ErasureSummary is what a run did about erasure requests.
type ErasureSummary struct {
	// Open counts the shard's open requests when the run started.
	Open int `json:"open"`
	// Sessions counts the sessions those requests still asked for: sent (or, for a dry-run,
	// to be sent) unless held.
	Sessions int64 `json:"sessions"`
	// Held counts those an active hold protects: they are not sent.
	Held int64 `json:"held"`
	// Listed counts the sessions of characters' requests found at Convai that the source did
	// not have: they are sent too.
	Listed int64 `json:"listed_at_convai"`
	// ListedInMemory counts the sessions of characters' requests that Convai listed with
	// is_added_to_memory true: their chat history is deleted, but Convai drew long-term memory
	// from them, which that deletion is not known to remove.
	ListedInMemory int64 `json:"listed_in_memory,omitempty"`
	Deleted        int64 `json:"deleted"`
	Failed         int64 `json:"failed"`
	// Completed lists the requests this run found complete: every session confirmed deleted.
	Completed []int64 `json:"completed,omitempty"`
	// Blocked lists the requests an active hold keeps open.
	Blocked []int64 `json:"blocked,omitempty"`
	// Left counts the requests still open when the run ended (blocked ones included), and
	// Overdue those of them past their due time.
	Left    int `json:"left_open"`
	Overdue int `json:"overdue"`
	// EndUsers is what the run did about end users' requests; their sessions are counted
	// above (Sessions, Held, Deleted, Failed), not their requests.
	EndUsers *EndUserSummary `json:"end_users,omitempty"`
}

// erasures is a run's erasure work for its shard: the requests, their chunks, and the sessions
// they cover, which the policies' selection then leaves alone.
type erasures struct {
	work    []ErasureWork
	blocked map[int64]bool
	chunks  []Chunk
	held    []policy.Record
	// malformed are the requests' sessions whose IDs cannot be sent: skipped, and counted.
	malformed []policy.Record
	// unlisted names the characters' requests whose sessions at Convai were not listed this
	// run (a dry-run, or the list failed): not complete yet.
	unlisted map[int64]bool
	covered  map[[2]string]bool

	mu sync.Mutex
	// confirmed holds the sessions this run recorded deleted.
	confirmed map[[2]string]bool
	sum       ErasureSummary
	// endUsers are the open end users' requests, every shard's characters included.
	endUsers []EndUserWork
	euSum    EndUserSummary
}

// MissingFinder finds, among session IDs Convai listed, those the app never stored: discover
// adds them, a character's erasure request sends them. source.Store implements it.
type MissingFinder interface {
	// Missing returns those of ids of characterID that the source does not have and that are
	// not deleted.
	Missing(ctx context.Context, characterID string, ids []string) ([]string, error)
}

// listedCharacter is what a character's list at Convai showed an erasure request.
type listedCharacter struct {
	// missing are the sessions the source does not have and that were never deleted.
	missing []string
	// inMemory counts the listed sessions whose is_added_to_memory was true.
	inMemory int64
}

// listMissing lists a character at Convai for its erasure requests; nil when the run cannot list
// (a dry-run).
type listMissing func(ctx context.Context, characterID string) (listedCharacter, error)

// convaiMissing lists a character through l with the run's retry rules and limiter, and keeps
// what m says is missing and how many sessions the list showed as added to memory; what the list
// said of each session's memory is recorded through memory (nil: not recorded).
func convaiMissing(l Lister, m MissingFinder, cfg Config, limiter *rate.Limiter, memory *runMemory) listMissing {
	return func(ctx context.Context, characterID string) (listedCharacter, error) {
		var ids []string
		var inMemory int64
		flags := memory.begin(characterID)
		_, err := listAll(ctx, l, cfg, limiter, characterID, func() { ids, inMemory = ids[:0], 0; flags.reset() }, func(s ListedSession) error {
			ids = append(ids, s.SessionID)
			if s.Memory == MemoryAdded {
				inMemory++
			}
			flags.add(s)
			return nil
		})
		flags.finish(err == nil)
		if err != nil {
			return listedCharacter{}, err
		}
		out := listedCharacter{inMemory: inMemory}
		for start := 0; start < len(ids); start += DiscoverBatch {
			missing, err := m.Missing(ctx, characterID, ids[start:min(start+DiscoverBatch, len(ids))])
			if err != nil {
				return listedCharacter{}, err
			}
			out.missing = append(out.missing, missing...)
		}
		return out, nil
	}
}

// planErasures reads the open requests of the shard and splits their sessions into chunks of
// at most size, leaving out the held ones (the request is then blocked) and malformed IDs. With
// list, a character's request also takes the sessions Convai lists for the character that the
// source does not have (the app never stored them); if that list cannot be read, the request
// is sent with what the source has and stays open.
func planErasures(ctx context.Context, rd Reader, rules *policy.Set, shard Shard, size int, list listMissing, log *slog.Logger) (*erasures, error) {
	work, endUsers, err := readErasureWork(ctx, rd, shard)
	if err != nil {
		return nil, err
	}
	e := &erasures{work: work, blocked: map[int64]bool{}, covered: map[[2]string]bool{}, confirmed: map[[2]string]bool{},
		unlisted: map[int64]bool{}, endUsers: endUsers}
	for _, w := range endUsers {
		if w.Reopened {
			e.euSum.Reopened = append(e.euSum.Reopened, w.Request.ID)
		} else {
			e.euSum.Open++
		}
	}
	e.countToErase(shard)
	if err := e.addListed(ctx, rules, list, log); err != nil {
		return nil, err
	}
	e.markBlocked(rules)
	e.chunkSessions(rules, size)
	for _, w := range work {
		if e.blocked[w.Request.ID] && w.EndUserRequestID == 0 {
			e.sum.Blocked = append(e.sum.Blocked, w.Request.ID)
		}
	}
	slices.Sort(e.sum.Blocked)
	return e, nil
}

// readErasureWork reads the shard's open erasure requests and, when rd can read them, the open
// end users' requests (every shard's), whose characters of the shard join the work.
func readErasureWork(ctx context.Context, rd Reader, shard Shard) ([]ErasureWork, []EndUserWork, error) {
	work, err := rd.OpenErasures(ctx, shard)
	if err != nil {
		return nil, nil, fmt.Errorf("read erasure requests: %w", err)
	}
	eu, ok := rd.(EndUserReader)
	if !ok {
		return work, nil, nil
	}
	endUsers, err := eu.OpenEndUserErasures(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("read end users' erasure requests: %w", err)
	}
	return append(work, endUserWork(endUsers, shard)...), endUsers, nil
}

// addListed adds to each character's request the sessions list finds at Convai that the source
// does not have, listing each character once however many requests name it. A request whose
// character cannot be listed (no list, the whole character held, the list failed) is unlisted:
// it stays open. A rejected key or an ended ctx is an error.
func (e *erasures) addListed(ctx context.Context, rules *policy.Set, list listMissing, log *slog.Logger) error {
	type listed struct {
		listedCharacter
		err error
	}
	lists := map[string]listed{} // one list per character, however many requests name it
	for i := range e.work {
		w := &e.work[i]
		if w.Refuted || w.Request.SessionID != "" || w.EndUserRequestID != 0 {
			continue // an end user's sessions at Convai cannot be told from others': the set's only
		}
		if list == nil || rules.Held(w.Request.CharacterID, "") {
			e.unlisted[w.Request.ID] = true // no API, or the whole character is held: nothing to send
			continue
		}
		l, ok := lists[w.Request.CharacterID]
		if !ok {
			l.listedCharacter, l.err = list(ctx, w.Request.CharacterID)
			lists[w.Request.CharacterID] = l
			e.sum.Listed += int64(len(l.missing))
			e.sum.ListedInMemory += l.inMemory
			if l.inMemory > 0 && log != nil {
				log.Warn("sessions of an erasure request's character went into long-term memory: deleting their chat history is not known to remove it",
					"request", w.Request.ID, "character_id", w.Request.CharacterID, "listed_in_memory", l.inMemory)
			}
		}
		ids, err := l.missing, l.err
		switch {
		case errors.Is(err, ErrKeyRejected) || ctx.Err() != nil:
			return fmt.Errorf("list the sessions of %s at Convai for erasure request %d: %w", w.Request.CharacterID, w.Request.ID, err)
		case err != nil:
			e.unlisted[w.Request.ID] = true
			if log != nil {
				log.Warn("could not list a character's sessions at Convai for its erasure request: it is sent with what the source has and stays open",
					"request", w.Request.ID, "character_id", w.Request.CharacterID, "err", err)
			}
			continue
		}
		for _, id := range ids {
			w.Sessions = append(w.Sessions, policy.Record{CharacterID: w.Request.CharacterID, SessionID: id})
		}
	}
	return nil
}

// markBlocked counts the open requests and marks blocked those a hold keeps open: an end user's
// child with holds, or a request whose character or session is held.
func (e *erasures) markBlocked(rules *policy.Set) {
	for _, w := range e.work {
		r := w.Request
		if w.EndUserRequestID != 0 {
			e.euSum.Characters++
			if len(w.Holds) > 0 { // retention.end_user_holds
				e.blocked[r.ID] = true
			}
			continue
		}
		if w.Refuted {
			continue
		}
		e.sum.Open++
		// The database's rule (retention.erasure_status, complete_erasure): a hold on the
		// character, on the session asked for, or, for a character's request, on any of its
		// sessions.
		if (r.SessionID == "" && rules.AnyHeld(r.CharacterID)) || (r.SessionID != "" && rules.Held(r.CharacterID, r.SessionID)) {
			e.blocked[r.ID] = true
		}
	}
}

// chunkSessions splits each request's sessions into chunks of at most size, each session once
// however many requests ask for it; held sessions and malformed IDs are set aside, not chunked.
func (e *erasures) chunkSessions(rules *policy.Set, size int) {
	for _, w := range e.work {
		r := w.Request
		var c *Chunk
		for _, s := range w.Sessions {
			key := [2]string{s.CharacterID, s.SessionID}
			if s.CharacterID != r.CharacterID || e.covered[key] {
				continue // not the request's, or asked for twice: sent once
			}
			if !policy.ValidIDs(s.CharacterID, s.SessionID) {
				e.covered[key] = true
				e.malformed = append(e.malformed, s) // never sendable: the request stays open
				continue
			}
			e.covered[key] = true
			e.sum.Sessions++
			if rules.Held(s.CharacterID, s.SessionID) {
				e.sum.Held++
				e.held = append(e.held, s)
				continue
			}
			if c == nil || len(c.Sessions) >= size {
				e.chunks = append(e.chunks, Chunk{CharacterID: r.CharacterID, Erasure: r.ID})
				c = &e.chunks[len(e.chunks)-1]
			}
			c.Sessions = append(c.Sessions, s)
		}
	}
}

// count counts the requests' sessions into t as selected (or skipped: held, malformed): they
// are the run's as much as the policies' selection is.
func (e *erasures) count(t *tally) {
	d := policy.Decision{Reason: policy.ReasonErasureRequest}
	for _, c := range e.chunks {
		for _, s := range c.Sessions {
			t.select_(s, d)
		}
	}
	for _, s := range e.held {
		t.skip(policy.SkipHeld, s, d, 1)
	}
	for _, s := range e.malformed {
		t.skip(policy.SkipMalformed, s, d, 1)
	}
}

// covers reports whether an erasure request of this run asks for the session.
func (e *erasures) covers(characterID, sessionID string) bool {
	return e != nil && e.covered[[2]string{characterID, sessionID}]
}

// exclude is covers for the selection, or nil when no request asks for anything: the
// selection then pays nothing per record.
func (e *erasures) exclude() func(characterID, sessionID string) bool {
	if e == nil || len(e.covered) == 0 {
		return nil
	}
	return e.covers
}

// done notes the recorded outcomes of a chunk of request id.
func (e *erasures) done(id int64, characterID string, os []Outcome) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, o := range os {
		if o.Deleted {
			e.confirmed[[2]string{characterID, o.SessionID}] = true
			e.sum.Deleted++
		} else {
			e.sum.Failed++
		}
	}
}

// complete asks the store to mark complete every open request of the run that is not blocked
// and whose every session this run confirmed deleted, under whichever request sent it (a
// request with nothing left to send included); the store checks it again against the recorded
// outcomes, the holds and the sources. A session failed, held, malformed or not sent (the run
// stopped first) leaves its requests open for the next run.
func (e *erasures) complete(ctx context.Context, rs RunStore) error {
	for _, w := range e.work {
		id := w.Request.ID
		if w.Refuted || w.EndUserRequestID != 0 || e.blocked[id] || e.unlisted[id] || !e.allConfirmed(w) {
			continue
		}
		ok, err := rs.CompleteErasure(ctx, id)
		if err != nil {
			return fmt.Errorf("complete erasure request %d: %w", id, err)
		}
		if ok {
			e.sum.Completed = append(e.sum.Completed, id)
		}
	}
	return nil
}

// allConfirmed reports whether this run confirmed the deletion of every session of w.
func (e *erasures) allConfirmed(w ErasureWork) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range w.Sessions {
		if !e.confirmed[[2]string{s.CharacterID, s.SessionID}] {
			return false
		}
	}
	return true
}

// summary returns the counts so far, with the requests left open and overdue as of now.
func (e *erasures) summary(now time.Time) *ErasureSummary {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.sum
	s.Left, s.Overdue = 0, 0
	if len(e.endUsers) > 0 {
		eu := e.euSum
		s.EndUsers = &eu
	}
	for _, w := range e.work {
		if w.Refuted || w.EndUserRequestID != 0 || slices.Contains(s.Completed, w.Request.ID) {
			continue
		}
		s.Left++
		if now.After(w.Request.DueAt) {
			s.Overdue++
		}
	}
	return &s
}

// decision is what a chunk was selected under, for the counts.
func (c Chunk) decision() policy.Decision {
	if c.Erasure != 0 {
		return policy.Decision{Reason: policy.ReasonErasureRequest}
	}
	return policy.Decision{Policy: c.Policy}
}
