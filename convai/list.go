package convai

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// ListedSession is one element of a character's session list.
type ListedSession struct {
	// SessionID is the session's ID, never empty unless Overlong.
	SessionID string
	// Start is the element's date and time ("DD-MM-YYYY" and "HH:MM:SS", read as UTC): when the
	// session started, not when it was last active. Zero when either is missing or unreadable.
	Start time.Time
	// Overlong is set when the element's sessionID is longer than policy.MaxIDLength bytes: no
	// Convai ID is. It is not read whole (memory stays bounded whatever its length), and
	// SessionID is empty: such a session can be counted, never matched or sent.
	Overlong bool
	// Memory is what the element's is_added_to_memory said: whether Convai drew long-term
	// memory from the session.
	Memory MemoryFlag
}

// MemoryFlag is what a list element's is_added_to_memory said.
type MemoryFlag int8

// The values of a MemoryFlag. The zero value is MemoryUnstated: an element that says nothing
// readable is never taken as "not added".
const (
	// MemoryUnstated: no is_added_to_memory, or a value other than true or false.
	MemoryUnstated MemoryFlag = iota
	// MemoryNotAdded: is_added_to_memory was false.
	MemoryNotAdded
	// MemoryAdded: is_added_to_memory was true.
	MemoryAdded
)

// listDateLayout is the layout of an element's date and time, joined by a space.
const listDateLayout = "02-01-2006 15:04:05"

// ErrMalformedAnswer is wrapped by Result.Err, with Class Retryable, when List or Details got a
// 2xx whose body is not the documented shape (or ended early); the caller may try again.
var ErrMalformedAnswer = errors.New("malformed answer")

// ErrStopped is wrapped by Result.Err, with Class Permanent, when the function given to List
// returned an error; the error itself is wrapped too.
var ErrStopped = errors.New("stopped by the caller")

type listRequest struct {
	CharID string `json:"charID"`
	Limit  string `json:"limit"`
}

// List asks the API for every session of characterID (POST /character/chatHistory/list with
// limit "-1") and hands each element to fn as it is decoded: the array is read as a stream, so
// memory does not grow with the length of the list, nor with the length of any value in it (an
// element whose sessionID is over policy.MaxIDLength bytes comes as Overlong, without its ID).
// It sends one request and does not retry.
//
// Class is Confirmed only when the whole array was read (Err is nil). An answer that is not a
// JSON array of objects with a string sessionID, or that ends early, is Retryable with
// ErrMalformedAnswer; fn may then already have seen part of the list, so a caller retrying
// must not take what it saw as complete. Statuses are classified as for Delete. An error from fn
// ends the call: Permanent, with Err wrapping ErrStopped and fn's error.
func (c *Client) List(ctx context.Context, characterID string, fn func(ListedSession) error) Result {
	if err := checkID("character ID", characterID); err != nil {
		return c.failure(Permanent, err)
	}
	resp, res := c.post(ctx, c.endpoint.list, "list", listRequest{CharID: characterID, Limit: "-1"})
	if resp == nil {
		return res
	}
	defer drainClose(resp.Body)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		raw, readErr := io.ReadAll(io.LimitReader(resp.Body, MaxBody+1))
		return c.answer(ctx, resp, raw, readErr)
	}
	n, err := decodeList(resp.Body, fn)
	switch {
	case err == nil:
		return Result{Class: Confirmed, StatusCode: resp.StatusCode, Detail: fmt.Sprintf("status %d: %d sessions", resp.StatusCode, n)}
	case errors.Is(err, ErrStopped):
		return Result{Class: Permanent, StatusCode: resp.StatusCode, Detail: sanitize(err.Error(), c.secrets), Err: c.redact(err)}
	}
	return c.malformed(ctx, resp.StatusCode, fmt.Sprintf("status %d is not a session list (after %d sessions)", resp.StatusCode, n), err)
}

// malformed is the Result of a 2xx whose body could not be read as the documented shape.
func (c *Client) malformed(ctx context.Context, code int, text string, cause error) Result {
	detail := sanitize(text+": "+cause.Error(), c.secrets)
	err := fmt.Errorf("%w: %s: %w", ErrMalformedAnswer, text, withCtxErr(ctx, cause))
	return Result{Class: Retryable, StatusCode: code, Detail: detail, Err: c.redact(err)}
}
