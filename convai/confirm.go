package convai

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
)

// maxFailureDepth bounds how deep confirms looks into nested objects and arrays for a member
// naming a failure; a body nested deeper is not a confirmation.
const maxFailureDepth = 32

// confirms reports whether body is an unambiguous deletion confirmation: one JSON object, with
// exactly one member whose name folds to "status", that name spelled exactly "status", its value
// the string "SUCCESSFULLY DELETED" exactly (no other case, no surrounding space), no member at
// any depth that names a failure (failed_ids, errors, ERROR, failed, rejected, ...) with a value
// other than null, false, 0, "", [] or {}, and no member at any depth that speaks of deletion or
// success (deleted, deleted_count, success, ok, removed, ...) with a value saying none (null,
// false, a number not above 0, "", "false", "0", "no", "none", [] or {}). When it does not, why
// says what was wrong, for the answer's detail; why is empty for a body that is not such an
// object at all.
func confirms(body []byte) (ok bool, why string) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return false, ""
	}
	statuses, confirmed := 0, false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return false, ""
		}
		name, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return false, ""
		}
		switch {
		case strings.EqualFold(name, "status"):
			statuses++
			var s string
			confirmed = name == "status" && json.Unmarshal(raw, &s) == nil && s == confirmation
		default:
			if why, err := denial(name, raw, 0); err != nil {
				return false, ""
			} else if why != "" {
				return false, why
			}
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return false, ""
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) { // nothing may follow the object
		return false, ""
	}
	switch {
	case statuses > 1:
		return false, "it gives its status more than once"
	case !confirmed:
		return false, ""
	}
	return true, ""
}

// denial says why the member name, whose value is raw, or anything inside raw, denies a
// confirmation: it names a failure with a non-empty value, or speaks of deletion or success with
// a value saying none. It returns "" when nothing does. name is "" for an array element.
func denial(name string, raw json.RawMessage, depth int) (string, error) {
	switch {
	case name == "":
	case namesFailure(name):
		if !emptyJSON(raw) {
			return "it also names a failure (" + memberLabel(name) + ")", nil
		}
	case namesDeletion(name) && saysNone(raw):
		return "it also says nothing was deleted (" + memberLabel(name) + ")", nil
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || (raw[0] != '{' && raw[0] != '[') {
		return "", nil
	}
	if depth >= maxFailureDepth {
		return "", errors.New("nested too deep")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	open, err := dec.Token()
	if err != nil {
		return "", err
	}
	for dec.More() {
		member := ""
		if open == json.Delim('{') {
			tok, err := dec.Token()
			if err != nil {
				return "", err
			}
			member, _ = tok.(string)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return "", err
		}
		if why, err := denial(member, v, depth+1); err != nil || why != "" {
			return why, err
		}
	}
	return "", nil
}

// knownMembers are the member names a Detail may quote; any other name (the body chooses it, and
// may put the key in it) is described instead.
var knownMembers = map[string]bool{
	"error": true, "ERROR": true, "errors": true, "err": true, "errs": true,
	"failed": true, "failed_ids": true, "failedIds": true, "failures": true, "failure": true,
	"rejected": true, "rejected_ids": true, "not_deleted": true, "undeleted": true,
	"deleted": true, "deleted_count": true, "deletedCount": true, "deleted_ids": true,
	"success": true, "successful": true, "ok": true, "removed": true, "removed_count": true,
}

// memberLabel is name when it is one of knownMembers, else a description of it.
func memberLabel(name string) string {
	if knownMembers[name] {
		return name
	}
	return "a member with another name"
}

// foldName lowers a member name and drops "_", "-" and spaces.
func foldName(name string) string {
	return strings.ToLower(strings.NewReplacer("_", "", "-", "", " ", "").Replace(name))
}

// namesFailure reports whether a member name says that something failed: it contains "fail",
// "error", "reject", "undeleted" or "notdeleted" once folded to lower case without "_", "-" and
// spaces, or it is "err" or "errs".
func namesFailure(name string) bool {
	n := foldName(name)
	if n == "err" || n == "errs" {
		return true
	}
	for _, w := range []string{"fail", "error", "reject", "undeleted", "notdeleted"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// namesDeletion reports whether a member name speaks of deletion or success, so that a value
// saying none means nothing was deleted: it is "ok", or contains "deleted", "removed", "success"
// or "succeeded" once folded like namesFailure. A name that names a failure is judged by
// namesFailure instead.
func namesDeletion(name string) bool {
	n := foldName(name)
	if n == "ok" {
		return true
	}
	for _, w := range []string{"deleted", "removed", "success", "succeeded"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// saysNone reports whether raw says none: what emptyJSON accepts, a number not above zero, or
// the string "false", "0", "no" or "none" in any case.
func saysNone(raw json.RawMessage) bool {
	if emptyJSON(raw) {
		return true
	}
	v, ok := decodeJSON(raw)
	if !ok {
		return false
	}
	switch v := v.(type) {
	case json.Number:
		f, err := v.Float64()
		return err != nil || f <= 0
	case string:
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "false", "0", "no", "none":
			return true
		}
	}
	return false
}

// emptyJSON reports whether raw is null, false, a zero number, a blank string, [] or {}.
func emptyJSON(raw json.RawMessage) bool {
	v, ok := decodeJSON(raw)
	if !ok {
		return false
	}
	switch v := v.(type) {
	case nil:
		return true
	case bool:
		return !v
	case json.Number:
		f, err := v.Float64()
		return err == nil && f == 0
	case string:
		return strings.TrimSpace(v) == ""
	case []any:
		return len(v) == 0
	case map[string]any:
		return len(v) == 0
	}
	return false
}

// decodeJSON decodes the first value of raw, numbers as json.Number; ok is false when raw does
// not start with a JSON value.
func decodeJSON(raw json.RawMessage) (v any, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if dec.Decode(&v) != nil {
		return nil, false
	}
	return v, true
}
