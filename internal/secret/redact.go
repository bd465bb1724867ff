package secret

import (
	"encoding/base64"
	"encoding/hex"
	"net/url"
	"strings"
)

// Mark replaces every secret Redact finds.
const Mark = "[redacted]"

// MinLen is the shortest secret a Redactor looks for: replacing shorter ones would garble text
// without hiding anything worth hiding.
const MinLen = 4

// Window is the length of the pieces of a secret that a Redactor finds on their own: any
// Window bytes in a row of a secret (or of one of its encodings) are removed wherever they
// appear, so a secret cut, wrapped or partly echoed still does not show.
const Window = 8

// Redactor removes secrets from text. A secret is found as given, in any ASCII letter case,
// URL-encoded (query or path escaping) and base64-encoded on its own (standard or URL alphabet,
// padded or not); a key (NewRedactor, New's keys) also by any Window bytes in a row of any of
// those forms. A nil or empty Redactor changes nothing. It is safe for concurrent use once made.
// Printing a Redactor, even through reflection on a struct holding it, shows no part of a
// secret.
type Redactor struct {
	// windows returns the ASCII-lower-cased pieces to find, by length: Window for a key's
	// pieces, the whole form otherwise. A func, because fmt prints a func as an address under
	// every verb.
	windows func() map[int]map[string]bool
}

// NewRedactor returns a Redactor for keys: each is found in every form and by any piece of
// Window bytes. Blank ones and ones shorter than MinLen are ignored.
func NewRedactor(keys ...string) *Redactor { return New(keys, nil) }

// New returns a Redactor for keys, found in every form and by any piece of Window bytes (API
// keys: random, and echoed in part by careless servers), and for values, found in every form
// but only whole (passwords: a piece of one may be an ordinary word). Blank ones and ones
// shorter than MinLen are ignored.
func New(keys, values []string) *Redactor {
	windows := map[int]map[string]bool{}
	add := func(piece string) {
		set := windows[len(piece)]
		if set == nil {
			set = map[string]bool{}
			windows[len(piece)] = set
		}
		set[piece] = true
	}
	for i, list := range [][]string{keys, values} {
		for _, s := range list {
			if len(s) < MinLen || strings.TrimSpace(s) == "" {
				continue
			}
			for _, form := range Forms(s) {
				low := lower(form)
				if i == 1 || len(low) <= Window {
					add(low)
					continue
				}
				for j := 0; j+Window <= len(low); j++ {
					add(low[j : j+Window])
				}
			}
		}
	}
	return &Redactor{windows: func() map[int]map[string]bool { return windows }}
}

// Forms returns s and the encodings of it a Redactor looks for, without duplicates: URL
// escaping (query, path, and every byte %-encoded), hex, and base64 (standard or URL alphabet,
// padded or not) of s on its own and of s after a prefix of any length (as in a Basic header's
// "apikey:KEY"), the latter by the part that does not depend on the prefix.
func Forms(s string) []string {
	all := []string{
		s,
		url.QueryEscape(s),
		url.PathEscape(s),
		percentAll(s),
		hex.EncodeToString([]byte(s)),
		base64.StdEncoding.EncodeToString([]byte(s)),
		base64.URLEncoding.EncodeToString([]byte(s)),
		base64.RawStdEncoding.EncodeToString([]byte(s)),
		base64.RawURLEncoding.EncodeToString([]byte(s)),
	}
	// After a prefix whose length is not a multiple of 3, s starts 1 or 2 bytes into a base64
	// group; from the next group on, whole groups of s encode as they would on their own.
	for skip := 1; skip <= 2; skip++ {
		if n := (len(s) - skip) / 3 * 3; n >= 3 {
			part := []byte(s[skip : skip+n])
			all = append(all, base64.StdEncoding.EncodeToString(part), base64.URLEncoding.EncodeToString(part))
		}
	}
	out := all[:0]
	seen := map[string]bool{}
	for _, f := range all {
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	return out
}

// percentAll %-encodes every byte of s.
func percentAll(s string) string {
	const digits = "0123456789ABCDEF"
	b := make([]byte, 0, 3*len(s))
	for i := 0; i < len(s); i++ {
		b = append(b, '%', digits[s[i]>>4], digits[s[i]&15])
	}
	return string(b)
}

// Redact returns s with every piece of a secret replaced by Mark; adjacent and overlapping
// pieces become one Mark.
func (r *Redactor) Redact(s string) string {
	if r == nil || r.windows == nil || s == "" {
		return s
	}
	low := lower(s)
	var hit []bool
	for w, set := range r.windows() {
		for i := 0; i+w <= len(low); i++ {
			if set[low[i:i+w]] {
				if hit == nil {
					hit = make([]bool, len(s))
				}
				for j := i; j < i+w; j++ {
					hit[j] = true
				}
			}
		}
	}
	if hit == nil {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if !hit[i] {
			b.WriteByte(s[i])
			continue
		}
		if i == 0 || !hit[i-1] {
			b.WriteString(Mark)
		}
	}
	return b.String()
}

// Contains reports whether Redact would change s.
func (r *Redactor) Contains(s string) bool { return r.Redact(s) != s }

// lower folds ASCII letters only, so every byte keeps its offset.
func lower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}
