package convai

import (
	"encoding/json"
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

// bodyMessage returns the most useful text of an error body, key removed: the ERROR (or error,
// message, status) string of a JSON object, else the start of the body itself.
func bodyMessage(body []byte, key *secret.Redactor) string {
	var obj map[string]json.RawMessage
	if json.Unmarshal(body, &obj) == nil {
		for _, k := range []string{"ERROR", "error", "message", "status"} {
			var s string
			if raw, ok := obj[k]; ok && json.Unmarshal(raw, &s) == nil && strings.TrimSpace(s) != "" {
				return scrub(s, key)
			}
		}
	}
	return excerpt(body, key)
}

// excerpt returns the start of body, key removed. Only the start is ever shown, so the work is
// bounded; the key is removed before cutting so that no part of an echoed key survives the cut.
func excerpt(body []byte, key *secret.Redactor) string {
	s := scrub(string(body), key)
	if len(s) > 4*MaxDetail {
		s = s[:4*MaxDetail]
	}
	return s
}
