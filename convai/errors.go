package convai

import (
	"errors"
	"fmt"
	"strconv"
)

// ConfigError is returned by New when a Config field is invalid. Value is empty for APIKey.
type ConfigError struct {
	Field  string
	Value  string
	Reason string
}

func (e *ConfigError) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("convai config: %s: %s", e.Field, e.Reason)
	}
	return fmt.Sprintf("convai config: %s %q: %s", e.Field, e.Value, e.Reason)
}

// ErrInvalidInput is in Result.Err, with Class Permanent, when Delete refuses its arguments
// without sending anything: an empty character ID, no session IDs, an empty ID, or an ID that is
// not valid UTF-8 (the JSON encoder would silently send a different ID).
var ErrInvalidInput = errors.New("invalid input")

// ErrUnconfirmed is wrapped by the *StatusError in Result.Err when a 2xx answer is not a
// deletion confirmation.
var ErrUnconfirmed = errors.New("not a deletion confirmation")

// ErrMemoryUnavailable is wrapped by the *StatusError in Result.Err, with Class Permanent, when
// a long-term memory endpoint (ListMemories, DeleteMemory, DeleteAllMemories, DeleteEndUser)
// answered 404 without saying that the memory or end user named is unknown: this account or API
// does not offer long-term memory. It says nothing about the deletion of chat history.
var ErrMemoryUnavailable = errors.New("this account or API does not offer long-term memory")

// ErrMemoryNotFound is wrapped by the *StatusError in Result.Err, with Class Permanent, when a
// long-term memory endpoint answered 404 with one of the known texts saying that the memory or
// the end user named does not exist ("Memory not found.", "End user not found.").
var ErrMemoryNotFound = errors.New("no such memory or end user")

// StatusError is in Result.Err when the API answered with anything but a confirmation. Its
// Detail is the same text as Result.Detail and never contains the API key.
type StatusError struct {
	StatusCode int
	Class      Class
	Detail     string
	// is is what Unwrap returns besides ErrUnconfirmed: ErrMemoryUnavailable or
	// ErrMemoryNotFound for a 404 of a memory endpoint.
	is error
}

func (e *StatusError) Error() string {
	if e.Detail == "" {
		return "convai: status " + strconv.Itoa(e.StatusCode)
	}
	return "convai: " + e.Detail
}

// Unwrap returns ErrUnconfirmed for a 2xx status; ErrMemoryUnavailable or ErrMemoryNotFound for
// a 404 of a long-term memory endpoint; nil otherwise.
func (e *StatusError) Unwrap() error {
	if e.StatusCode >= 200 && e.StatusCode <= 299 {
		return ErrUnconfirmed
	}
	return e.is
}

// redactedError carries an error whose message had the API key removed, and still unwraps to
// it so errors.Is and errors.As keep working.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
