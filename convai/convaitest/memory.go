package convaitest

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// The paths of the long-term memory endpoints.
const (
	MemoryListPath      = "/memory/list"
	MemoryDeletePath    = "/memory/delete"
	MemoryDeleteAllPath = "/memory/delete-all"
	EndUserDeletePath   = "/user/end-users/delete"
)

// The memory endpoints a Request can be for.
const (
	EndpointMemoryList      = "memory_list"
	EndpointMemoryDelete    = "memory_delete"
	EndpointMemoryDeleteAll = "memory_delete_all"
	EndpointEndUserDelete   = "end_user_delete"
)

// MaxMemoryPageSize is the largest page_size the Fake accepts, as the API documents.
const MaxMemoryPageSize = 100

func isMemoryEndpoint(e string) bool {
	switch e {
	case EndpointMemoryList, EndpointMemoryDelete, EndpointMemoryDeleteAll, EndpointEndUserDelete:
		return true
	}
	return false
}

// Memory is one long-term memory of an end user with a character.
type Memory struct {
	// ID is the memory's id; required.
	ID string `json:"id"`
	// Text is the memory itself.
	Text string `json:"memory,omitempty"`
	// SessionID, if set, is the session the memory was drawn from: that session's element of
	// the character's list says is_added_to_memory true from then on, whatever becomes of the
	// memory or of the session.
	SessionID string `json:"session_id,omitempty"`
	// CreatedAt and UpdatedAt are answered as given (RFC 3339, UTC); zero ones are left out.
	CreatedAt time.Time `json:"created_at,omitzero"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
}

// MemorySeed is the end users and memories a Fake holds: what AddMemories adds, the body of the
// stand-in's POST /_fake/memories and the file of its --memories.
type MemorySeed struct {
	// EndUsers are end users known to the account, memories or not.
	EndUsers []string `json:"end_users,omitempty"`
	// Memories is character ID to end user ID to that end user's memories with the character.
	// Each end user named is known to the account.
	Memories map[string]map[string][]Memory `json:"memories,omitempty"`
	// ListFlags is character ID to session ID to what that session's list element says of
	// is_added_to_memory, whatever memory holds: "true", "false", "absent" (the member left
	// out), or any other JSON value, written as given (null, "yes", 1). A session not named
	// here says true once a memory was drawn from it, false otherwise.
	ListFlags map[string]map[string]string `json:"list_flags,omitempty"`
}

// ListFlagAbsent, as a value of MemorySeed.ListFlags, leaves is_added_to_memory out of the
// session's list element.
const ListFlagAbsent = "absent"

// memoryState is the Fake's long-term memory. The Fake's mutex guards it.
type memoryState struct {
	// held is character to end user to memory ID to memory.
	held     map[string]map[string]map[string]Memory
	endUsers map[string]bool
	// added is character to the sessions whose list element says is_added_to_memory.
	added map[string]map[string]bool
	// flags is character to session to what its list element says of is_added_to_memory, as
	// JSON, or ListFlagAbsent; it wins over added.
	flags map[string]map[string]string
	// pending are the delete-alls in progress, by character and end user.
	pending map[[2]string]deleteAll
}

// deleteAll is a delete-all in progress: the memories it covers go at due, or never.
type deleteAll struct {
	due   time.Time
	never bool
	ids   map[string]bool
}

func newMemoryState() memoryState {
	return memoryState{
		held:     make(map[string]map[string]map[string]Memory),
		endUsers: make(map[string]bool),
		added:    make(map[string]map[string]bool),
		flags:    make(map[string]map[string]string),
		pending:  make(map[[2]string]deleteAll),
	}
}

// completeLocked carries out the delete-alls due at now.
func (m *memoryState) completeLocked(now time.Time) {
	for k, d := range m.pending {
		if d.never || now.Before(d.due) {
			continue
		}
		for id := range d.ids {
			delete(m.held[k[0]][k[1]], id)
		}
		delete(m.pending, k)
	}
}

// countLocked counts the memories held at now.
func (m *memoryState) countLocked(now time.Time) int {
	m.completeLocked(now)
	n := 0
	for _, users := range m.held {
		for _, mems := range users {
			n += len(mems)
		}
	}
	return n
}

// addLocked adds one memory (replacing one with its ID) and knows its end user.
func (m *memoryState) addLocked(characterID, endUserID string, mem Memory) {
	m.endUsers[endUserID] = true
	users := m.held[characterID]
	if users == nil {
		users = make(map[string]map[string]Memory)
		m.held[characterID] = users
	}
	if users[endUserID] == nil {
		users[endUserID] = make(map[string]Memory)
	}
	users[endUserID][mem.ID] = mem
	if mem.SessionID != "" {
		m.setAddedLocked(characterID, mem.SessionID, true)
	}
}

func (m *memoryState) setAddedLocked(characterID, sessionID string, added bool) {
	set := m.added[characterID]
	if set == nil {
		set = make(map[string]bool)
		m.added[characterID] = set
	}
	if added {
		set[sessionID] = true
	} else {
		delete(set, sessionID)
	}
}

// sortedLocked returns the memories of an end user with a character, oldest first, then by ID.
func (m *memoryState) sortedLocked(characterID, endUserID string) []Memory {
	out := slices.Collect(maps.Values(m.held[characterID][endUserID]))
	slices.SortFunc(out, func(a, b Memory) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), strings.Compare(a.ID, b.ID))
	})
	return out
}

// AddMemories adds the end users and memories of seed: a memory with the ID of one held already
// replaces it. It refuses, adding nothing, a seed with an empty character, end user or memory ID.
func (f *Fake) AddMemories(seed MemorySeed) error {
	for _, u := range seed.EndUsers {
		if u == "" {
			return errors.New("end_users: an end user ID is empty")
		}
	}
	for char, users := range seed.Memories {
		if char == "" {
			return errors.New("memories: a character ID is empty")
		}
		for user, mems := range users {
			if user == "" {
				return fmt.Errorf("memories of character %q: an end user ID is empty", char)
			}
			for i, m := range mems {
				if m.ID == "" {
					return fmt.Errorf("memories of end user %q with character %q: memory %d has no id", user, char, i)
				}
			}
		}
	}
	for char, sessions := range seed.ListFlags {
		for id, said := range sessions {
			if char == "" || id == "" {
				return errors.New("list_flags: a character or session ID is empty")
			}
			if said != ListFlagAbsent && !json.Valid([]byte(said)) {
				return fmt.Errorf("list_flags of session %q of character %q: %q is neither %q nor a JSON value", id, char, said, ListFlagAbsent)
			}
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, u := range seed.EndUsers {
		f.memory.endUsers[u] = true
	}
	for char, users := range seed.Memories {
		for user, mems := range users {
			f.memory.endUsers[user] = true
			for _, m := range mems {
				f.memory.addLocked(char, user, m)
			}
		}
	}
	for char, sessions := range seed.ListFlags {
		for id, said := range sessions {
			f.memory.setFlagLocked(char, id, said)
		}
	}
	return nil
}

// SetListFlag sets what the list of characterID says of sessionID's is_added_to_memory, as
// MemorySeed.ListFlags does; it panics on a value that is neither ListFlagAbsent nor JSON, as a
// test's mistake.
func (f *Fake) SetListFlag(characterID, sessionID, said string) {
	if err := f.AddMemories(MemorySeed{ListFlags: map[string]map[string]string{characterID: {sessionID: said}}}); err != nil {
		panic(err)
	}
}

func (m *memoryState) setFlagLocked(characterID, sessionID, said string) {
	set := m.flags[characterID]
	if set == nil {
		set = make(map[string]string)
		m.flags[characterID] = set
	}
	set[sessionID] = said
}

// AddMemory adds one memory of endUserID with characterID, as AddMemories does; it panics on an
// empty ID, as a test's mistake.
func (f *Fake) AddMemory(characterID, endUserID string, m Memory) {
	if err := f.AddMemories(MemorySeed{Memories: map[string]map[string][]Memory{characterID: {endUserID: {m}}}}); err != nil {
		panic(err)
	}
}

// Memories returns the memories of endUserID with characterID the Fake holds now, oldest first.
func (f *Fake) Memories(characterID, endUserID string) []Memory {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.memory.completeLocked(f.opts.Now())
	return f.memory.sortedLocked(characterID, endUserID)
}

// EndUsers returns the end users the Fake knows, sorted.
func (f *Fake) EndUsers() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Sorted(maps.Keys(f.memory.endUsers))
}

// SetAddedToMemory sets what the list of characterID says of sessionID's is_added_to_memory.
func (f *Fake) SetAddedToMemory(characterID, sessionID string, added bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.memory.setAddedLocked(characterID, sessionID, added)
}

// listFlagLocked returns what the list element of sessionID of characterID says of
// is_added_to_memory, as JSON; nil leaves the member out. The caller holds mu.
func (f *Fake) listFlagLocked(characterID, sessionID string) json.RawMessage {
	if said, ok := f.memory.flags[characterID][sessionID]; ok {
		if said == ListFlagAbsent {
			return nil
		}
		return json.RawMessage(said)
	}
	if f.memory.added[characterID][sessionID] {
		return json.RawMessage("true")
	}
	return json.RawMessage("false")
}

// DeleteAllPending reports whether a delete-all of endUserID's memories with characterID is in
// progress.
func (f *Fake) DeleteAllPending(characterID, endUserID string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.memory.completeLocked(f.opts.Now())
	_, ok := f.memory.pending[[2]string{characterID, endUserID}]
	return ok
}
