package job

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// MemoryCounter lists an end user's long-term memories with a character, whole, and does not
// retry: the job retries with its own rules. The answer's Err wraps ErrMemoryUnavailable,
// ErrMemoryForbidden or ErrMemoryNotFound where those apply.
type MemoryCounter interface {
	// ListMemoryCount returns how many memories the list showed and its total_count. Only a
	// Confirmed answer (every page read) counts.
	ListMemoryCount(ctx context.Context, characterID, endUserID string) (MemoryCount, Answer)
}

// MemoryCount is what one whole list of an end user's memories with a character showed.
type MemoryCount struct {
	// Listed counts the memories the list's pages held.
	Listed int64
	// TotalCount is the list's total_count.
	TotalCount int64
}

// Empty reports whether the list showed no memory: none listed and a total_count of 0.
func (c MemoryCount) Empty() bool { return c.Listed == 0 && c.TotalCount == 0 }

// ErasedMemory is an end user's memory with a character that memory erasures say is erased:
// what a verification lists again.
type ErasedMemory struct {
	EndUserID   string
	CharacterID string
	// ErasureIDs are the memory erasures (one per request of the end user) whose last
	// erasure of the character says erased.
	ErasureIDs []int64
}

// RecheckResult is what a re-check of an erased memory found.
type RecheckResult string

// The results of a memory re-check (retention.memory_rechecks).
const (
	// RecheckGone: a whole list showed no memory: the memory stayed gone.
	RecheckGone RecheckResult = "gone"
	// RecheckFound: a whole list showed memories: the erasure is refuted, and the next run
	// erases that end user's memory with the character again.
	RecheckFound RecheckResult = "found"
	// RecheckNotChecked: no whole list could be read (404, 403, another failure): nothing is
	// confirmed and nothing refuted.
	RecheckNotChecked RecheckResult = "not_checked"
)

// The classes of a re-check that could not be made (MemoryRecheck.Failure).
const (
	RecheckUnavailable = "unavailable" // 404: the account or API does not offer long-term memory
	RecheckNotFound    = "not_found"   // 404 naming an unknown end user
	RecheckForbidden   = "forbidden"   // 403: the key may not touch the character
	RecheckFailed      = "failed"      // anything else, after the retries
)

// MemoryRecheck is one re-check as a verification records it: one list, against every erasure
// of the end user and character it checks.
type MemoryRecheck struct {
	ErasureIDs []int64
	Result     RecheckResult
	// Count is what the list showed; only for gone and found.
	Count MemoryCount
	// Failure is the class of a not_checked re-check; never an answer's body.
	Failure    string
	HTTPStatus int
	Attempts   int
	// ListedAt is the database's clock, taken before the list was asked for.
	ListedAt time.Time
}

// MemoryRecheckStore is what a verification needs to re-check erased memories. source.Verify
// implements it.
type MemoryRecheckStore interface {
	// ErasedMemories returns the end users' memories with characters in scope whose last
	// erasure says erased, sorted by character and end user.
	ErasedMemories(ctx context.Context, scope VerifyScope) ([]ErasedMemory, error)
	// RecordMemoryRecheck records one re-check.
	RecordMemoryRecheck(ctx context.Context, r MemoryRecheck) error
}

// MemoryRechecks counts a verification's re-checks of erased memories, one per end user and
// character listed.
type MemoryRechecks struct {
	// StayedGone counts the lists that showed no memory.
	StayedGone int64 `json:"stayed_gone"`
	// FoundAgain counts the lists that showed memories: those erasures are refuted, and the
	// next run erases again.
	FoundAgain int64 `json:"found_again"`
	// NotChecked counts the memories no whole list could be read for.
	NotChecked int64 `json:"not_checked"`
	// Found names the first MaxPresentShown end users and characters found again, as
	// "END_USER/CHARACTER".
	Found []string `json:"found,omitempty"`
}

// MemoryRecheckObserver is told the result of each re-check of an erased memory, as it is
// recorded. A VerifyObserver may implement it.
type MemoryRecheckObserver interface {
	MemoryRechecked(RecheckResult)
}

// recheckMemories lists again the memories of every end user and character in scope whose
// last erasure says erased, and records each list. Nothing is listed when there is none: the
// memory endpoints are not called otherwise. The error returned stops the verification: the
// store's, a rejected key, an ended ctx.
func (v *verifier) recheckMemories(ctx context.Context) error {
	erased, err := v.store.ErasedMemories(ctx, v.scope)
	if err != nil {
		return fmt.Errorf("read the erased memories to re-check: %w", err)
	}
	if len(erased) == 0 {
		return nil
	}
	sum := &MemoryRechecks{}
	v.sum.MemoryRechecks = sum
	api, _ := v.lister.(MemoryCounter)
	for _, m := range erased {
		listedAt, err := v.store.Now(ctx)
		if err != nil {
			return err
		}
		r := v.recheck(ctx, api, m)
		if errors.Is(r.err, ErrKeyRejected) {
			return fmt.Errorf("list the memories of end user %s with %s: %w", m.EndUserID, m.CharacterID, r.err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.ListedAt = listedAt
		if err := v.store.RecordMemoryRecheck(ctx, r.MemoryRecheck); err != nil {
			return fmt.Errorf("record the re-check of end user %s's memory with %s: %w", m.EndUserID, m.CharacterID, err)
		}
		if o, ok := v.obs.(MemoryRecheckObserver); ok {
			o.MemoryRechecked(r.Result)
		}
		switch r.Result {
		case RecheckGone:
			sum.StayedGone++
		case RecheckFound:
			sum.FoundAgain++
			if len(sum.Found) < MaxPresentShown {
				sum.Found = append(sum.Found, m.EndUserID+"/"+m.CharacterID)
			}
			v.log.Warn("an erased long-term memory is there again: the erasure is refuted, and the next run erases it again",
				"end_user_id", m.EndUserID, "character_id", m.CharacterID, "listed", r.Count.Listed, "total_count", r.Count.TotalCount)
		default:
			sum.NotChecked++
			v.log.Warn("could not list an erased long-term memory again: it is neither confirmed nor refuted",
				"end_user_id", m.EndUserID, "character_id", m.CharacterID, "failure", r.Failure, "http_status", r.HTTPStatus)
		}
	}
	return nil
}

// recheckAnswer is a re-check, with the error that ended its list, if any.
type recheckAnswer struct {
	MemoryRecheck
	err error
}

// recheck lists the memories of one end user with one character, with the verification's
// limiter and retry rules, and says what the list showed: gone or found only from a whole list.
func (v *verifier) recheck(ctx context.Context, api MemoryCounter, m ErasedMemory) recheckAnswer {
	r := recheckAnswer{MemoryRecheck: MemoryRecheck{ErasureIDs: m.ErasureIDs, Result: RecheckNotChecked, Failure: RecheckFailed}}
	if api == nil {
		r.err = errors.New("the verification has no client for the long-term memory endpoints")
		return r
	}
	var count MemoryCount
	last, attempts, err := try(ctx, v.cfg, v.limiter, func(ctx context.Context) Answer {
		var a Answer
		count, a = api.ListMemoryCount(ctx, m.CharacterID, m.EndUserID)
		return a
	})
	r.Attempts, r.HTTPStatus, r.err = attempts, last.StatusCode, err
	switch {
	case err == nil && count.Empty():
		r.Result, r.Failure, r.Count = RecheckGone, "", count
	case err == nil:
		r.Result, r.Failure, r.Count = RecheckFound, "", count
	case errors.Is(last.Err, ErrMemoryUnavailable):
		r.Failure = RecheckUnavailable
	case errors.Is(last.Err, ErrMemoryNotFound):
		r.Failure = RecheckNotFound
	case errors.Is(last.Err, ErrMemoryForbidden):
		r.Failure = RecheckForbidden
	}
	return r
}
