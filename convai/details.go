package convai

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"time"
)

// MaxDetailsBody is the largest details answer Details reads; a longer one is Retryable with
// ErrMalformedAnswer.
const MaxDetailsBody = 16 << 20

// Details is what Details learned about one session.
type Details struct {
	// Interactions is the number of interactions that carried a readable timestamp.
	Interactions int
	// Latest is the latest of those timestamps, in UTC; zero when there was none.
	Latest time.Time
}

type detailsRequest struct {
	CharID    string `json:"charID"`
	SessionID string `json:"sessionID"`
}

// timestampKeys are the member names read as an interaction's time, compared without ASCII case.
var timestampKeys = []string{"timestamp", "time_stamp", "created_at", "createdat", "time", "datetime"}

// timestampLayouts are the layouts a timestamp string is read with; one without a zone is UTC.
var timestampLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	"02-01-2006 15:04:05",
}

// Details asks the API for one session's interactions (POST /character/chatHistory/details) and
// returns how many carried a timestamp and the latest one. The shape of the answer is not
// documented beyond "the interactions, each with a timestamp", so it is read defensively: any
// JSON value, in which every object with a member named timestamp, created_at, time or datetime
// (any ASCII case) holding a date string (RFC 3339, or "YYYY-MM-DD HH:MM:SS[.fff]" read as UTC)
// or a number of seconds since 1970 (milliseconds when above 10^11) counts as one interaction. A
// 2xx that is not JSON, or longer than MaxDetailsBody, is Retryable with ErrMalformedAnswer.
// Statuses are classified as for Delete. It sends one request and does not retry.
func (c *Client) Details(ctx context.Context, characterID, sessionID string) (Details, Result) {
	if err := checkID("character ID", characterID); err != nil {
		return Details{}, c.failure(Permanent, err)
	}
	if err := checkID("session ID", sessionID); err != nil {
		return Details{}, c.failure(Permanent, err)
	}
	resp, res := c.post(ctx, c.endpoint.details, "details", detailsRequest{CharID: characterID, SessionID: sessionID})
	if resp == nil {
		return Details{}, res
	}
	defer drainClose(resp.Body)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		raw, readErr := io.ReadAll(io.LimitReader(resp.Body, MaxBody+1))
		return Details{}, c.answer(ctx, resp, raw, readErr)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, MaxDetailsBody+1))
	what := fmt.Sprintf("status %d is not a session's details", resp.StatusCode)
	switch {
	case err != nil:
		return Details{}, c.malformed(ctx, resp.StatusCode, what, err)
	case len(raw) > MaxDetailsBody:
		return Details{}, c.malformed(ctx, resp.StatusCode, what, fmt.Errorf("body over %d bytes", MaxDetailsBody))
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return Details{}, c.malformed(ctx, resp.StatusCode, what, err)
	}
	var d Details
	walkInteractions(v, &d)
	return d, Result{Class: Confirmed, StatusCode: resp.StatusCode,
		Detail: fmt.Sprintf("status %d: %d interactions", resp.StatusCode, d.Interactions)}
}

// walkInteractions counts in d every object of v that carries a readable timestamp.
func walkInteractions(v any, d *Details) {
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			walkInteractions(e, d)
		}
	case map[string]any:
		if t, ok := objectTime(x); ok {
			d.Interactions++
			if d.Interactions == 1 || t.After(d.Latest) {
				d.Latest = t
			}
		}
		for _, e := range x {
			walkInteractions(e, d)
		}
	}
}

// objectTime returns the timestamp of an object, by the first of timestampKeys it has.
func objectTime(obj map[string]any) (time.Time, bool) {
	for _, want := range timestampKeys {
		for k, v := range obj {
			if !asciiEqualFold(k, want) {
				continue
			}
			if t, ok := parseTimestamp(v); ok {
				return t, true
			}
		}
	}
	return time.Time{}, false
}

// parseTimestamp reads a timestamp string or a number of seconds (or milliseconds) since 1970.
func parseTimestamp(v any) (time.Time, bool) {
	switch x := v.(type) {
	case string:
		s := strings.TrimSpace(x)
		for _, layout := range timestampLayouts {
			if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
				return t.UTC(), true
			}
		}
	case json.Number:
		f, err := x.Float64()
		if err != nil || math.IsNaN(f) || f <= 0 || f > 1e15 {
			return time.Time{}, false
		}
		if f > 1e11 {
			return time.UnixMilli(int64(f)).UTC(), true
		}
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(frac*1e9)).UTC(), true
	}
	return time.Time{}, false
}
