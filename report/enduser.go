package report

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/convai-retention/retention/internal/pgrows"
)

// EndUserEvidence is everything recorded about one end user's erasure requests: per request,
// its state; per character, the sessions deleted under it and each memory erasure.
type EndUserEvidence struct {
	GeneratedAt time.Time        `json:"generated_at"`
	EndUserID   string           `json:"end_user_id"`
	Requests    []EndUserRequest `json:"requests"`
	// Characters are the characters the end user was seen with (retention.end_users).
	Characters []string `json:"characters_seen"`
	// MemoryDeletions are the end user's memories deleted under a policy's memory_max_age.
	MemoryDeletions []MemoryDeletion `json:"memory_deletions"`
	// Caveat says what the memory checks prove and what they cannot.
	Caveat string `json:"caveat"`
}

// EndUserRequest is one end user's request as retention.end_user_erasure_status has it.
type EndUserRequest struct {
	ID            int64      `json:"id"`
	CharacterID   string     `json:"character_id,omitempty"`
	EndUserRecord bool       `json:"end_user_record"`
	Reason        string     `json:"reason"`
	RequestedBy   string     `json:"requested_by"`
	RequestedAt   time.Time  `json:"requested_at"`
	DueAt         time.Time  `json:"due_at"`
	State         string     `json:"state"`
	CompletedAt   *time.Time `json:"completed_at,omitempty"`
	BlockedBy     []int64    `json:"blocked_by,omitempty"`
	RecordStatus  string     `json:"record_status,omitempty"`
	// SessionsDeleted counts the end user's sessions deleted under it; SessionsLeft those still
	// to delete.
	SessionsDeleted int64              `json:"sessions_deleted"`
	SessionsLeft    int64              `json:"sessions_left"`
	Characters      []EndUserCharacter `json:"characters"`
	MemoryErasures  []MemoryErasure    `json:"memory_erasures"`
	// MemoryRechecks are the verifications' re-checks of its erased memories.
	MemoryRechecks []MemoryRecheck `json:"memory_rechecks"`
}

// EndUserCharacter is one character of a request.
type EndUserCharacter struct {
	CharacterID     string  `json:"character_id"`
	ErasureRequest  int64   `json:"erasure_request_id"`
	SessionsDeleted int64   `json:"sessions_deleted"`
	SessionsLeft    int64   `json:"sessions_left"`
	BlockedBy       []int64 `json:"blocked_by,omitempty"`
	// InMemory counts the sessions deleted under it that a verification had seen listed with
	// is_added_to_memory true (retention.memory_sightings).
	InMemory     int64  `json:"sessions_seen_in_memory"`
	MemoryStatus string `json:"memory_status,omitempty"`
}

// MemoryErasure is one row of retention.memory_erasures.
type MemoryErasure struct {
	RunID       int64  `json:"run_id"`
	CharacterID string `json:"character_id,omitempty"` // "" for the end user's record
	Status      string `json:"status"`
	Attempts    int    `json:"attempts"`
	HTTPStatus  *int   `json:"http_status,omitempty"`
	Remaining   *int64 `json:"remaining,omitempty"`
	// Before is what a whole list showed before the delete-all, when one could be read.
	Before      *int64    `json:"listed_before,omitempty"`
	Error       string    `json:"error,omitempty"`
	StartedAt   time.Time `json:"started_at"`
	CompletedAt time.Time `json:"completed_at"`
	// Leaf is the row's leaf in the log (retention.log_leaves.idx); nil while it waits for the
	// next seal.
	Leaf *int64 `json:"leaf_index"`
}

// MemoryRecheck is one row of retention.memory_rechecks: a verification's list of the end
// user's memories with a character after an erasure said erased.
type MemoryRecheck struct {
	VerifyID    int64  `json:"verify_id"`
	CharacterID string `json:"character_id"`
	// ErasureRunID is the run whose memory erasure was re-checked.
	ErasureRunID int64 `json:"erasure_run_id"`
	// Result is gone (stayed gone), found (found again: the erasure is refuted) or
	// not_checked (Failure says why).
	Result     string    `json:"result"`
	Listed     *int64    `json:"listed,omitempty"`
	TotalCount *int64    `json:"total_count,omitempty"`
	Failure    string    `json:"failure,omitempty"`
	HTTPStatus *int      `json:"http_status,omitempty"`
	Attempts   int       `json:"attempts"`
	ListedAt   time.Time `json:"listed_at"`
	RecordedAt time.Time `json:"recorded_at"`
}

// MemoryDeletion is one row of retention.memory_deletions.
type MemoryDeletion struct {
	RunID       int64     `json:"run_id"`
	CharacterID string    `json:"character_id"`
	MemoryID    string    `json:"memory_id"`
	UpdatedAt   time.Time `json:"updated_at"`
	PolicyID    int64     `json:"policy_id"`
	// PolicyVersion is the version (a retention.policy_history id) of the policy when the
	// deletion was recorded; nil for a policy whose history began later.
	PolicyVersion *int64    `json:"policy_version"`
	MemoryMaxAge  string    `json:"memory_max_age"`
	Status        string    `json:"status"`
	Attempts      int       `json:"attempts"`
	Error         string    `json:"error,omitempty"`
	CompletedAt   time.Time `json:"completed_at"`
	// Leaf is the row's leaf in the log; nil while it waits for the next seal.
	Leaf *int64 `json:"leaf_index"`
}

// endUserCaveat is the evidence's statement of what it proves.
const endUserCaveat = "A memory erasure 'erased' proves that Convai accepted the deletion of every memory of the end user with " +
	"the character and that a whole list read afterwards, at completed_at, showed none (total_count 0). It cannot prove " +
	"that Convai keeps no other copy, nor that no memory was added later (a session that closes after the check may add one): " +
	"it is evidence of that moment only. A verification's re-check lists the memories again: 'gone' is the same evidence at a " +
	"later moment; 'found' refutes the erasure (the next run erases again), whether the memory was left behind or drawn from " +
	"a later conversation; 'not_checked' proves nothing. A session's deletion is not known to remove what went into memory. " +
	"Each memory erasure and memory deletion is a leaf of the log (LEAF): retention audit verify recomputes it from its row, " +
	"so a row edited or removed since shows; it proves what was recorded, not what Convai did."

// EndUser reads the evidence for one end user, in one read-only transaction.
func EndUser(ctx context.Context, db Beginner, endUserID string) (*EndUserEvidence, error) {
	var ev *EndUserEvidence
	err := readOnly(ctx, db, func(tx pgx.Tx) error {
		var err error
		ev, err = endUser(ctx, tx, endUserID)
		return err
	})
	return ev, err
}

// endUserWhat is the phrase every error of the end user's evidence is wrapped with.
const endUserWhat = "end user evidence"

// endUser reads the evidence in q: the characters the end user was seen with, the memories
// deleted under a policy, and each erasure request with its characters and memory erasures.
func endUser(ctx context.Context, q pgx.Tx, endUserID string) (*EndUserEvidence, error) {
	ev := &EndUserEvidence{EndUserID: endUserID, Caveat: endUserCaveat, Requests: []EndUserRequest{}, Characters: []string{},
		MemoryDeletions: []MemoryDeletion{}}
	if err := q.QueryRow(ctx, `SELECT now()`).Scan(&ev.GeneratedAt); err != nil {
		return nil, fmt.Errorf("%s: %w", endUserWhat, err)
	}
	for _, read := range []func(context.Context, pgx.Tx) error{ev.readCharacters, ev.readMemoryDeletions, ev.readRequests} {
		if err := read(ctx, q); err != nil {
			return nil, err
		}
	}
	for i := range ev.Requests {
		if err := ev.Requests[i].readErasures(ctx, q); err != nil {
			return nil, err
		}
	}
	return ev, nil
}

// readCharacters reads the characters the end user was seen with.
func (ev *EndUserEvidence) readCharacters(ctx context.Context, q pgx.Tx) error {
	var c string
	return pgrows.Each(ctx, q, endUserWhat, `SELECT character_id FROM retention.end_users WHERE end_user_id = $1 ORDER BY 1`,
		[]any{ev.EndUserID}, []any{&c}, func() { ev.Characters = append(ev.Characters, c) })
}

// readMemoryDeletions reads the end user's memories deleted under a policy's memory_max_age.
func (ev *EndUserEvidence) readMemoryDeletions(ctx context.Context, q pgx.Tx) error {
	var d MemoryDeletion
	return pgrows.Each(ctx, q, endUserWhat, `
		SELECT d.run_id, d.character_id, d.memory_id, d.updated_at, d.policy_id,
		       (SELECT max(h.id) FROM retention.policy_history h WHERE h.policy_id = d.policy_id AND h.changed_at <= d.completed_at),
		       d.memory_max_age::text, d.status, d.attempts, coalesce(d.error, ''), d.completed_at, l.idx
		FROM retention.memory_deletions d LEFT JOIN retention.log_leaves l ON l.memory_deletion_id = d.id
		WHERE d.end_user_id = $1 ORDER BY d.id`, []any{ev.EndUserID},
		[]any{&d.RunID, &d.CharacterID, &d.MemoryID, &d.UpdatedAt, &d.PolicyID, &d.PolicyVersion, &d.MemoryMaxAge, &d.Status,
			&d.Attempts, &d.Error, &d.CompletedAt, &d.Leaf},
		func() { ev.MemoryDeletions = append(ev.MemoryDeletions, d) })
}

// readRequests reads the end user's erasure requests, as retention.end_user_erasure_status has
// them.
func (ev *EndUserEvidence) readRequests(ctx context.Context, q pgx.Tx) error {
	var r EndUserRequest
	return pgrows.Each(ctx, q, endUserWhat, `
		SELECT id, coalesce(character_id, ''), end_user_record, reason, requested_by, requested_at, due_at, state,
		       completed_at, coalesce(blocked_by, '{}'), coalesce(record_status, ''), sessions_deleted, sessions_left
		FROM retention.end_user_erasure_status WHERE end_user_id = $1 ORDER BY id`, []any{ev.EndUserID},
		[]any{&r.ID, &r.CharacterID, &r.EndUserRecord, &r.Reason, &r.RequestedBy, &r.RequestedAt,
			&r.DueAt, &r.State, &r.CompletedAt, &r.BlockedBy, &r.RecordStatus, &r.SessionsDeleted, &r.SessionsLeft},
		func() { ev.Requests = append(ev.Requests, r) })
}

// readErasures reads what the request did: per character, its sessions and memory, and each
// memory erasure.
func (req *EndUserRequest) readErasures(ctx context.Context, q pgx.Tx) error {
	var c EndUserCharacter
	err := pgrows.Each(ctx, q, endUserWhat, `
		SELECT m.character_id, m.erasure_request_id, m.sessions_deleted, m.sessions_left, coalesce(m.blocked_by, '{}'),
		       (SELECT count(DISTINCT x.session_id) FROM retention.claims cl
		        CROSS JOIN LATERAL unnest(cl.session_ids) AS x(session_id)
		        JOIN retention.memory_sightings ms ON ms.character_id = cl.character_id AND ms.session_id = x.session_id
		        WHERE cl.erasure_request_id = m.erasure_request_id),
		       coalesce(m.memory_status, '')
		FROM retention.end_user_memory m WHERE m.request_id = $1 ORDER BY m.character_id`, []any{req.ID},
		[]any{&c.CharacterID, &c.ErasureRequest, &c.SessionsDeleted, &c.SessionsLeft, &c.BlockedBy, &c.InMemory, &c.MemoryStatus},
		func() { req.Characters = append(req.Characters, c) })
	if err != nil {
		return err
	}
	var m MemoryErasure
	err = pgrows.Each(ctx, q, endUserWhat, `
		SELECT m.run_id, coalesce(m.character_id, ''), m.status, m.attempts, m.http_status, m.remaining, m.listed_before,
		       coalesce(m.error, ''), m.started_at, m.completed_at, l.idx
		FROM retention.memory_erasures m LEFT JOIN retention.log_leaves l ON l.memory_erasure_id = m.id
		WHERE m.request_id = $1 ORDER BY m.id`, []any{req.ID},
		[]any{&m.RunID, &m.CharacterID, &m.Status, &m.Attempts, &m.HTTPStatus, &m.Remaining, &m.Before, &m.Error, &m.StartedAt,
			&m.CompletedAt, &m.Leaf},
		func() { req.MemoryErasures = append(req.MemoryErasures, m) })
	if err != nil {
		return err
	}
	req.MemoryRechecks = []MemoryRecheck{}
	var r MemoryRecheck
	return pgrows.Each(ctx, q, endUserWhat, `
		SELECT r.verify_id, x.character_id, x.run_id, r.result, r.listed, r.total_count, coalesce(r.failure, ''),
		       r.http_status, r.attempts, r.listed_at, r.recorded_at
		FROM retention.memory_rechecks r JOIN retention.memory_erasures x ON x.id = r.memory_erasure_id
		WHERE x.request_id = $1 ORDER BY r.id`, []any{req.ID},
		[]any{&r.VerifyID, &r.CharacterID, &r.ErasureRunID, &r.Result, &r.Listed, &r.TotalCount, &r.Failure,
			&r.HTTPStatus, &r.Attempts, &r.ListedAt, &r.RecordedAt},
		func() { req.MemoryRechecks = append(req.MemoryRechecks, r) })
}

// writeRechecks writes a request's memory re-checks as a table, if there is any.
func writeRechecks(b *strings.Builder, rs []MemoryRecheck) {
	if len(rs) == 0 {
		return
	}
	b.WriteString("memory re-checks (retention verify):\n")
	tw := newTable(b, "VERIFY\tCHARACTER\tERASED BY RUN\tRESULT\tLISTED\tTOTAL_COUNT\tFAILURE\tHTTP\tATTEMPTS\tLISTED AT")
	for _, r := range rs {
		listed, total, http := "-", "-", "-"
		if r.Listed != nil {
			listed = fmt.Sprint(*r.Listed)
		}
		if r.TotalCount != nil {
			total = fmt.Sprint(*r.TotalCount)
		}
		if r.HTTPStatus != nil {
			http = fmt.Sprint(*r.HTTPStatus)
		}
		result := map[string]string{"gone": "stayed gone", "found": "FOUND AGAIN", "not_checked": "not checked"}[r.Result]
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", r.VerifyID, r.CharacterID, r.ErasureRunID, cmp.Or(result, r.Result),
			listed, total, dash(r.Failure), http, r.Attempts, r.ListedAt.UTC().Format(time.RFC3339))
	}
	_ = tw.Flush()
}

// Write writes the evidence as a table or JSON.
func (e *EndUserEvidence) Write(w io.Writer, f Format) error {
	switch f {
	case FormatJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(e)
	case FormatTable:
	default:
		return fmt.Errorf("the end user evidence is written as table or json, not %s", f)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "End user %q (generated %s)\n", e.EndUserID, e.GeneratedAt.UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "seen with %d character(s): %s\n", len(e.Characters), strings.Join(e.Characters, ", "))
	if len(e.Requests) == 0 {
		b.WriteString("no erasure request names this end user\n")
	}
	for _, r := range e.Requests {
		scope := "every character"
		if r.CharacterID != "" {
			scope = "character " + r.CharacterID
		}
		fmt.Fprintf(&b, "\nend user erasure request %d (%s%s): %s, requested by %s at %s, due %s, reason %q\n",
			r.ID, scope, map[bool]string{true: ", then the end user's record", false: ""}[r.EndUserRecord], r.State,
			r.RequestedBy, r.RequestedAt.UTC().Format(time.RFC3339), r.DueAt.UTC().Format(time.RFC3339), r.Reason)
		if r.CompletedAt != nil {
			fmt.Fprintf(&b, "completed at %s\n", r.CompletedAt.UTC().Format(time.RFC3339))
		}
		if len(r.BlockedBy) > 0 {
			fmt.Fprintf(&b, "blocked by hold(s) %v\n", r.BlockedBy)
		}
		fmt.Fprintf(&b, "sessions: %d deleted, %d left\n", r.SessionsDeleted, r.SessionsLeft)
		tw := newTable(&b, "CHARACTER\tERASURE REQUEST\tDELETED\tLEFT\tSEEN IN MEMORY\tMEMORY\tBLOCKED BY")
		for _, c := range r.Characters {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\t%v\n", c.CharacterID, c.ErasureRequest, c.SessionsDeleted, c.SessionsLeft,
				c.InMemory, dash(c.MemoryStatus), c.BlockedBy)
		}
		_ = tw.Flush()
		b.WriteString("memory erasures:\n")
		tw = newTable(&b, "RUN\tCHARACTER\tSTATUS\tATTEMPTS\tHTTP\tBEFORE\tREMAINING\tCOMPLETED\tLEAF\tERROR")
		for _, m := range r.MemoryErasures {
			char := m.CharacterID
			if char == "" {
				char = "(end user record)"
			}
			http, before, left := "-", "-", "-"
			if m.HTTPStatus != nil {
				http = fmt.Sprint(*m.HTTPStatus)
			}
			if m.Before != nil {
				before = fmt.Sprint(*m.Before)
			}
			if m.Remaining != nil {
				left = fmt.Sprint(*m.Remaining)
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", m.RunID, char, m.Status, m.Attempts, http, before, left,
				m.CompletedAt.UTC().Format(time.RFC3339), leafText(m.Leaf), m.Error)
		}
		_ = tw.Flush()
		writeRechecks(&b, r.MemoryRechecks)
	}
	if len(e.MemoryDeletions) > 0 {
		fmt.Fprintf(&b, "\nmemories deleted under a policy's memory_max_age:\n")
		tw := newTable(&b, "RUN\tCHARACTER\tMEMORY\tUPDATED\tPOLICY\tMEMORY_MAX_AGE\tSTATUS\tATTEMPTS\tCOMPLETED\tLEAF\tERROR")
		for _, d := range e.MemoryDeletions {
			policy := fmt.Sprint(d.PolicyID)
			if d.PolicyVersion != nil {
				policy += fmt.Sprintf(" version %d", *d.PolicyVersion)
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", d.RunID, d.CharacterID, printable(d.MemoryID),
				d.UpdatedAt.UTC().Format(time.RFC3339), policy, d.MemoryMaxAge, d.Status, d.Attempts,
				d.CompletedAt.UTC().Format(time.RFC3339), leafText(d.Leaf), d.Error)
		}
		_ = tw.Flush()
	}
	fmt.Fprintf(&b, "\n%s\n", e.Caveat)
	_, err := io.WriteString(w, b.String())
	return err
}

// leafText is a row's leaf index, or "queued" while it waits for the next seal.
func leafText(leaf *int64) string {
	if leaf == nil {
		return "queued"
	}
	return fmt.Sprint(*leaf)
}
