package convai

import (
	"encoding/json"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/convai-retention/retention/internal/secret"
)

// MaxDetail is the longest Result.Detail, in bytes.
const MaxDetail = 200

// scrub removes every secret r knows from s, in every form r finds.
func scrub(s string, r *secret.Redactor) string { return r.Redact(s) }

// sanitize makes s fit for a Detail: secrets removed (before and after the clean-up, so white
// space or control characters inside an echoed key do not hide it), invalid UTF-8 dropped, control and format
// characters and runs of white space turned into one space, trimmed and cut to MaxDetail bytes.
func sanitize(s string, key *secret.Redactor) string {
	s = scrub(s, key)
	var b strings.Builder
	pendingSpace := false
	for len(s) > 0 {
		r, size := utf8.DecodeRuneInString(s)
		s = s[size:]
		switch {
		case r == utf8.RuneError && size <= 1:
			continue
		case unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r):
			pendingSpace = true
			continue
		}
		if pendingSpace && b.Len() > 0 {
			b.WriteByte(' ')
		}
		pendingSpace = false
		b.WriteRune(r)
	}
	return truncate(scrub(b.String(), key), MaxDetail)
}

// truncate cuts s to at most n bytes on a rune boundary, ending with an ellipsis when cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const ellipsis = "…"
	cut := n - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}

// knownMessages are the error texts a Detail may quote from an answer's body: the documented
// one and the fixed texts of the API's (and the stand-in's) error answers. Any other text of a
// body is never quoted, so a body echoing the key in some encoding cannot bring it into a
// Detail, an error or the outcomes it is recorded in.
var knownMessages = map[string]bool{
	"Invalid API key provided.":                true,
	"Internal server error.":                   true,
	"Too many requests.":                       true,
	"Gateway timeout.":                         true,
	"Shutting down.":                           true,
	"Not found.":                               true,
	"Session not found.":                       true,
	"Method not allowed.":                      true,
	"Malformed JSON body.":                     true,
	"Request body could not be read.":          true,
	"charID is required.":                      true,
	"sessionIDs must not be empty.":            true,
	"sessionIDs must not contain an empty ID.": true,
	"charID and sessionID are required.":       true,
	// The long-term memory endpoints, as the stand-in answers them.
	"Memory not found.":                                     true,
	"End user not found.":                                   true,
	"This key may not access this character.":               true,
	"character_id and end_user_id are required.":            true,
	"character_id, end_user_id and memory_id are required.": true,
	"end_user_id is required.":                              true,
	"page must be a whole number from 1.":                   true,
	"page_size must be a whole number from 1 to 100.":       true,
}

// messageMembers are the members of a JSON object whose string value may be a known message.
var messageMembers = []string{"ERROR", "error", "message"}

// bodyMessage describes an error answer's body without quoting it: the known message of a JSON
// object (its ERROR, error or message string, when on the list of known messages), else what
// kind of body it is and its size.
func bodyMessage(body []byte) string {
	var obj map[string]json.RawMessage
	if json.Unmarshal(body, &obj) == nil {
		for _, k := range messageMembers {
			var s string
			if raw, ok := obj[k]; ok && json.Unmarshal(raw, &s) == nil && knownMessages[strings.TrimSpace(s)] {
				return strings.TrimSpace(s)
			}
		}
	}
	return describe(body)
}

// describe says what kind of body body is, without quoting any of it.
func describe(body []byte) string {
	switch {
	case len(body) == 0:
		return "empty body"
	case !json.Valid(body):
		return "non-JSON body of " + strconv.Itoa(len(body)) + " bytes"
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(body, &obj) != nil {
		return "JSON body of " + strconv.Itoa(len(body)) + " bytes that is not an object"
	}
	return "JSON body without a known message"
}

// unconfirmedBody describes a 2xx body that is not a confirmation (and names no failure),
// without quoting any of it.
func unconfirmedBody(body []byte) string {
	var obj map[string]json.RawMessage
	if json.Unmarshal(body, &obj) != nil {
		return describe(body)
	}
	raw, ok := obj["status"]
	if !ok {
		return "JSON object without a status"
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "JSON object whose status is not a string"
	}
	return "JSON object whose status is not " + confirmation
}
