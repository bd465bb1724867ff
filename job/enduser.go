package job

import (
	"context"
	"errors"
	"time"

	"github.com/convai-retention/retention/policy"
)

// The errors a MemoryAPI's Answer.Err wraps, so that the job can tell them apart without
// importing the client.
var (
	// ErrMemoryUnavailable: the memory route answered 404 as for an account or API without
	// long-term memory. Not a failure of the sessions' deletion.
	ErrMemoryUnavailable = errors.New("this account or API does not offer long-term memory")
	// ErrMemoryForbidden: the memory route answered 403: the key may not touch the character.
	ErrMemoryForbidden = errors.New("the key may not touch this character's long-term memory")
	// ErrMemoryNotFound: the memory route answered 404 naming an unknown end user or memory.
	ErrMemoryNotFound = errors.New("no such end user or memory")
)

// MemoryAPI erases long-term memory at the API. Each method sends one request and does not
// retry; the job retries with its own rules. The answers' Err wrap ErrMemoryUnavailable,
// ErrMemoryForbidden or ErrMemoryNotFound where those apply.
type MemoryAPI interface {
	// DeleteAllMemories asks that every memory of endUserID with characterID be deleted.
	// Confirmed means accepted (the deletion may still be in progress), never done.
	DeleteAllMemories(ctx context.Context, characterID, endUserID string) Answer
	// CountMemories lists the memories of endUserID with characterID, whole, and returns how
	// many there are (the larger of those listed and the list's total_count). Only a Confirmed
	// answer counts.
	CountMemories(ctx context.Context, characterID, endUserID string) (int64, Answer)
	// DeleteEndUser asks that the end user's record, and their memories with every character,
	// be deleted. Confirmed means accepted.
	DeleteEndUser(ctx context.Context, endUserID string) Answer
}

// EndUserRequest is a request that every session of an end user (with every character they
// talked to, or one) and their long-term memory with those characters be erased.
type EndUserRequest struct {
	ID        int64
	EndUserID string
	// CharacterID is the one character asked for; "" asks for every character the end user
	// talked to.
	CharacterID string
	// Record asks that the end user's record at Convai be deleted once every memory is gone.
	Record      bool
	RequestedAt time.Time
	DueAt       time.Time
}

// EndUserCharacter is one character of an end user's request, as the store sees it.
type EndUserCharacter struct {
	CharacterID string
	// ErasureID is the erasure request (the request's child) that deletes the end user's
	// sessions of the character; its claims are sealed like any erasure request's.
	ErasureID int64
	// Sessions are the end user's sessions of the character not yet deleted.
	Sessions []policy.Record
	// Holds are the active holds that block the character: on the character, or on one of
	// the end user's sessions of it. Holds win: neither its sessions nor its memory are erased.
	Holds []int64
	// MemoryErased is set when the character's last memory erasure says erased.
	MemoryErased bool
}

// EndUserWork is an open end user's request with every character it covers, in every shard.
type EndUserWork struct {
	Request    EndUserRequest
	Characters []EndUserCharacter
	// RecordErased is set when the end user's record was deleted already.
	RecordErased bool
	// Reopened marks a completed request whose erased memory with some characters a
	// verification found again: Characters are those only, without sessions, and the run
	// erases their memory again. The request stays completed.
	Reopened bool
}

// EndUserReader reads the open end users' requests, and the reopened ones. source.Store
// implements it.
type EndUserReader interface {
	OpenEndUserErasures(ctx context.Context) ([]EndUserWork, error)
}

// EndUserRunStore is what a run writes for end users' requests. source.Run implements it.
type EndUserRunStore interface {
	// ExpandEndUserRequests files, for every open request, the children of the characters seen
	// since it was filed; it returns how many.
	ExpandEndUserRequests(ctx context.Context) (int, error)
	// RecordMemoryErasure records one memory erasure.
	RecordMemoryErasure(ctx context.Context, m MemoryErasure) error
	// CompleteEndUserErasure completes what is done of the request, and returns its state:
	// completed, blocked or open.
	CompleteEndUserErasure(ctx context.Context, requestID int64) (string, error)
}

// MemoryStatus is how one memory erasure ended.
type MemoryStatus string

// The statuses of a memory erasure (retention.memory_erasures).
const (
	// MemoryErased: the delete-all was accepted and a list then showed no memory (for the
	// end user's record: its deletion was accepted).
	MemoryErased MemoryStatus = "erased"
	// MemoryPending: accepted, but the list still showed memories when the run stopped
	// waiting: the next run asks again.
	MemoryPending MemoryStatus = "pending"
	// MemoryFailed: no accepted delete-all or no whole list, after the retries.
	MemoryFailed MemoryStatus = "failed"
	// MemoryUnavailable: 404: the account or API does not offer long-term memory.
	MemoryUnavailable MemoryStatus = "unavailable"
	// MemoryForbidden: 403: the key may not touch the character.
	MemoryForbidden MemoryStatus = "forbidden"
)

// MemoryErasure is one memory erasure as a run records it.
type MemoryErasure struct {
	RequestID int64
	// CharacterID is "" for the deletion of the end user's record.
	CharacterID string
	Status      MemoryStatus
	Attempts    int
	// HTTPStatus is the last answer's status; 0 for none.
	HTTPStatus int
	// Remaining is the last whole list's count; -1 when no list was read whole.
	Remaining int64
	// Before is what a whole list showed before the delete-all; -1 when none was read.
	Before int64
	Error  string
	// StartedAt is when the erasure started, on the database's clock.
	StartedAt time.Time
}

// EndUserSummary is what a run did (a dry-run: would do) about end users' requests.
type EndUserSummary struct {
	// Open counts the open requests when the run started; Characters the characters of the
	// run's shard they cover (and those of the reopened requests).
	Open       int `json:"open"`
	Characters int `json:"characters"`
	// Reopened lists the completed requests whose erased memory a verification found again:
	// the run erases it again (counted in Erased, Pending, ...); they stay completed.
	Reopened []int64 `json:"reopened,omitempty"`
	// Erased, Pending, Failed, Unavailable and Forbidden count this run's memory erasures by
	// status (see MemoryStatus); a dry-run counts in ToErase the ones it would do.
	Erased      int `json:"memory_erased"`
	Pending     int `json:"memory_pending"`
	Failed      int `json:"memory_failed"`
	Unavailable int `json:"memory_unavailable,omitempty"`
	Forbidden   int `json:"memory_forbidden,omitempty"`
	ToErase     int `json:"memory_to_erase,omitempty"`
	// RecordsErased counts the end users' records deleted.
	RecordsErased int `json:"records_erased,omitempty"`
	// Completed, Blocked and Left list the requests by their state when the run ended.
	Completed []int64 `json:"completed,omitempty"`
	Blocked   []int64 `json:"blocked,omitempty"`
	Left      []int64 `json:"left_open,omitempty"`
}
