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
// a string equal to "SUCCESSFULLY DELETED" (ASCII case and surrounding spaces ignored), and no
// member at any depth that names a failure (failed_ids, errors, failed, rejected, ...) with a
// value other than null, false, 0, "", [] or {}. When it does not, why says what was wrong, for
// the answer's detail; why is empty for a body that is not such an object at all.
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
			confirmed = name == "status" && json.Unmarshal(raw, &s) == nil &&
				asciiEqualFold(strings.Trim(s, " \t\r\n"), confirmation)
		case namesFailure(name) && !emptyJSON(raw):
			return false, "it also names a failure (" + truncate(name, 40) + ")"
		default:
			if member, err := failureIn(raw, 1); err != nil {
				return false, ""
			} else if member != "" {
				return false, "it also names a failure (" + truncate(member, 40) + ")"
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

// failureIn returns the name of a member naming a failure with a non-empty value anywhere in the
// JSON value raw, or "" if there is none.
func failureIn(raw json.RawMessage, depth int) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || (raw[0] != '{' && raw[0] != '[') {
		return "", nil
	}
	if depth > maxFailureDepth {
		return "", errors.New("nested too deep")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	open, err := dec.Token()
	if err != nil {
		return "", err
	}
	for dec.More() {
		name := ""
		if open == json.Delim('{') {
			tok, err := dec.Token()
			if err != nil {
				return "", err
			}
			name, _ = tok.(string)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return "", err
		}
		if name != "" && namesFailure(name) && !emptyJSON(v) {
			return name, nil
		}
		if member, err := failureIn(v, depth+1); err != nil || member != "" {
			return member, err
		}
	}
	return "", nil
}

// namesFailure reports whether a member name says that something failed: it contains "fail",
// "error", "reject", "undeleted" or "notdeleted" once folded to lower case without "_", "-" and
// spaces, or it is "err" or "errs".
func namesFailure(name string) bool {
	n := strings.ToLower(strings.NewReplacer("_", "", "-", "", " ", "").Replace(name))
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

// emptyJSON reports whether raw is null, false, a zero number, a blank string, [] or {}.
func emptyJSON(raw json.RawMessage) bool {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
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
