package convaitest

import (
	"encoding/json"
	"net/http"
	"time"
)

// The memory endpoints' 200 answers that are not the documented ones, in turn.
var (
	malformedMemoryLists = []badBody{
		{"application/json", `{"memories": [], "total_count": 0}`},
		{"application/json", `{"status":"QUEUED"}`},
		{"text/html", `<html><body>OK</body></html>`},
		{"application/json", `{"memories": [{"id": 7}], "total_count": 1, "has_more": false}`},
	}
	unconfirmedMemoryDeletes = []badBody{
		{"application/json", `{"deleted": false}`},
		{"application/json", `{"status":"QUEUED"}`},
		{"application/json", ``},
		{"text/html", `<html><body>OK</body></html>`},
	}
	unconfirmedMemoryErasures = []badBody{
		{"application/json", `{"status":"QUEUED"}`},
		{"application/json", ``},
		{"text/html", `<html><body>OK</body></html>`},
		{"application/json", `{"status": "Deletion in progress", "error": "quota exceeded"}`},
	}
)

// memoryRequest is the body of a memory request.
type memoryRequest struct {
	CharacterID *string `json:"character_id"`
	EndUserID   *string `json:"end_user_id"`
	MemoryID    *string `json:"memory_id"`
	Page        *int    `json:"page"`
	PageSize    *int    `json:"page_size"`
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// serveMemory answers a request to a memory endpoint whose key was accepted and whose body is
// read: 404 when NoMemory, 400 for a body the API would refuse, 403 for a foreign character,
// then the drawn fault, or the answer.
func (f *Fake) serveMemory(w http.ResponseWriter, r *http.Request, opts Options, body []byte, rec *Request) (int, Outcome) {
	if opts.NoMemory {
		return writeError(w, http.StatusNotFound, "Not found."), OutcomeNoMemory
	}
	var req memoryRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return writeError(w, http.StatusBadRequest, "Malformed JSON body."), OutcomeBadRequest
	}
	rec.CharID, rec.EndUserID, rec.MemoryID = deref(req.CharacterID), deref(req.EndUserID), deref(req.MemoryID)
	if rec.Endpoint == EndpointEndUserDelete {
		if rec.EndUserID == "" {
			return writeError(w, http.StatusBadRequest, "end_user_id is required."), OutcomeBadRequest
		}
		return f.answerEndUserDelete(w, r, opts, rec.EndUserID)
	}
	switch {
	case rec.Endpoint == EndpointMemoryDelete && (rec.CharID == "" || rec.EndUserID == "" || rec.MemoryID == ""):
		return writeError(w, http.StatusBadRequest, "character_id, end_user_id and memory_id are required."), OutcomeBadRequest
	case rec.CharID == "" || rec.EndUserID == "":
		return writeError(w, http.StatusBadRequest, "character_id and end_user_id are required."), OutcomeBadRequest
	}
	if rec.Endpoint == EndpointMemoryList {
		switch {
		case req.Page == nil || *req.Page < 1:
			return writeError(w, http.StatusBadRequest, "page must be a whole number from 1."), OutcomeBadRequest
		case req.PageSize == nil || *req.PageSize < 1 || *req.PageSize > MaxMemoryPageSize:
			return writeError(w, http.StatusBadRequest, "page_size must be a whole number from 1 to 100."), OutcomeBadRequest
		}
	}
	if f.isForeign(rec.CharID) {
		return writeError(w, http.StatusForbidden, "This key may not access this character."), OutcomeForbidden
	}
	switch rec.Endpoint {
	case EndpointMemoryList:
		return f.answerMemoryList(w, r, opts, rec.CharID, rec.EndUserID, *req.Page, *req.PageSize)
	case EndpointMemoryDelete:
		return f.answerMemoryDelete(w, r, opts, rec.CharID, rec.EndUserID, rec.MemoryID)
	}
	return f.answerDeleteAll(w, r, opts, rec.CharID, rec.EndUserID)
}

func (f *Fake) isForeign(characterID string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.foreign[characterID]
}

// memoryElement is a memory as the list answers it.
type memoryElement struct {
	ID        string         `json:"id"`
	Memory    string         `json:"memory"`
	CreatedAt string         `json:"created_at,omitempty"`
	UpdatedAt string         `json:"updated_at,omitempty"`
	Metadata  map[string]any `json:"metadata"`
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// answerMemoryList applies the drawn fault, or answers one page of the end user's memories.
func (f *Fake) answerMemoryList(w http.ResponseWriter, r *http.Request, opts Options, charID, endUserID string, page, size int) (int, Outcome) {
	if code, out, faulted := f.fault(w, r, opts, malformedMemoryLists); faulted {
		return code, out
	}
	f.mu.Lock()
	f.memory.completeLocked(opts.Now())
	all := f.memory.sortedLocked(charID, endUserID)
	f.mu.Unlock()
	from := min((page-1)*size, len(all))
	to := min(from+size, len(all))
	els := make([]memoryElement, 0, to-from)
	for _, m := range all[from:to] {
		meta := map[string]any{}
		if m.SessionID != "" {
			meta["session_id"] = m.SessionID
		}
		els = append(els, memoryElement{ID: m.ID, Memory: m.Text, CreatedAt: rfc3339(m.CreatedAt), UpdatedAt: rfc3339(m.UpdatedAt), Metadata: meta})
	}
	b, _ := json.Marshal(struct {
		Memories   []memoryElement `json:"memories"`
		TotalCount int             `json:"total_count"`
		HasMore    bool            `json:"has_more"`
	}{els, len(all), to < len(all)})
	return writeBody(w, http.StatusOK, "application/json", string(b)), OutcomeMemoryListed
}

// answerMemoryDelete answers 404 for a memory the Fake does not hold, else applies the drawn
// fault, or deletes the memory.
func (f *Fake) answerMemoryDelete(w http.ResponseWriter, r *http.Request, opts Options, charID, endUserID, memoryID string) (int, Outcome) {
	f.mu.Lock()
	f.memory.completeLocked(opts.Now())
	_, ok := f.memory.held[charID][endUserID][memoryID]
	f.mu.Unlock()
	if !ok {
		return writeError(w, http.StatusNotFound, "Memory not found."), OutcomeUnknown
	}
	del := func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(f.memory.held[charID][endUserID], memoryID)
	}
	return f.faultOrApply(w, r, opts, unconfirmedMemoryDeletes, del,
		map[string]any{"deleted": true, "memory_id": memoryID}, OutcomeMemoryDeleted)
}

// faultOrApply applies the drawn fault, with bad as its unconfirming bodies, or applies change
// and answers 200 with body as JSON and outcome. A fault that loses only the answer applies
// change all the same: the server did the work.
func (f *Fake) faultOrApply(w http.ResponseWriter, r *http.Request, opts Options, bad []badBody, change func(),
	body any, outcome Outcome) (int, Outcome) {
	if code, out, faulted := f.fault(w, r, opts, bad); faulted {
		if out == OutcomeLostAnswer {
			change()
		}
		return code, out
	}
	change()
	b, _ := json.Marshal(body)
	return writeBody(w, http.StatusOK, "application/json", string(b)), outcome
}

// answerDeleteAll applies the drawn fault, or starts deleting every memory the end user has with
// the character now: gone after MemoryDeleteDelay, or never with StuckDeleteAll.
func (f *Fake) answerDeleteAll(w http.ResponseWriter, r *http.Request, opts Options, charID, endUserID string) (int, Outcome) {
	start := func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		now := opts.Now()
		f.memory.completeLocked(now)
		k := [2]string{charID, endUserID}
		d := f.memory.pending[k]
		if d.ids == nil {
			d.ids = make(map[string]bool)
		}
		for id := range f.memory.held[charID][endUserID] {
			d.ids[id] = true
		}
		d.due, d.never = now.Add(opts.MemoryDeleteDelay), opts.StuckDeleteAll
		f.memory.pending[k] = d
	}
	return f.faultOrApply(w, r, opts, unconfirmedMemoryErasures, start,
		map[string]string{"status": "Deletion in progress", "character_id": charID, "end_user_id": endUserID}, OutcomeDeleteAllStarted)
}

// answerEndUserDelete answers 404 for an end user the Fake does not know, else applies the drawn
// fault, or deletes the end user and their memories with every character at once.
func (f *Fake) answerEndUserDelete(w http.ResponseWriter, r *http.Request, opts Options, endUserID string) (int, Outcome) {
	f.mu.Lock()
	known := f.memory.endUsers[endUserID]
	f.mu.Unlock()
	if !known {
		return writeError(w, http.StatusNotFound, "End user not found."), OutcomeUnknown
	}
	del := func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(f.memory.endUsers, endUserID)
		for char, users := range f.memory.held {
			delete(users, endUserID)
			delete(f.memory.pending, [2]string{char, endUserID})
		}
	}
	return f.faultOrApply(w, r, opts, unconfirmedMemoryErasures, del,
		map[string]any{"deleted": true, "end_user_id": endUserID}, OutcomeEndUserDeleted)
}
