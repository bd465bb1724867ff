package convaitest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"
)

// The paths of the chat-history endpoints the Fake serves besides Path (the delete endpoint).
const (
	ListPath    = "/character/chatHistory/list"
	DetailsPath = "/character/chatHistory/details"
)

// The endpoints a Request can be for.
const (
	EndpointDelete  = "delete"
	EndpointList    = "list"
	EndpointDetails = "details"
)

// listDateLayout and listTimeLayout are how the list endpoint writes a session's start.
const (
	listDateLayout = "02-01-2006"
	listTimeLayout = "15:04:05"
)

// DetailsTimeLayout is how the details endpoint writes an interaction's timestamp: no zone, as
// Convai documents it; the times are UTC.
const DetailsTimeLayout = "2006-01-02 15:04:05.000000"

// malformedLists are the 200 answers of the list endpoint that are not a session list, in turn.
var malformedLists = []badBody{
	{"application/json", `{"status":"QUEUED"}`},
	{"application/json", `[{"sessionID": "s1", "date": "01-01-2026", "time": "00:00:00"}, {"sessionID": 7}]`},
	{"text/html", `<html><body>OK</body></html>`},
	{"application/json", `[{"sessionID": "s1", "date": "01-01-2026"`},
}

// malformedDetails are the 200 answers of the details endpoint that are not JSON, in turn.
var malformedDetails = []badBody{
	{"text/html", `<html><body>OK</body></html>`},
	{"application/json", `[{"timestamp": "2026-01-01 00:00:00"`},
}

// answerList applies the drawn fault, or streams the character's sessions, newest start first,
// at most limit of them (-1: all). A session's is_added_to_memory is true once a memory was drawn
// from it (Memory.SessionID, SetAddedToMemory), false otherwise, unless a list flag says what it
// says (MemorySeed.ListFlags, SetListFlag).
func (f *Fake) answerList(w http.ResponseWriter, r *http.Request, opts Options, charID string, limit int) (int, Outcome) {
	if code, out, faulted := f.fault(w, r, opts, malformedLists); faulted {
		return code, out
	}
	list := f.listed(charID)
	if limit > 0 && limit < len(list) {
		list = list[:limit]
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 64<<10)
	_, _ = bw.WriteString("[")
	for i, s := range list {
		if i > 0 {
			_, _ = bw.WriteString(", ")
		}
		el, _ := json.Marshal(struct {
			SessionID string          `json:"sessionID"`
			Date      string          `json:"date"`
			Time      string          `json:"time"`
			Memory    json.RawMessage `json:"is_added_to_memory,omitempty"`
		}{s.id, s.start.Format(listDateLayout), s.start.Format(listTimeLayout), s.memory})
		_, _ = bw.Write(el)
		if r.Context().Err() != nil {
			return http.StatusOK, OutcomeCanceled
		}
	}
	_, _ = bw.WriteString("]")
	_ = bw.Flush()
	return http.StatusOK, OutcomeListed
}

// answerDetails applies the drawn fault, or answers the session's interactions; 404 for a
// session the Fake does not hold.
func (f *Fake) answerDetails(w http.ResponseWriter, r *http.Request, opts Options, charID, sessionID string) (int, Outcome) {
	if code, out, faulted := f.fault(w, r, opts, malformedDetails); faulted {
		return code, out
	}
	times, ok := f.interactions(charID, sessionID)
	if !ok {
		return writeError(w, http.StatusNotFound, fmt.Sprintf("Session %q not found.", sessionID)), OutcomeUnknown
	}
	type interaction struct {
		UserText  string `json:"user_text"`
		BotText   string `json:"bot_text"`
		Timestamp string `json:"timestamp"`
	}
	out := make([]interaction, len(times))
	for i, t := range times {
		out[i] = interaction{UserText: "hello", BotText: "hi", Timestamp: t.UTC().Format(DetailsTimeLayout)}
	}
	b, _ := json.Marshal(out)
	return writeBody(w, http.StatusOK, "application/json", string(b)), OutcomeDetailed
}

// AddSession makes sessionID of charID a session the Fake holds, with these interaction times
// (added to those it has). A session deleted before comes back: it reappears in the list.
func (f *Fake) AddSession(charID, sessionID string, interactions ...time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	set := f.sessions[charID]
	if set == nil {
		set = make(map[string][]time.Time)
		f.sessions[charID] = set
	}
	set[sessionID] = append(set[sessionID], interactions...)
}

// Sessions returns the session IDs of charID the Fake holds, sorted.
func (f *Fake) Sessions(charID string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Sorted(maps.Keys(f.sessions[charID]))
}

// HasSession reports whether the Fake holds sessionID of charID.
func (f *Fake) HasSession(charID, sessionID string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.sessions[charID][sessionID]
	return ok
}

// Seed is the sessions a Fake holds: character ID to session ID to interaction times.
type Seed map[string]map[string][]time.Time

// AddSessions adds every session of seed, as AddSession does.
func (f *Fake) AddSessions(seed Seed) {
	for char, sessions := range seed {
		for id, times := range sessions {
			f.AddSession(char, id, times...)
		}
	}
}

// firstUnknown returns the first of ids the Fake does not hold.
func (f *Fake) firstUnknown(charID string, ids []string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range ids {
		if _, ok := f.sessions[charID][id]; !ok {
			return id, true
		}
	}
	return "", false
}

type listedSession struct {
	id     string
	start  time.Time
	memory json.RawMessage // is_added_to_memory, as JSON; nil leaves it out
}

// listed returns the sessions of charID, newest start first (then by ID), and the RejectIDs it
// does not hold (a session the API refuses to delete is one it has, for any character). A
// session's start is its first interaction, the zero time when it has none.
func (f *Fake) listed(charID string) []listedSession {
	f.mu.Lock()
	out := make([]listedSession, 0, len(f.sessions[charID]))
	for id, times := range f.sessions[charID] {
		s := listedSession{id: id, memory: f.listFlagLocked(charID, id)}
		if len(times) > 0 {
			s.start = slices.MinFunc(times, time.Time.Compare).UTC()
		}
		out = append(out, s)
	}
	for id := range f.reject {
		if _, ok := f.sessions[charID][id]; !ok {
			out = append(out, listedSession{id: id, memory: f.listFlagLocked(charID, id)})
		}
	}
	f.mu.Unlock()
	slices.SortFunc(out, func(a, b listedSession) int {
		if c := b.start.Compare(a.start); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	return out
}

// interactions returns the interaction times of a session, sorted, and whether the Fake holds it.
func (f *Fake) interactions(charID, sessionID string) ([]time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	times, ok := f.sessions[charID][sessionID]
	if !ok {
		return nil, false
	}
	out := slices.Clone(times)
	slices.SortFunc(out, time.Time.Compare)
	return out, true
}
