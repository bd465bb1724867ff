package convai

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/convai-retention/retention/policy"
)

// The errors of the memory parsers are fixed texts and the documented member names: never a
// part of the body, which may echo the key.

// memoryPage is one page of a memory list.
type memoryPage struct {
	memories []Memory
	total    int64
	hasMore  bool
}

// member is one member of a JSON object.
type member struct {
	name string
	raw  json.RawMessage
}

// objectMembers reads body as exactly one JSON object and returns its members in order.
func objectMembers(body []byte) ([]member, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	tok, err := dec.Token()
	switch {
	case err != nil:
		return nil, errors.New("not JSON")
	case tok != json.Delim('{'):
		return nil, errors.New("not a JSON object")
	}
	var out []member
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, errors.New("not JSON")
		}
		name, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, errors.New("not JSON")
		}
		out = append(out, member{name: name, raw: raw})
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, errors.New("not JSON")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("data after the object")
	}
	return out, nil
}

// pageMembers are the members of a page of memories, as documented.
var pageMembers = []string{"memories", "total_count", "has_more"}

// parseMemoryPage reads one page of a memory list of at most pageSize memories (see
// ListMemories for the shape).
func parseMemoryPage(raw []byte, pageSize int) (memoryPage, error) {
	var p memoryPage
	ms, err := objectMembers(raw)
	if err != nil {
		return p, err
	}
	seen := make(map[string]int, len(pageMembers))
	for _, m := range ms {
		key := ""
		for _, k := range pageMembers {
			if asciiEqualFold(m.name, k) {
				key = k
			}
		}
		if key == "" {
			if namesFailure(m.name) && !emptyJSON(m.raw) {
				return p, fmt.Errorf("it names a failure (%s)", memberLabel(m.name))
			}
			continue
		}
		if seen[key]++; seen[key] > 1 {
			return p, fmt.Errorf("%s is given more than once", key)
		}
		if m.name != key {
			return p, fmt.Errorf("%s is spelled otherwise", key)
		}
		switch key {
		case "memories":
			p.memories, err = parseMemories(m.raw, pageSize)
		case "total_count":
			p.total, err = parseCount(m.raw)
		case "has_more":
			p.hasMore, err = parseBool(m.raw)
		}
		if err != nil {
			return p, fmt.Errorf("%s: %w", key, err)
		}
	}
	for _, k := range pageMembers {
		if seen[k] == 0 {
			return p, fmt.Errorf("%s is missing", k)
		}
	}
	return p, nil
}

// parseMemories reads the memories array of a page: at most pageSize objects.
func parseMemories(raw json.RawMessage, pageSize int) ([]Memory, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		return nil, errors.New("not an array")
	}
	var out []Memory
	for dec.More() {
		if len(out) == pageSize {
			return nil, fmt.Errorf("more than the page size of %d", pageSize)
		}
		var el json.RawMessage
		if err := dec.Decode(&el); err != nil {
			return nil, errors.New("not JSON")
		}
		m, err := parseMemory(el)
		if err != nil {
			return nil, fmt.Errorf("memory %d: %w", len(out), err)
		}
		out = append(out, m)
	}
	return out, nil
}

// parseMemory reads one memory: its id, created_at and updated_at; the rest (the memory's text,
// its metadata) is dropped.
func parseMemory(raw json.RawMessage) (Memory, error) {
	var m Memory
	ms, err := objectMembers(raw)
	if err != nil {
		return m, err
	}
	ids := 0
	for _, x := range ms {
		switch {
		case asciiEqualFold(x.name, "id"):
			if ids++; ids > 1 || x.name != "id" {
				return m, errors.New("id is given more than once, or spelled otherwise")
			}
			if len(x.raw) == 0 || x.raw[0] != '"' || !utf8.Valid(x.raw) {
				return m, errors.New("id is not a string of valid UTF-8")
			}
			var id string
			if err := json.Unmarshal(x.raw, &id); err != nil {
				return m, errors.New("id is not a string")
			}
			switch {
			case id == "":
				return m, errors.New("id is empty")
			case len(id) > policy.MaxIDLength:
				m.Overlong = true
			default:
				m.ID = id
			}
		case asciiEqualFold(x.name, "created_at"):
			m.CreatedAt = memoryTime(x.raw)
		case asciiEqualFold(x.name, "updated_at"):
			m.UpdatedAt = memoryTime(x.raw)
		}
	}
	if ids == 0 {
		return m, errors.New("id is missing")
	}
	return m, nil
}

// memoryTime reads a memory's timestamp; zero when it is unreadable or outside the years 1 to
// 9999.
func memoryTime(raw json.RawMessage) time.Time {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return time.Time{}
	}
	t, ok := parseTimestamp(v)
	if !ok || !policy.ValidLastActive(t) {
		return time.Time{}
	}
	return t
}

// parseCount reads a whole number from 0 to MaxMemoryTotal.
func parseCount(raw json.RawMessage) (int64, error) {
	s := string(bytes.TrimSpace(raw))
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > MaxMemoryTotal {
		return 0, fmt.Errorf("not a whole number from 0 to %d", MaxMemoryTotal)
	}
	return n, nil
}

// parseBool reads true or false.
func parseBool(raw json.RawMessage) (bool, error) {
	switch string(bytes.TrimSpace(raw)) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, errors.New("not true or false")
}

// memoryDeleted says whether a 2xx body of /memory/delete confirms the deletion of memoryID (see
// DeleteMemory): what it says when it does, else why not.
func memoryDeleted(body []byte, memoryID string) (says, why string) {
	ms, err := objectMembers(body)
	if err != nil {
		return "", describe(body)
	}
	deleted, ids := 0, 0
	okDeleted, okID := false, false
	for _, m := range ms {
		switch {
		case asciiEqualFold(m.name, "deleted"):
			deleted++
			okDeleted = m.name == "deleted" && string(bytes.TrimSpace(m.raw)) == "true"
		case asciiEqualFold(m.name, "memory_id"):
			ids++
			var s string
			okID = m.name == "memory_id" && json.Unmarshal(m.raw, &s) == nil && s == memoryID
		default:
			if why, err := denial(m.name, m.raw, 0); err != nil {
				return "", "JSON nested too deep"
			} else if why != "" {
				return "", why
			}
		}
	}
	switch {
	case deleted > 1 || ids > 1:
		return "", "it gives deleted or memory_id more than once"
	case !okDeleted:
		return "", "JSON object whose deleted is not true"
	case !okID:
		return "", "JSON object whose memory_id is not the memory asked for"
	}
	return "memory deleted", ""
}

// acceptanceTexts are the members whose string may say a deletion is done or in progress;
// acceptanceFlags those that may say it with true.
var (
	acceptanceTexts = []string{"status", "message", "detail", "state"}
	acceptanceFlags = []string{"deleted", "success"}
)

// refusalWords are what a status text may say that makes it no acceptance, in lower case.
var refusalWords = []string{"fail", "error", "denied", "reject", "unable", "cannot", "can't", "not ", "invalid", "forbidden", "unauthori"}

// accepted says whether a 2xx body of /memory/delete-all or /user/end-users/delete accepts the
// deletion (see DeleteAllMemories): "deletion in progress" or "deleted" when it does, else why
// not.
func accepted(body []byte, code int) (says, why string) {
	if code == http.StatusAccepted && len(bytes.TrimSpace(body)) == 0 {
		return "deletion in progress", ""
	}
	ms, err := objectMembers(body)
	if err != nil {
		return "", describe(body)
	}
	seen := map[string]int{}
	inProgress, done := false, false
	for _, m := range ms {
		if why, err := denial(m.name, m.raw, 0); err != nil {
			return "", "JSON nested too deep"
		} else if why != "" {
			return "", why
		}
		key := ""
		for _, k := range append(acceptanceTexts[:len(acceptanceTexts):len(acceptanceTexts)], acceptanceFlags...) {
			if asciiEqualFold(m.name, k) {
				key = k
			}
		}
		if key == "" {
			continue
		}
		if seen[key]++; seen[key] > 1 {
			return "", "it gives " + key + " more than once"
		}
		if m.name != key {
			continue
		}
		if key == "deleted" || key == "success" {
			done = done || string(bytes.TrimSpace(m.raw)) == "true"
			continue
		}
		var s string
		if json.Unmarshal(m.raw, &s) != nil {
			continue
		}
		lower := strings.ToLower(strings.TrimSpace(s))
		for _, w := range refusalWords {
			if strings.Contains(lower, w) {
				return "", "its " + key + " speaks of failure or refusal"
			}
		}
		switch {
		case strings.Contains(lower, "progress"):
			inProgress = true
		case s == confirmation:
			done = true
		}
	}
	switch {
	case inProgress:
		return "deletion in progress", ""
	case done:
		return "deleted", ""
	}
	return "", "JSON object that says neither that the deletion is done nor that it is in progress"
}
