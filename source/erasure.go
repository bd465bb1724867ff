package source

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/convai-retention/retention/job"
	"github.com/convai-retention/retention/policy"
)

// OpenErasures returns the erasure requests without a completion whose character belongs to
// shard, oldest first, except the children of end users' requests (see OpenEndUserErasures), each with its sessions not yet deleted: a one-session request's session
// (with its latest activity in the source, if the source has it), or every session of the
// character in the source. Then the complete requests whose deletions a verification refuted,
// with those sessions (Refuted).
func (s *Store) OpenErasures(ctx context.Context, shard job.Shard) ([]job.ErasureWork, error) {
	rows, err := s.q.Query(ctx, `
		SELECT e.id, e.character_id, coalesce(e.session_id, ''), e.requested_at, e.due_at,
		       e.session_id IS NOT NULL AND retention.is_deleted(e.character_id, e.session_id)
		FROM retention.erasure_requests e
		WHERE NOT EXISTS (SELECT 1 FROM retention.erasure_completions c WHERE c.request_id = e.id)
		  AND e.end_user_request_id IS NULL -- an end user's request's children: OpenEndUserErasures
		ORDER BY e.id`)
	if err != nil {
		return nil, fmt.Errorf("read erasure requests: %w", err)
	}
	type open struct {
		req     job.ErasureRequest
		deleted bool
	}
	var reqs []open
	var o open
	_, err = pgx.ForEachRow(rows, []any{&o.req.ID, &o.req.CharacterID, &o.req.SessionID, &o.req.RequestedAt, &o.req.DueAt, &o.deleted}, func() error {
		if policy.Shard(o.req.CharacterID, shard.Count) == shard.Index {
			reqs = append(reqs, o)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read erasure requests: %w", err)
	}
	work := make([]job.ErasureWork, 0, len(reqs))
	for _, o := range reqs {
		w := job.ErasureWork{Request: o.req}
		switch {
		case o.deleted:
			// deleted already: nothing to send, and the run completes the request
		case o.req.SessionID != "":
			var at *time.Time
			if err := s.q.QueryRow(ctx, s.src.erasureOneSQL, o.req.CharacterID, o.req.SessionID).Scan(&at); err != nil {
				return nil, fmt.Errorf("look up the session of erasure request %d in %s: %w", o.req.ID, s.src.rel, err)
			}
			r := policy.Record{CharacterID: o.req.CharacterID, SessionID: o.req.SessionID}
			if at != nil {
				r.LastActive = *at
			}
			w.Sessions = []policy.Record{r}
		default:
			rows, err := s.q.Query(ctx, s.src.erasureAllSQL, o.req.CharacterID)
			if err != nil {
				return nil, fmt.Errorf("read the sessions of erasure request %d from %s: %w", o.req.ID, s.src.rel, err)
			}
			var id string
			var at *time.Time
			_, err = pgx.ForEachRow(rows, []any{&id, &at}, func() error {
				r := policy.Record{CharacterID: o.req.CharacterID, SessionID: id}
				if at != nil {
					r.LastActive = *at
				}
				w.Sessions = append(w.Sessions, r)
				return nil
			})
			if err != nil {
				return nil, fmt.Errorf("read the sessions of erasure request %d from %s: %w", o.req.ID, s.src.rel, err)
			}
		}
		work = append(work, w)
	}
	return s.refutedErasures(ctx, shard, work)
}

// refutedErasures appends to work the complete requests with sessions whose deletion under them a
// verification has since refuted (found present at Convai): the run sends those again, under the
// same request. Only sessions ever found present are looked at (an index probe).
func (s *Store) refutedErasures(ctx context.Context, shard job.Shard, work []job.ErasureWork) ([]job.ErasureWork, error) {
	rows, err := s.q.Query(ctx, `
		SELECT e.id, e.character_id, coalesce(e.session_id, ''), e.requested_at, e.due_at, x.session_id, max(x.last_active_at)
		FROM retention.erasure_requests e
		JOIN retention.erasure_completions ec ON ec.request_id = e.id
		JOIN retention.claims c ON c.erasure_request_id = e.id
		CROSS JOIN LATERAL unnest(c.session_ids, c.last_active_at) AS x(session_id, last_active_at)
		WHERE EXISTS (SELECT 1 FROM retention.verifications v
		              WHERE v.character_id = c.character_id AND v.session_id = x.session_id AND v.result = 'present')
		  AND NOT retention.is_deleted(c.character_id, x.session_id)
		GROUP BY 1, 2, 3, 4, 5, 6
		ORDER BY 1, 6`)
	if err != nil {
		return nil, fmt.Errorf("read refuted erasures: %w", err)
	}
	var req job.ErasureRequest
	var id string
	var at *time.Time
	_, err = pgx.ForEachRow(rows, []any{&req.ID, &req.CharacterID, &req.SessionID, &req.RequestedAt, &req.DueAt, &id, &at}, func() error {
		if policy.Shard(req.CharacterID, shard.Count) != shard.Index {
			return nil
		}
		if n := len(work); n == 0 || work[n-1].Request.ID != req.ID || !work[n-1].Refuted {
			work = append(work, job.ErasureWork{Request: req, Refuted: true})
		}
		r := policy.Record{CharacterID: req.CharacterID, SessionID: id}
		if at != nil {
			r.LastActive = *at
		}
		work[len(work)-1].Sessions = append(work[len(work)-1].Sessions, r)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read refuted erasures: %w", err)
	}
	return work, nil
}

// claimErasure writes an erasure chunk as the run's claim through retention.claim_erasure,
// which checks the run's credentials and lock and the request, and leaves out sessions held or
// already deleted. A session the source does not know is claimed without a last activity.
func (r *Run) claimErasure(ctx context.Context, c job.Chunk) (job.Claim, error) {
	ids := make([]string, len(c.Sessions))
	at := make([]*time.Time, len(c.Sessions))
	for i, rec := range c.Sessions {
		ids[i] = rec.SessionID
		if !rec.LastActive.IsZero() {
			t := rec.LastActive
			at[i] = &t
		}
	}
	claim := job.Claim{CharacterID: c.CharacterID}
	err := r.s.retrying(ctx, func(ctx context.Context) error {
		return r.s.q.QueryRow(ctx, `SELECT claim_id, session_ids FROM retention.claim_erasure($1, $2, $3, $4, $5)`,
			r.id, r.token, c.Erasure, ids, at,
		).Scan(&claim.ID, &claim.SessionIDs)
	})
	if err != nil {
		return job.Claim{}, fmt.Errorf("claim %d sessions of erasure request %d: %w", len(ids), c.Erasure, lockLost(err))
	}
	return claim, nil
}

// CompleteErasure asks retention.complete_erasure to mark the request complete: it does when
// every session of the request is deleted and no active hold matches it.
func (r *Run) CompleteErasure(ctx context.Context, requestID int64) (bool, error) {
	var ok bool
	err := r.s.retrying(ctx, func(ctx context.Context) error {
		return r.s.q.QueryRow(ctx, `SELECT retention.complete_erasure($1, $2, $3)`, r.id, r.token, requestID).Scan(&ok)
	})
	if err != nil {
		return false, fmt.Errorf("complete erasure request %d: %w", requestID, err)
	}
	return ok, nil
}

// ErasureRequest is one request to file with FileErasure.
type ErasureRequest struct {
	CharacterID string
	SessionID   string // "" for every session of the character
	Reason      string
	// RequestedBy names who asked, or who files for them; "" is the database user.
	RequestedBy string
	// RequestedAt is when the person asked; zero is now.
	RequestedAt time.Time
	// Due is how long after RequestedAt the request must be done; 0 is the schema's default
	// (30 days).
	Due time.Duration
}

// Filed is a request as the database stored it.
type Filed struct {
	ID          int64     `json:"id"`
	RequestedAt time.Time `json:"requested_at"`
	DueAt       time.Time `json:"due_at"`
	RequestedBy string    `json:"requested_by"`
	FiledBy     string    `json:"filed_by"`
}

// ErrBadRequest wraps the schema's refusal of an erasure request (a malformed ID, a blank
// reason, a due time not after the request, a request dated in the future).
var ErrBadRequest = errors.New("erasure request refused")

// FileErasure inserts one erasure request and returns it as stored.
func (s *Store) FileErasure(ctx context.Context, req ErasureRequest) (Filed, error) {
	sess, by := nullable(req.SessionID), nullable(req.RequestedBy)
	at, due := filingTimes(req.RequestedAt, req.Due)
	var f Filed
	// $4 is text: beside current_user (a name) it would be taken as a name, cut to 63 bytes.
	err := s.q.QueryRow(ctx, `
		INSERT INTO retention.erasure_requests (character_id, session_id, reason, requested_by, requested_at, due_at)
		VALUES ($1, $2, $3, coalesce($4::text, current_user::text), coalesce($5, now()), coalesce($5, now()) + $6::interval)
		RETURNING id, requested_at, due_at, requested_by, filed_by::text`,
		req.CharacterID, sess, req.Reason, by, at, due).Scan(&f.ID, &f.RequestedAt, &f.DueAt, &f.RequestedBy, &f.FiledBy)
	if err != nil {
		return Filed{}, filingError(err, "file erasure request")
	}
	return f, nil
}

// filingTimes returns a request's requested_at and its time to due_at as the inserts of
// retention.erasure_requests and end_user_requests take them: nil, for the database's
// defaults (now, and the table's due period), when zero.
func filingTimes(requestedAt time.Time, due time.Duration) (*time.Time, *string) {
	var at *time.Time
	if !requestedAt.IsZero() {
		at = &requestedAt
	}
	var interval *string
	if due > 0 {
		d := fmt.Sprintf("%d microseconds", due.Microseconds())
		interval = &d
	}
	return at, interval
}

// filingError wraps the schema's refusal of a request (a check or a NOT NULL) in ErrBadRequest,
// and any other error with what.
func filingError(err error, what string) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "23514" || pgErr.Code == "23502") {
		return fmt.Errorf("%w: %s", ErrBadRequest, pgErr.Message)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// Footprint is what the database knows of an erasure request's subject.
type Footprint struct {
	// InSource counts the source's rows of the character (of the session, for a one-session
	// request).
	InSource int64
	// Deleted counts the sessions recorded deleted of the character (the session).
	Deleted int64
}

// ErasureFootprint counts what the source and the recorded deletions know of a character, or
// of one of its sessions: a request for a character nobody knows (a typo, spaces or case)
// would complete with nothing deleted.
func (s *Store) ErasureFootprint(ctx context.Context, characterID, sessionID string) (Footprint, error) {
	var f Footprint
	var sess *string
	if sessionID != "" {
		sess = &sessionID
	}
	err := s.q.QueryRow(ctx, fmt.Sprintf(`
		SELECT (SELECT count(*) FROM %s s WHERE s.character_id::text = $1 AND ($2::text IS NULL OR s.session_id::text = $2)),
		       (SELECT count(*) FROM retention.deletions d
		        WHERE d.status = 'deleted' AND d.character_id = $1 AND ($2::text IS NULL OR d.session_id = $2))`, s.src.rel.quoted()),
		characterID, sess).Scan(&f.InSource, &f.Deleted)
	if err != nil {
		return f, fmt.Errorf("look up %q in %s and the deletions: %w", characterID, s.src.rel, err)
	}
	return f, nil
}
