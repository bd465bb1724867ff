package source

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/convai-retention/retention/internal/pgrows"
	"github.com/convai-retention/retention/job"
	"github.com/convai-retention/retention/policy"
)

var (
	_ job.EndUserReader   = (*Store)(nil)
	_ job.EndUserRunStore = (*Run)(nil)
)

// OpenEndUserErasures returns the end users' requests without a completion, oldest first,
// each with every character it covers (retention.end_user_memory): the child that deletes its
// sessions, the holds that block it, whether its memory was erased, and the end user's
// sessions of it in the set that are not deleted yet. A completed request comes too, reopened,
// when a verification found memories again that it erased and no erasure stands since
// (memory_reopened: a pending or failed second attempt keeps it so): with those characters only,
// their holds, and no sessions.
func (s *Store) OpenEndUserErasures(ctx context.Context) ([]job.EndUserWork, error) {
	rows, err := s.q.Query(ctx, `
		SELECT q.id, q.end_user_id, coalesce(q.character_id, ''), q.end_user_record, q.requested_at, q.due_at,
		       coalesce((SELECT x.status = 'erased' FROM retention.memory_erasures x
		                 WHERE x.request_id = q.id AND x.character_id IS NULL ORDER BY x.id DESC LIMIT 1), false),
		       EXISTS (SELECT 1 FROM retention.end_user_completions c WHERE c.request_id = q.id)
		FROM retention.end_user_requests q
		WHERE NOT EXISTS (SELECT 1 FROM retention.end_user_completions c WHERE c.request_id = q.id)
		   OR EXISTS (SELECT 1 FROM retention.end_user_memory m WHERE m.request_id = q.id AND m.memory_reopened)
		ORDER BY q.id`)
	if err != nil {
		return nil, fmt.Errorf("read end users' erasure requests: %w", err)
	}
	var work []job.EndUserWork
	var w job.EndUserWork
	_, err = pgx.ForEachRow(rows, []any{&w.Request.ID, &w.Request.EndUserID, &w.Request.CharacterID, &w.Request.Record,
		&w.Request.RequestedAt, &w.Request.DueAt, &w.RecordErased, &w.Reopened}, func() error {
		work = append(work, w)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read end users' erasure requests: %w", err)
	}
	for i := range work {
		if work[i].Characters, err = s.endUserCharacters(ctx, work[i].Request, work[i].Reopened); err != nil {
			return nil, err
		}
	}
	return work, nil
}

// endUserCharacters reads the characters of one request, with the end user's sessions of each;
// of a reopened request, those whose memory was found again, without sessions: the request's
// sessions were deleted, and the end user's later ones are not its to delete.
func (s *Store) endUserCharacters(ctx context.Context, r job.EndUserRequest, reopened bool) ([]job.EndUserCharacter, error) {
	rows, err := s.q.Query(ctx, `
		SELECT m.character_id, m.erasure_request_id, coalesce(m.blocked_by, '{}'), coalesce(m.memory_status = 'erased', false)
		FROM retention.end_user_memory m
		WHERE m.request_id = $1 AND (NOT $2 OR m.memory_reopened)
		ORDER BY m.character_id`, r.ID, reopened)
	if err != nil {
		return nil, fmt.Errorf("read the characters of end user request %d: %w", r.ID, err)
	}
	var out []job.EndUserCharacter
	var c job.EndUserCharacter
	_, err = pgx.ForEachRow(rows, []any{&c.CharacterID, &c.ErasureID, &c.Holds, &c.MemoryErased}, func() error {
		out = append(out, c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the characters of end user request %d: %w", r.ID, err)
	}
	if reopened {
		return out, nil
	}
	index := make(map[string]int, len(out))
	for i, c := range out {
		index[c.CharacterID] = i
	}
	// The set's sessions of the end user; an undated one ('infinity') is sent without a date.
	rows, err = s.q.Query(ctx, `
		SELECT s.character_id, s.session_id, CASE WHEN s.last_active_at < 'infinity' THEN s.last_active_at END
		FROM retention.sessions s
		WHERE s.end_user_id = $1 AND ($2::text IS NULL OR s.character_id = $2)
		  AND NOT retention.is_deleted(s.character_id, s.session_id)
		ORDER BY s.character_id, s.session_id`, r.EndUserID, nullable(r.CharacterID))
	if err != nil {
		return nil, fmt.Errorf("read the sessions of end user request %d: %w", r.ID, err)
	}
	var char, id string
	var at *time.Time
	_, err = pgx.ForEachRow(rows, []any{&char, &id, &at}, func() error {
		i, ok := index[char]
		if !ok {
			return nil // seen since the last expansion: the next run files its child
		}
		rec := policy.Record{CharacterID: char, SessionID: id}
		if at != nil {
			rec.LastActive = *at
		}
		out[i].Sessions = append(out[i].Sessions, rec)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the sessions of end user request %d: %w", r.ID, err)
	}
	return out, nil
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// ExpandEndUserRequests files the children of every open end user's request for the
// characters seen since (retention.expand_end_user_requests).
func (r *Run) ExpandEndUserRequests(ctx context.Context) (int, error) {
	var n int
	err := r.s.retrying(ctx, func(ctx context.Context) error {
		return r.s.q.QueryRow(ctx, `SELECT retention.expand_end_user_requests($1, $2)`, r.id, r.token).Scan(&n)
	})
	if err != nil {
		return 0, fmt.Errorf("expand end users' erasure requests: %w", err)
	}
	return n, nil
}

// RecordMemoryErasure records one memory erasure (retention.record_memory_erasure).
func (r *Run) RecordMemoryErasure(ctx context.Context, m job.MemoryErasure) error {
	var httpStatus *int
	if m.HTTPStatus != 0 {
		httpStatus = &m.HTTPStatus
	}
	var remaining, before *int64
	if m.Remaining >= 0 {
		remaining = &m.Remaining
	}
	if m.Before >= 0 {
		before = &m.Before
	}
	err := r.s.retrying(ctx, func(ctx context.Context) error {
		_, err := r.s.q.Exec(ctx, `SELECT retention.record_memory_erasure($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
			r.id, r.token, m.RequestID, nullable(m.CharacterID), string(m.Status), m.Attempts, httpStatus, remaining,
			nullable(m.Error), m.StartedAt, before)
		return err
	})
	if err != nil {
		return fmt.Errorf("record memory erasure: %w", err)
	}
	return nil
}

// CompleteEndUserErasure completes what is done of the request and returns its state
// (retention.complete_end_user_erasure): completed, blocked or open.
func (r *Run) CompleteEndUserErasure(ctx context.Context, requestID int64) (string, error) {
	var state string
	err := r.s.retrying(ctx, func(ctx context.Context) error {
		return r.s.q.QueryRow(ctx, `SELECT retention.complete_end_user_erasure($1, $2, $3)`, r.id, r.token, requestID).Scan(&state)
	})
	if err != nil {
		return "", fmt.Errorf("complete end user request %d: %w", requestID, err)
	}
	return state, nil
}

// EndUserErasure is one end user's request to file with FileEndUserErasure.
type EndUserErasure struct {
	EndUserID string
	// CharacterID is the one character asked for; "" asks for every character the end user
	// talked to.
	CharacterID string
	// Record asks that the end user's record be deleted once every memory is erased.
	Record bool
	// Reason, RequestedBy, RequestedAt and Due are as in ErasureRequest.
	Reason      string
	RequestedBy string
	RequestedAt time.Time
	Due         time.Duration
}

// FiledEndUser is an end user's request as the database stored it, with the characters it
// covers so far.
type FiledEndUser struct {
	Filed
	Characters []string `json:"characters"`
}

// FileEndUserErasure inserts one end user's request; the database files its children for the
// characters it knows the end user talked to (or the one named).
func (s *Store) FileEndUserErasure(ctx context.Context, req EndUserErasure) (FiledEndUser, error) {
	at, due := filingTimes(req.RequestedAt, req.Due)
	var f FiledEndUser
	err := s.q.QueryRow(ctx, `
		INSERT INTO retention.end_user_requests (end_user_id, character_id, end_user_record, reason, requested_by, requested_at, due_at)
		VALUES ($1, $2, $3, $4, coalesce($5::text, current_user::text), coalesce($6, now()), coalesce($6, now()) + $7::interval)
		RETURNING id, requested_at, due_at, requested_by, filed_by::text`,
		req.EndUserID, nullable(req.CharacterID), req.Record, req.Reason, nullable(req.RequestedBy), at, due).Scan(
		&f.ID, &f.RequestedAt, &f.DueAt, &f.RequestedBy, &f.FiledBy)
	if err != nil {
		return FiledEndUser{}, filingError(err, "file end user erasure request")
	}
	f.Characters, err = pgrows.Strings(ctx, s.q, fmt.Sprintf("read the characters of end user request %d", f.ID),
		`SELECT character_id FROM retention.erasure_requests WHERE end_user_request_id = $1 ORDER BY 1`, f.ID)
	return f, err
}

// EndUserFootprint counts what the set knows of an end user: their sessions not yet deleted,
// and the characters they talked to (retention.end_users and the set).
func (s *Store) EndUserFootprint(ctx context.Context, endUserID string) (sessions, characters int64, err error) {
	err = s.q.QueryRow(ctx, `
		SELECT (SELECT count(*) FROM retention.sessions WHERE end_user_id = $1),
		       (SELECT count(*) FROM (SELECT character_id FROM retention.end_users WHERE end_user_id = $1
		                              UNION SELECT character_id FROM retention.sessions WHERE end_user_id = $1) c)`,
		endUserID).Scan(&sessions, &characters)
	if err != nil {
		return 0, 0, fmt.Errorf("look up end user %q in the set: %w", endUserID, err)
	}
	return sessions, characters, nil
}
