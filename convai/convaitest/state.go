package convaitest

import (
	"maps"
	"slices"
	"time"
)

// Outcome is how the Fake answered a request.
type Outcome string

// The outcomes of a request.
const (
	OutcomeDeleted          Outcome = "deleted"            // 200 confirmation; the IDs are deleted
	OutcomeNotFound         Outcome = "not_found"          // 404: another path
	OutcomeMethodNotAllowed Outcome = "method_not_allowed" // 405: not a POST
	OutcomeUnauthorized     Outcome = "unauthorized"       // 401: missing or wrong key
	OutcomeBadRequest       Outcome = "bad_request"        // 400: malformed body, no charID, no IDs, over MaxIDs
	OutcomeRejected         Outcome = "rejected"           // 400: the request holds one of RejectIDs
	OutcomeFailed           Outcome = "failed"             // 500, 502 or 503 from FailRate
	OutcomeRateLimited      Outcome = "rate_limited"       // 429 from RateLimitRate
	OutcomeHung             Outcome = "hung"               // HangRate: the client went away, or 503/504
	OutcomeDropped          Outcome = "dropped"            // DropRate: connection closed, nothing deleted
	OutcomeUnconfirmed      Outcome = "unconfirmed"        // UnconfirmedRate: 200 that is not the documented answer
	OutcomeLostAnswer       Outcome = "lost_answer"        // LostAnswerRate: deleted, then connection closed
	OutcomeCanceled         Outcome = "canceled"           // the client went away during Latency
	OutcomeUnknown          Outcome = "unknown"            // 404: RefuseUnknown and a session the Fake does not hold; a memory or end user it does not hold
	OutcomeListed           Outcome = "listed"             // 200: the list of a character's sessions
	OutcomeDetailed         Outcome = "detailed"           // 200: the interactions of a session
	OutcomeMemoryListed     Outcome = "memory_listed"      // 200: a page of an end user's memories
	OutcomeMemoryDeleted    Outcome = "memory_deleted"     // 200: one memory deleted
	OutcomeDeleteAllStarted Outcome = "delete_all_started" // 200: an end user's memories with a character are being deleted
	OutcomeEndUserDeleted   Outcome = "end_user_deleted"   // 200: an end user and all their memories deleted
	OutcomeForbidden        Outcome = "forbidden"          // 403: a character of ForeignCharacters
	OutcomeNoMemory         Outcome = "no_memory"          // 404: NoMemory
)

// Request is one request the Fake answered.
type Request struct {
	// Time is when the request arrived, before any Latency.
	Time time.Time `json:"time"`
	// Endpoint is one of the Endpoint constants; empty for another path.
	Endpoint string `json:"endpoint,omitempty"`
	// CharID and SessionIDs are from the body, when it could be read (for details, the one
	// session asked about; for the memory endpoints, character_id).
	CharID     string   `json:"char_id,omitempty"`
	SessionIDs []string `json:"session_ids,omitempty"`
	// EndUserID and MemoryID are from the body of a memory request, when it could be read.
	EndUserID string `json:"end_user_id,omitempty"`
	MemoryID  string `json:"memory_id,omitempty"`
	// Status is the HTTP status answered, 0 when none was (dropped, lost, client gone).
	Status  int     `json:"status"`
	Outcome Outcome `json:"outcome"`
}

// Stats counts requests.
type Stats struct {
	// Requests is every request received, finished or not.
	Requests int `json:"requests"`
	// Outcomes counts the finished requests by outcome.
	Outcomes map[Outcome]int `json:"outcomes"`
	// InFlight is the requests being handled now; MaxInFlight the most there ever were at once.
	InFlight    int `json:"in_flight"`
	MaxInFlight int `json:"max_in_flight"`
	// Deleted is the number of distinct session IDs deleted.
	Deleted int `json:"deleted"`
	// Memories is the number of memories held now, of every end user and character.
	Memories int `json:"memories"`
}

// Deleted returns a copy of what was deleted: character ID to its sorted session IDs.
func (f *Fake) Deleted() map[string][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string][]string, len(f.deleted))
	for char, ids := range f.deleted {
		out[char] = slices.Sorted(maps.Keys(ids))
	}
	return out
}

// DeletedCount returns the number of distinct (character, session) pairs deleted.
func (f *Fake) DeletedCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.deletedCountLocked()
}

func (f *Fake) deletedCountLocked() int {
	n := 0
	for _, ids := range f.deleted {
		n += len(ids)
	}
	return n
}

// IsDeleted reports whether sessionID of charID was deleted.
func (f *Fake) IsDeleted(charID, sessionID string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.deleted[charID][sessionID]
}

// Requests returns a copy of the log of finished requests, in order of arrival.
func (f *Fake) Requests() []Request {
	f.mu.Lock()
	out := make([]Request, len(f.log))
	for i, r := range f.log {
		r.SessionIDs = slices.Clone(r.SessionIDs)
		out[i] = r
	}
	f.mu.Unlock()
	slices.SortStableFunc(out, func(a, b Request) int { return a.Time.Compare(b.Time) })
	return out
}

// Stats returns the current counts.
func (f *Fake) Stats() Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return Stats{
		Requests:    f.received,
		Outcomes:    maps.Clone(f.outcomes),
		InFlight:    f.inFlight,
		MaxInFlight: f.maxInFlight,
		Deleted:     f.deletedCountLocked(),
		Memories:    f.memory.countLocked(f.opts.Now()),
	}
}

// begin counts a request in and returns its arrival time and a copy of the options.
func (f *Fake) begin() (time.Time, Options, map[string]bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.received++
	f.inFlight++
	f.maxInFlight = max(f.maxInFlight, f.inFlight)
	return f.opts.Now(), f.opts, f.reject
}

// finish counts a request out and logs it.
func (f *Fake) finish(r Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inFlight--
	f.outcomes[r.Outcome]++
	f.log = append(f.log, r)
}

// remember records ids of charID as deleted; the Fake no longer holds them.
func (f *Fake) remember(charID string, ids []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range ids {
		delete(f.sessions[charID], id)
	}
	set := f.deleted[charID]
	if set == nil {
		set = make(map[string]bool, len(ids))
		f.deleted[charID] = set
	}
	for _, id := range ids {
		set[id] = true
	}
}
