package convai

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// The bounds of a memory list.
const (
	// MaxMemoryPageSize is the largest page_size the API documents (1 to 100), and the default.
	MaxMemoryPageSize = 100
	// DefaultMaxMemoryPages is the most pages ListMemories reads unless MemoryQuery.MaxPages
	// says otherwise: 100,000 memories of one end user with one character at the default page
	// size. A list that goes on is not read whole.
	DefaultMaxMemoryPages = 1000
	// MaxMemoryPageBody is the largest page ListMemories reads; a longer one is Retryable with
	// ErrMalformedAnswer. 100 memories of 40 KiB each fit.
	MaxMemoryPageBody = 4 << 20
	// MaxMemoryTotal is the largest total_count ListMemories accepts; a larger one is no count.
	MaxMemoryTotal = 1_000_000_000
)

// MemoryQuery names the long-term memories of one end user with one character, and how to page
// through them.
type MemoryQuery struct {
	// CharacterID and EndUserID are required: non-empty, valid UTF-8.
	CharacterID string
	EndUserID   string
	// PageSize is the page_size sent, 1 to MaxMemoryPageSize; 0 means MaxMemoryPageSize.
	PageSize int
	// MaxPages is the most pages read; 0 means DefaultMaxMemoryPages.
	MaxPages int
}

// Memory is one long-term memory as the list gave it. Its text and metadata are read, checked
// and dropped, never kept: they are what an erasure removes, not what it needs.
type Memory struct {
	// ID is the memory's id, never empty unless Overlong.
	ID string
	// Overlong is set when the id is longer than policy.MaxIDLength bytes: such a memory can be
	// counted, never sent to DeleteMemory. ID is then empty.
	Overlong bool
	// CreatedAt and UpdatedAt are its created_at and updated_at, in UTC; zero when missing or
	// unreadable (see ListMemories).
	CreatedAt time.Time
	UpdatedAt time.Time
}

// MemoryList is what ListMemories read.
type MemoryList struct {
	// Listed counts the memories handed to fn.
	Listed int
	// TotalCount is the total_count of the last page read.
	TotalCount int64
	// Pages counts the pages read whole.
	Pages int
}

// Empty reports whether the list shows no memory at all: nothing listed and a total_count of 0.
// Only a Confirmed list is evidence, and only of the moment it was read.
func (l MemoryList) Empty() bool { return l.Listed == 0 && l.TotalCount == 0 }

type memoryListRequest struct {
	CharacterID string `json:"character_id"`
	EndUserID   string `json:"end_user_id"`
	Page        int    `json:"page"`
	PageSize    int    `json:"page_size"`
}

type memoryDeleteRequest struct {
	CharacterID string `json:"character_id"`
	EndUserID   string `json:"end_user_id"`
	MemoryID    string `json:"memory_id"`
}

type memoryDeleteAllRequest struct {
	CharacterID string `json:"character_id"`
	EndUserID   string `json:"end_user_id"`
}

type endUserDeleteRequest struct {
	EndUserID string `json:"end_user_id"`
}

// check validates q and fills its defaults.
func (q MemoryQuery) check() (MemoryQuery, error) {
	if err := checkID("character ID", q.CharacterID); err != nil {
		return q, err
	}
	if err := checkID("end user ID", q.EndUserID); err != nil {
		return q, err
	}
	switch {
	case q.PageSize == 0:
		q.PageSize = MaxMemoryPageSize
	case q.PageSize < 1 || q.PageSize > MaxMemoryPageSize:
		return q, fmt.Errorf("%w: page size %d is not between 1 and %d", ErrInvalidInput, q.PageSize, MaxMemoryPageSize)
	}
	switch {
	case q.MaxPages == 0:
		q.MaxPages = DefaultMaxMemoryPages
	case q.MaxPages < 0:
		return q, fmt.Errorf("%w: at most %d pages", ErrInvalidInput, q.MaxPages)
	}
	return q, nil
}

// ListMemories reads the long-term memories of q.EndUserID with q.CharacterID (POST
// /memory/list under Config.MemoryBaseURL), page by page from page 1, and hands each memory to
// fn once its page has been read and checked whole. It sends one request per page, at most
// q.MaxPages of them, and does not retry.
//
// What it assumes of the answer, which Convai documents only through its SDKs: a page is one
// JSON object with "memories" (an array of at most page_size objects, each with a string "id"),
// "total_count" (a whole number from 0 to MaxMemoryTotal) and "has_more" (true or false), each
// spelled so and given once; other members are skipped, except one whose name says something
// failed (error, failed, ...) with a value that is not empty, which makes the page no list. A
// memory's "created_at" and "updated_at" are read like an interaction's timestamp in Details
// (RFC 3339, "YYYY-MM-DD HH:MM:SS" as UTC, or seconds or milliseconds since 1970) and kept
// only inside the years 1 to 9999; otherwise they are zero. The list ends at the first page
// whose has_more is false; a has_more on an empty page, or past q.MaxPages, is no whole list.
//
// Class is Confirmed only when every page was read (Err is nil). A page that is not that shape
// or is over MaxMemoryPageBody is Retryable with ErrMalformedAnswer; fn may then already have
// seen earlier pages, so a caller retrying must not take what it saw as complete. Statuses are
// classified as for Delete, except that a 404 wraps ErrMemoryUnavailable (or ErrMemoryNotFound,
// when its body says so with a known text). An error from fn ends the call: Permanent, with Err
// wrapping ErrStopped and fn's error.
func (c *Client) ListMemories(ctx context.Context, q MemoryQuery, fn func(Memory) error) (MemoryList, Result) {
	q, err := q.check()
	if err != nil {
		return MemoryList{}, c.failure(Permanent, err)
	}
	var list MemoryList
	for page := 1; ; page++ {
		resp, res := c.post(ctx, c.endpoint.memoryList, "memory list",
			memoryListRequest{CharacterID: q.CharacterID, EndUserID: q.EndUserID, Page: page, PageSize: q.PageSize})
		if resp == nil {
			return list, res
		}
		p, res := c.memoryPage(ctx, resp, page, q.PageSize)
		if res.Class != Confirmed {
			return list, res
		}
		for _, m := range p.memories {
			if err := fn(m); err != nil {
				err = fmt.Errorf("%w: %w", ErrStopped, err)
				return list, Result{Class: Permanent, StatusCode: res.StatusCode, Detail: sanitize(err.Error(), c.secrets), Err: c.redact(err)}
			}
			list.Listed++
		}
		list.TotalCount, list.Pages = p.total, page
		switch {
		case !p.hasMore:
			return list, Result{Class: Confirmed, StatusCode: res.StatusCode,
				Detail: fmt.Sprintf("status %d: %d memories in %d pages, total_count %d", res.StatusCode, list.Listed, list.Pages, list.TotalCount)}
		case len(p.memories) == 0:
			return list, c.malformed(ctx, res.StatusCode, fmt.Sprintf("page %d is not a page of memories", page),
				errors.New("has_more is true on an empty page"))
		case page >= q.MaxPages:
			return list, c.malformed(ctx, res.StatusCode, fmt.Sprintf("the memory list is not read whole (after %d memories)", list.Listed),
				fmt.Errorf("has_more is still true after %d pages", q.MaxPages))
		}
	}
}

// memoryPage reads and checks one page of a memory list, and closes resp's body.
func (c *Client) memoryPage(ctx context.Context, resp *http.Response, page, pageSize int) (memoryPage, Result) {
	defer drainClose(resp.Body)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		raw, readErr := io.ReadAll(io.LimitReader(resp.Body, MaxBody+1))
		return memoryPage{}, c.memoryStatus(ctx, resp, raw, readErr)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, MaxMemoryPageBody+1))
	what := fmt.Sprintf("page %d: status %d is not a page of memories", page, resp.StatusCode)
	switch {
	case err != nil:
		return memoryPage{}, c.malformed(ctx, resp.StatusCode, what, err)
	case len(raw) > MaxMemoryPageBody:
		return memoryPage{}, c.malformed(ctx, resp.StatusCode, what, fmt.Errorf("body over %d bytes", MaxMemoryPageBody))
	}
	p, err := parseMemoryPage(raw, pageSize)
	if err != nil {
		return memoryPage{}, c.malformed(ctx, resp.StatusCode, what, err)
	}
	return p, Result{Class: Confirmed, StatusCode: resp.StatusCode}
}

// DeleteMemory asks the API to delete one memory (POST /memory/delete). It is Confirmed only
// for a 2xx whose body is one JSON object with "deleted" exactly true and "memory_id" exactly
// memoryID, each given once, and nothing at any depth that names a failure or says nothing was
// deleted (the rules of Delete's confirmation). Any other 2xx is Retryable with ErrUnconfirmed.
// Statuses are classified as for ListMemories: a memory already gone may answer 404 with
// ErrMemoryNotFound, which a caller confirms by listing. It sends one request and does not retry.
func (c *Client) DeleteMemory(ctx context.Context, characterID, endUserID, memoryID string) Result {
	for _, in := range [][2]string{{"character ID", characterID}, {"end user ID", endUserID}, {"memory ID", memoryID}} {
		if err := checkID(in[0], in[1]); err != nil {
			return c.failure(Permanent, err)
		}
	}
	req := memoryDeleteRequest{CharacterID: characterID, EndUserID: endUserID, MemoryID: memoryID}
	return c.memoryCall(ctx, c.endpoint.memoryDelete, "memory delete", req, func(raw []byte, _ int) (string, string) {
		return memoryDeleted(raw, memoryID)
	})
}

// DeleteAllMemories asks the API to delete every memory of endUserID with characterID (POST
// /memory/delete-all). The deletion is asynchronous: Confirmed means only that the API accepted
// it, done or in progress, never that the memories are gone. The caller confirms with
// ListMemories (MemoryList.Empty), and again later.
//
// What it assumes of the answer, which Convai documents only as "deletion in progress": a 2xx
// accepts the request when its body is one JSON object in which a string "status", "message",
// "detail" or "state" speaks of progress ("Deletion in progress", "IN_PROGRESS") or is exactly
// "SUCCESSFULLY DELETED", or "deleted" or "success" is exactly true; and in which nothing at any
// depth names a failure or says nothing was deleted, no such text speaks of failure, refusal or
// negation, and none of those members is given twice. A 202 with an empty body accepts it too.
// Any other 2xx is Retryable with ErrUnconfirmed. Statuses are classified as for ListMemories.
// It sends one request and does not retry.
func (c *Client) DeleteAllMemories(ctx context.Context, characterID, endUserID string) Result {
	if err := checkID("character ID", characterID); err != nil {
		return c.failure(Permanent, err)
	}
	if err := checkID("end user ID", endUserID); err != nil {
		return c.failure(Permanent, err)
	}
	return c.memoryCall(ctx, c.endpoint.memoryDeleteAll, "memory delete-all",
		memoryDeleteAllRequest{CharacterID: characterID, EndUserID: endUserID}, accepted)
}

// DeleteEndUser asks the API to delete an end user and their memories with every character of
// the account (POST /user/end-users/delete). Its answer is not documented at all; it is read
// like DeleteAllMemories' (a deletion done, or in progress), and Confirmed likewise says only
// that the API accepted it: the caller confirms with ListMemories for each character. Statuses
// are classified as for ListMemories. It sends one request and does not retry.
func (c *Client) DeleteEndUser(ctx context.Context, endUserID string) Result {
	if err := checkID("end user ID", endUserID); err != nil {
		return c.failure(Permanent, err)
	}
	return c.memoryCall(ctx, c.endpoint.endUserDelete, "end user delete", endUserDeleteRequest{EndUserID: endUserID}, accepted)
}

// memoryCall sends one request of a memory deletion to url (see post) and classifies the answer; shape
// says what a 2xx body (at most MaxBody bytes) confirms: what it says ("deleted", "deletion in
// progress") when it does, else why it does not.
func (c *Client) memoryCall(ctx context.Context, url, what string, request any, shape func(raw []byte, code int) (says, why string)) Result {
	resp, res := c.post(ctx, url, what, request)
	if resp == nil {
		return res
	}
	defer drainClose(resp.Body)
	raw, readErr := io.ReadAll(io.LimitReader(resp.Body, MaxBody+1))
	code := resp.StatusCode
	if code < 200 || code > 299 {
		return c.memoryStatus(ctx, resp, raw, readErr)
	}
	var text string
	switch {
	case readErr != nil:
		text = fmt.Sprintf("status %d is not a confirmation of the %s: reading the body failed: %v", code, what, readErr)
	case len(raw) > MaxBody:
		text = fmt.Sprintf("status %d is not a confirmation of the %s: body over %d bytes", code, what, MaxBody)
	default:
		says, why := shape(raw, code)
		if says != "" {
			return Result{Class: Confirmed, StatusCode: code, Detail: fmt.Sprintf("status %d: %s", code, says)}
		}
		text = fmt.Sprintf("status %d is not a confirmation of the %s: %s", code, what, why)
	}
	detail := sanitize(text, c.secrets)
	var err error = &StatusError{StatusCode: code, Class: Retryable, Detail: detail}
	if readErr != nil {
		err = fmt.Errorf("%w: read body: %w", err, withCtxErr(ctx, readErr))
	}
	return Result{Class: Retryable, StatusCode: code, Detail: detail, Err: c.redact(err)}
}

// memoryStatus classifies a memory endpoint's answer that is not a 2xx: as Delete's, except
// that a 404 is Permanent and wraps ErrMemoryNotFound when its body says, with a known text,
// that the memory or end user is unknown, and ErrMemoryUnavailable otherwise.
func (c *Client) memoryStatus(ctx context.Context, resp *http.Response, raw []byte, readErr error) Result {
	if resp.StatusCode != http.StatusNotFound {
		return c.answer(ctx, resp, raw, readErr)
	}
	is, text := ErrMemoryUnavailable, "status 404: "+ErrMemoryUnavailable.Error()
	if len(raw) <= MaxBody {
		if msg := bodyMessage(raw); memoryNotFoundMessages[msg] {
			is, text = ErrMemoryNotFound, "status 404: "+msg
		}
	}
	detail := sanitize(text, c.secrets)
	var err error = &StatusError{StatusCode: http.StatusNotFound, Class: Permanent, Detail: detail, is: is}
	if readErr != nil {
		err = fmt.Errorf("%w: read body: %w", err, withCtxErr(ctx, readErr))
	}
	return Result{Class: Permanent, StatusCode: http.StatusNotFound, Detail: detail, Err: c.redact(err)}
}

// memoryNotFoundMessages are the known texts of a 404 that names an unknown memory or end user
// rather than a route the API does not serve.
var memoryNotFoundMessages = map[string]bool{
	"Memory not found.":   true,
	"End user not found.": true,
}
