package report

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// The answers a list gave of a session's is_added_to_memory, as SessionMemory.Said has them.
const (
	MemoryAdded    = "added"     // a list said true at least once
	MemoryNotAdded = "not_added" // lists said false, none true
	MemoryUnstated = "unstated"  // lists showed the session without a readable answer
)

// SessionMemory is what Convai's lists said of a session's long-term memory (is_added_to_memory,
// Convai's word), as verifications, runs (their settle and erasure-request lists) and discover
// recorded it, and what became of its end user's memory of the character.
type SessionMemory struct {
	// Said is MemoryAdded, MemoryNotAdded or MemoryUnstated: the strongest answer recorded.
	Said string `json:"said"`
	// AddedListedAt is when a list first said true, and ListedBy whose list it was (verify, run
	// or discover; VerifyID names the verification, RunID the run).
	AddedListedAt *time.Time `json:"added_listed_at,omitempty"`
	ListedBy      string     `json:"listed_by,omitempty"`
	VerifyID      *int64     `json:"verify_id,omitempty"`
	RunID         *int64     `json:"run_id,omitempty"`
	// NotAddedListedAt and UnstatedListedAt are when a list first said false, or nothing
	// readable. Memory is drawn when a session closes, so a false before a true is no
	// contradiction.
	NotAddedListedAt *time.Time `json:"not_added_listed_at,omitempty"`
	UnstatedListedAt *time.Time `json:"unstated_listed_at,omitempty"`
	// EndUserID is the session's end user, where known: the set's when the list was recorded,
	// the end user whose request deleted it, or the set's now.
	EndUserID string `json:"end_user_id,omitempty"`
	// MemoryErasedAt is, for a deleted session, when its end user's memory of the character
	// was first erased after the deletion (retention.memory_erasures, erased); nil if never.
	MemoryErasedAt  *time.Time `json:"memory_erased_at,omitempty"`
	MemoryErasureID *int64     `json:"memory_erasure_id,omitempty"`
}

// Text says the session's memory in one line, for the table and the HTML.
func (m *SessionMemory) Text(deleted bool) string {
	var b strings.Builder
	switch m.Said {
	case MemoryAdded:
		by := m.ListedBy
		if m.RunID != nil {
			by = fmt.Sprintf("run %d", *m.RunID) // a run's settle or erasure-request list
		}
		fmt.Fprintf(&b, "Convai listed it as added to long-term memory (%s's list, %s)", by, rfc3339(*m.AddedListedAt))
	case MemoryNotAdded:
		fmt.Fprintf(&b, "Convai listed it as not added to long-term memory (first %s); memory may have been drawn later", rfc3339(*m.NotAddedListedAt))
	default:
		fmt.Fprintf(&b, "Convai's list said nothing readable of its long-term memory (first %s): unknown", rfc3339(*m.UnstatedListedAt))
	}
	if m.Said != MemoryAdded || !deleted {
		return b.String()
	}
	switch {
	case m.EndUserID == "":
		b.WriteString("; its end user is not known, so their memory cannot be erased by end user: the memory may remain")
	case m.MemoryErasedAt != nil:
		fmt.Fprintf(&b, "; end user %s's memory of the character was erased after the deletion, at %s (memory erasure %d)",
			printable(m.EndUserID), rfc3339(*m.MemoryErasedAt), *m.MemoryErasureID)
	default:
		fmt.Fprintf(&b, "; end user %s's memory of the character has not been erased since the deletion: the memory may remain",
			printable(m.EndUserID))
	}
	return b.String()
}

// Deleted reports whether the finding's session is deleted: the erasure of memory since
// applies to it.
func (f Finding) Deleted() bool { return f.Deletion != nil }

// readSessionMemory sets f.Memory from what the lists said of the session; nil when no list
// recorded anything of it.
func readSessionMemory(ctx context.Context, tx pgx.Tx, sessionID string, f *Finding) error {
	var m SessionMemory
	var said *string
	var deletedAt *time.Time
	if f.Deletion != nil {
		deletedAt = f.Deletion.CompletedAt
	}
	err := tx.QueryRow(ctx, `
		WITH s AS (SELECT listed_at, verify_id, run_id, end_user_id FROM retention.memory_sightings
		           WHERE character_id = $1 AND session_id = $2),
		     d AS (SELECT min(discovered_at) FILTER (WHERE memory = 'added') AS added,
		                  min(discovered_at) FILTER (WHERE memory = 'not_added') AS not_added,
		                  min(discovered_at) FILTER (WHERE memory = 'unstated') AS unstated
		           FROM retention.discoveries WHERE character_id = $1 AND session_id = $2),
		     l AS (SELECT min(listed_at) FILTER (WHERE said = 'not_added') AS not_added,
		                  min(listed_at) FILTER (WHERE said = 'unstated') AS unstated
		           FROM retention.memory_listings WHERE character_id = $1 AND session_id = $2),
		     u AS (SELECT coalesce((SELECT end_user_id FROM s),
		                           (SELECT q.end_user_id FROM retention.deletions x
		                            JOIN retention.erasure_requests e ON e.id = x.erasure_request_id
		                            JOIN retention.end_user_requests q ON q.id = e.end_user_request_id
		                            WHERE x.character_id = $1 AND x.session_id = $2 AND x.status = 'deleted'
		                            ORDER BY x.completed_at DESC LIMIT 1),
		                           (SELECT end_user_id FROM retention.sessions WHERE character_id = $1 AND session_id = $2)) AS id)
		SELECT CASE WHEN (SELECT listed_at FROM s) IS NOT NULL OR d.added IS NOT NULL THEN 'added'
		            WHEN l.not_added IS NOT NULL OR d.not_added IS NOT NULL THEN 'not_added'
		            WHEN l.unstated IS NOT NULL OR d.unstated IS NOT NULL THEN 'unstated' END,
		       coalesce((SELECT listed_at FROM s), d.added),
		       CASE WHEN (SELECT verify_id FROM s) IS NOT NULL THEN 'verify' WHEN (SELECT run_id FROM s) IS NOT NULL THEN 'run'
		            WHEN d.added IS NOT NULL THEN 'discover' ELSE '' END,
		       (SELECT verify_id FROM s), (SELECT run_id FROM s),
		       least(l.not_added, d.not_added), least(l.unstated, d.unstated),
		       coalesce(u.id, ''), me.id, me.completed_at
		FROM d, l, u
		LEFT JOIN LATERAL (
		    SELECT m.id, m.completed_at FROM retention.memory_erasures m
		    JOIN retention.end_user_requests q ON q.id = m.request_id
		    WHERE q.end_user_id = u.id AND m.character_id = $1 AND m.status = 'erased'
		      AND $3::timestamptz IS NOT NULL AND m.completed_at >= $3::timestamptz
		      AND NOT retention.memory_found_again(m.id) -- as retention.deleted_in_memory: a refuted erasure is none
		    ORDER BY m.completed_at, m.id LIMIT 1
		) me ON true`, f.CharacterID, sessionID, deletedAt).
		Scan(&said, &m.AddedListedAt, &m.ListedBy, &m.VerifyID, &m.RunID, &m.NotAddedListedAt, &m.UnstatedListedAt,
			&m.EndUserID, &m.MemoryErasureID, &m.MemoryErasedAt)
	if err != nil {
		return fmt.Errorf("read what lists said of the memory of character %q's session: %w", f.CharacterID, err)
	}
	if said == nil {
		return nil // no list recorded anything of the session
	}
	m.Said = *said
	for _, t := range []**time.Time{&m.AddedListedAt, &m.NotAddedListedAt, &m.UnstatedListedAt, &m.MemoryErasedAt} {
		if *t != nil {
			u := (*t).UTC()
			*t = &u
		}
	}
	f.Memory = &m
	return nil
}
