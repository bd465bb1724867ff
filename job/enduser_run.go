package job

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"golang.org/x/time/rate"

	"github.com/convai-retention/retention/policy"
)

// endUserWork turns the characters of the shard of each end user's request into erasure work:
// one child request per character, with the end user's sessions only.
func endUserWork(ws []EndUserWork, shard Shard) []ErasureWork {
	var out []ErasureWork
	for _, w := range ws {
		for _, c := range w.Characters {
			if policy.Shard(c.CharacterID, shard.Count) != shard.Index {
				continue
			}
			out = append(out, ErasureWork{
				Request: ErasureRequest{ID: c.ErasureID, CharacterID: c.CharacterID,
					RequestedAt: w.Request.RequestedAt, DueAt: w.Request.DueAt},
				Sessions: c.Sessions, EndUserRequestID: w.Request.ID, Holds: c.Holds,
			})
		}
	}
	return out
}

// countToErase counts the memory erasures the run has to do (a dry-run: would do): those of
// the shard's characters that are not held and not erased yet.
func (e *erasures) countToErase(shard Shard) {
	for _, w := range e.endUsers {
		for _, c := range w.Characters {
			if policy.Shard(c.CharacterID, shard.Count) == shard.Index && len(c.Holds) == 0 && !c.MemoryErased {
				e.euSum.ToErase++
			}
		}
	}
}

// memoryEraser is a run's erasure of end users' long-term memory: after the run has sent the
// sessions, for each character of its shard of each open end user's request, a delete-all,
// then lists until the list is empty or MemoryConfirmWithin has passed; then, when asked and
// every memory is erased, the deletion of the end user's record; then the store's verdict on
// each request. Nothing here runs unless a request names an end user: the memory endpoints are
// never called otherwise.
type memoryEraser struct {
	api     MemoryAPI // nil when the sender cannot erase memory
	rs      EndUserRunStore
	cfg     Config
	limiter *rate.Limiter
	log     *slog.Logger
	// now is the database's clock, estimated: the run's cut-off plus the time since.
	now func() time.Time
	// db bounds one store call; it outlives a cancelled run by the wind-down.
	db func() (context.Context, context.CancelFunc)
}

// eraseEndUsers is the run's memory phase: see memoryEraser. It runs after the sends, and only
// when a request names an end user.
func (ru *run) eraseEndUsers(ctx context.Context) error {
	rs, ok := ru.rs.(EndUserRunStore)
	if !ok || ru.erasures == nil || len(ru.erasures.endUsers) == 0 || ctx.Err() != nil {
		return nil // nothing asked, or interrupted: the next run erases it
	}
	api, _ := ru.sender.(MemoryAPI)
	m := &memoryEraser{api: api, rs: rs, cfg: ru.cfg, limiter: ru.limiter, log: ru.log, db: ru.dbCtx,
		now: func() time.Time { return ru.info.Cutoff.Add(time.Since(ru.began)) }}
	return m.eraseEndUsers(ctx, ru.erasures)
}

// expandEndUsers files the children of the open end users' requests for the characters seen
// since they were filed (the sync may have brought one), before the erasure work is read.
func (ru *run) expandEndUsers(ctx context.Context) error {
	rs, ok := ru.rs.(EndUserRunStore)
	if !ok {
		return nil
	}
	n, err := rs.ExpandEndUserRequests(ctx)
	if err != nil {
		return fmt.Errorf("expand end users' erasure requests: %w", err)
	}
	if n > 0 {
		ru.log.Info("end users' erasure requests: characters seen since they were filed are added", "characters", n)
	}
	return nil
}

// eraseEndUsers erases the memories of the end users' requests of e and completes what is done.
// An error is the store's; the API's failures are recorded as outcomes and leave the request
// open.
func (m *memoryEraser) eraseEndUsers(ctx context.Context, e *erasures) error {
	for _, w := range e.endUsers {
		if ctx.Err() != nil {
			break // interrupted: the next run erases what is left
		}
		if err := m.eraseRequest(ctx, e, w); err != nil {
			return err
		}
	}
	slices.Sort(e.euSum.Completed)
	slices.Sort(e.euSum.Blocked)
	slices.Sort(e.euSum.Left)
	return nil
}

func (m *memoryEraser) eraseRequest(ctx context.Context, e *erasures, w EndUserWork) error {
	allErased, held := true, false
	for _, c := range w.Characters {
		if len(c.Holds) > 0 {
			allErased, held = false, true
			if m.log != nil {
				m.log.Warn("an end user's erasure is blocked by a hold: that character's sessions and memory are left alone",
					"request", w.Request.ID, "character_id", c.CharacterID, "holds", c.Holds)
			}
			continue
		}
		if c.MemoryErased {
			continue
		}
		if ctx.Err() != nil {
			allErased = false
			continue
		}
		if policy.Shard(c.CharacterID, m.cfg.Shard.Count) != m.cfg.Shard.Index {
			allErased = false // another shard's run erases it
			continue
		}
		rec := m.eraseCharacter(ctx, w.Request, c.CharacterID)
		if err := m.record(rec); err != nil {
			return fmt.Errorf("record the memory erasure of end user request %d with %s: %w", w.Request.ID, c.CharacterID, err)
		}
		e.countMemory(rec.Status)
		if rec.Status != MemoryErased {
			allErased = false
		}
	}
	if w.Request.Record && !w.RecordErased && allErased && ctx.Err() == nil &&
		policy.Shard(w.Request.EndUserID, m.cfg.Shard.Count) == m.cfg.Shard.Index {
		rec := m.eraseRecord(ctx, w.Request)
		if err := m.record(rec); err != nil {
			return fmt.Errorf("record the deletion of end user request %d's record: %w", w.Request.ID, err)
		}
		if rec.Status == MemoryErased {
			e.euSum.RecordsErased++
		} else {
			e.countMemory(rec.Status)
		}
	}
	if w.Reopened {
		// Completed already: its completion stands, and a later re-check says whether this
		// erasure held; a hold that kept a character's memory says so.
		if held {
			e.euSum.Blocked = append(e.euSum.Blocked, w.Request.ID)
		}
		return nil
	}
	dctx, cancel := m.db()
	state, err := m.rs.CompleteEndUserErasure(dctx, w.Request.ID)
	cancel()
	if err != nil {
		return fmt.Errorf("complete end user request %d: %w", w.Request.ID, err)
	}
	switch state {
	case "completed":
		e.euSum.Completed = append(e.euSum.Completed, w.Request.ID)
	case "blocked":
		e.euSum.Blocked = append(e.euSum.Blocked, w.Request.ID)
		e.euSum.Left = append(e.euSum.Left, w.Request.ID)
	default:
		e.euSum.Left = append(e.euSum.Left, w.Request.ID)
	}
	return nil
}

// record writes one memory erasure.
func (m *memoryEraser) record(rec MemoryErasure) error {
	ctx, cancel := m.db()
	defer cancel()
	return m.rs.RecordMemoryErasure(ctx, rec)
}

// countMemory counts one memory erasure by its status.
func (e *erasures) countMemory(s MemoryStatus) {
	switch s {
	case MemoryErased:
		e.euSum.Erased++
	case MemoryPending:
		e.euSum.Pending++
	case MemoryUnavailable:
		e.euSum.Unavailable++
	case MemoryForbidden:
		e.euSum.Forbidden++
	default:
		e.euSum.Failed++
	}
}

// eraseCharacter asks for the deletion of every memory of the request's end user with
// characterID, then confirms it with lists: erased only when a whole list shows none.
func (m *memoryEraser) eraseCharacter(ctx context.Context, r EndUserRequest, characterID string) MemoryErasure {
	rec := MemoryErasure{RequestID: r.ID, CharacterID: characterID, StartedAt: m.now(), Remaining: -1, Before: -1}
	if m.api == nil {
		rec.Status, rec.Error = MemoryFailed, "the run has no client for the long-term memory endpoints"
		return rec
	}
	// A list first: what the witness saw before. A route without memory, or a character this
	// key may not touch, ends it here; another failure does not keep the delete-all from being
	// asked.
	n, last, attempts, err := m.count(ctx, characterID, r.EndUserID)
	rec.Attempts, rec.HTTPStatus = attempts, last.StatusCode
	switch {
	case err == nil:
		rec.Before = n
	case errors.Is(last.Err, ErrMemoryUnavailable), errors.Is(last.Err, ErrMemoryForbidden), ctx.Err() != nil:
		rec.Status, rec.Error = memoryFailure(last, err)
		m.logFailure(r, characterID, rec)
		return rec
	}
	last, attempts, err = try(ctx, m.cfg, m.limiter, func(ctx context.Context) Answer {
		return m.api.DeleteAllMemories(ctx, characterID, r.EndUserID)
	})
	rec.Attempts, rec.HTTPStatus = rec.Attempts+attempts, last.StatusCode
	switch {
	case err == nil, errors.Is(last.Err, ErrMemoryNotFound):
		// accepted, or no such end user: the list says what is left
	default:
		rec.Status, rec.Error = memoryFailure(last, err)
		m.logFailure(r, characterID, rec)
		return rec
	}
	wait := m.cfg.MemoryPoll
	deadline := time.Now().Add(m.cfg.MemoryConfirmWithin)
	for {
		n, last, attempts, err := m.count(ctx, characterID, r.EndUserID)
		rec.Attempts += attempts
		rec.HTTPStatus = last.StatusCode
		if err != nil {
			rec.Status, rec.Error = memoryFailure(last, err)
			m.logFailure(r, characterID, rec)
			return rec
		}
		rec.Remaining = n
		if n == 0 {
			rec.Status, rec.Error = MemoryErased, ""
			return rec
		}
		if !time.Now().Add(wait).Before(deadline) || ctx.Err() != nil {
			rec.Status = MemoryPending
			rec.Error = fmt.Sprintf("the delete-all was accepted; the list still shows %d memories after %s: the next run asks again",
				n, m.cfg.MemoryConfirmWithin)
			m.logFailure(r, characterID, rec)
			return rec
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		wait = min(2*wait, m.cfg.BackoffMax)
	}
}

// count lists the end user's memories with the character with the run's retry rules; an
// unknown end user has none.
func (m *memoryEraser) count(ctx context.Context, characterID, endUserID string) (int64, Answer, int, error) {
	var n int64
	last, attempts, err := try(ctx, m.cfg, m.limiter, func(ctx context.Context) Answer {
		var a Answer
		n, a = m.api.CountMemories(ctx, characterID, endUserID)
		return a
	})
	if err != nil && errors.Is(last.Err, ErrMemoryNotFound) {
		return 0, last, attempts, nil
	}
	return n, last, attempts, err
}

// eraseRecord asks for the deletion of the end user's record.
func (m *memoryEraser) eraseRecord(ctx context.Context, r EndUserRequest) MemoryErasure {
	rec := MemoryErasure{RequestID: r.ID, StartedAt: m.now(), Remaining: -1, Before: -1}
	if m.api == nil {
		rec.Status, rec.Error = MemoryFailed, "the run has no client for the long-term memory endpoints"
		return rec
	}
	last, attempts, err := try(ctx, m.cfg, m.limiter, func(ctx context.Context) Answer {
		return m.api.DeleteEndUser(ctx, r.EndUserID)
	})
	rec.Attempts, rec.HTTPStatus = attempts, last.StatusCode
	switch {
	case err == nil, errors.Is(last.Err, ErrMemoryNotFound):
		rec.Status = MemoryErased // accepted, or gone already
	default:
		rec.Status, rec.Error = memoryFailure(last, err)
		m.logFailure(r, "", rec)
	}
	return rec
}

// memoryFailure names how a memory request failed.
func memoryFailure(last Answer, err error) (MemoryStatus, string) {
	switch {
	case errors.Is(last.Err, ErrMemoryUnavailable):
		return MemoryUnavailable, ErrMemoryUnavailable.Error() + " (404): the sessions' deletion is not affected"
	case errors.Is(last.Err, ErrMemoryForbidden):
		return MemoryForbidden, ErrMemoryForbidden.Error() + " (403)"
	case errors.Is(err, ErrKeyRejected):
		return MemoryFailed, "the API rejected the key for the memory endpoint: " + truncate(answerText(last))
	case last.StatusCode == 0 && last.Detail == "" && last.Err == nil && err != nil:
		return MemoryFailed, truncate(err.Error()) // no answer: the run stopped first
	}
	return MemoryFailed, truncate(answerText(last))
}

func (m *memoryEraser) logFailure(r EndUserRequest, characterID string, rec MemoryErasure) {
	if m.log == nil {
		return
	}
	what := "an end user's long-term memory is not confirmed erased: the request stays open"
	if rec.Status == MemoryUnavailable {
		what = "this account or API does not offer long-term memory (404): the end user's sessions are deleted as asked, the request stays open"
	}
	m.log.Warn(what, "request", r.ID, "character_id", characterID, "status", string(rec.Status),
		"attempts", rec.Attempts, "http_status", rec.HTTPStatus, "remaining", rec.Remaining, "error", rec.Error)
}
