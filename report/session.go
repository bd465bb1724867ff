package report

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/convai-retention/retention/internal/pgrows"
	"github.com/convai-retention/retention/policy"
)

// The states of a session in its Evidence.
const (
	StateDeleted  = "deleted"   // confirmed deleted by the API
	StatePending  = "pending"   // sent by a run still in progress, no answer recorded yet
	StateWaiting  = "waiting"   // expired and not deleted: a run will send it (again)
	StateNotDue   = "not_due"   // never selected, for the Reason given
	StateNotFound = "not_found" // no attempt and not in the source
)

// Evidence is everything recorded about one session ID: for each character that has a session
// with that ID, every attempt to delete it and why it is or is not deleted.
type Evidence struct {
	GeneratedAt time.Time `json:"generated_at"`
	SessionID   string    `json:"session_id"`
	// Character is the character asked about; empty means every character with this session.
	Character string    `json:"character,omitempty"`
	Source    string    `json:"source"`
	Findings  []Finding `json:"findings"`
}

// Finding is one character's session.
type Finding struct {
	CharacterID string `json:"character_id"`
	// State is one of the State constants.
	State string `json:"state"`
	// Reason says in a sentence why the session is in its state.
	Reason string `json:"reason"`
	// ReasonCode is a word for Reason: deleted, pending, expired, no_policy, disabled, held,
	// not_expired, malformed, undated, not_in_source.
	ReasonCode string `json:"reason_code"`
	// Deletion is the attempt that deleted it, when State is deleted.
	Deletion *Attempt `json:"deletion,omitempty"`
	// Attempts are every attempt, oldest first.
	Attempts []Attempt `json:"attempts"`
	// InSource tells whether the source has the session now, and LastActiveAt its latest activity
	// there (nil when its latest row has none).
	InSource     bool       `json:"in_source"`
	LastActiveAt *time.Time `json:"last_active_at,omitempty"`
	// Policy is the policy in force for the character now.
	Policy *PolicyInForce `json:"policy"`
	// Hold is the active hold that protects the session now, if any.
	Hold *Hold `json:"hold,omitempty"`
	// ExpiresAt is when the session expires (or expired) under the policy in force:
	// last_active_at + max_age.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// Erasures are the erasure requests that ask for the session: for it alone, or for every
	// session of its character.
	Erasures []ErasureRow `json:"erasure_requests,omitempty"`
	// Memory is what Convai's lists said of the session's long-term memory and what became of
	// its end user's memory; nil when no list recorded anything of it.
	Memory *SessionMemory `json:"memory,omitempty"`
}

// Attempt is one row of retention.deletions, with its run and its seal.
type Attempt struct {
	DeletionID   int64     `json:"deletion_id"`
	RunID        int64     `json:"run_id"`
	RunStatus    string    `json:"run_status"`
	RunStartedAt time.Time `json:"run_started_at"`
	Status       string    `json:"status"`
	Attempts     int32     `json:"attempts"`
	HTTPStatus   *int32    `json:"http_status"`
	Error        *string   `json:"error"`
	// LastActiveAt is zero for a session an erasure request named that the source did not know.
	LastActiveAt      time.Time `json:"last_active_at,omitzero"`
	PolicyID          *int64    `json:"policy_id"`
	PolicyCharacterID *string   `json:"policy_character_id"`
	// PolicyVersion is the version (a retention.policy_history id) of the policy when the
	// session was claimed; nil before the history began (migration 006).
	PolicyVersion *int64 `json:"policy_version"`
	// MaxAge and ExpiredAt are empty for an erasure request's attempt: no policy applied.
	MaxAge    string    `json:"max_age"`
	ExpiredAt time.Time `json:"expired_at,omitzero"`
	// ErasureRequestID names the erasure request the session was sent under.
	ErasureRequestID *int64     `json:"erasure_request_id,omitempty"`
	RequestedAt      time.Time  `json:"requested_at"`
	CompletedAt      *time.Time `json:"completed_at"`
	LagSeconds       *float64   `json:"lag_seconds"`
	SealSeq          *int64     `json:"seal_seq"`
	SealHash         *string    `json:"seal_hash"`
	// VerifiedAbsentAt is when a verification last found a deleted row's session absent from
	// Convai's list; FoundPresentAt when one first found it present: the deletion is refuted,
	// and the session is sent again.
	VerifiedAbsentAt *time.Time `json:"verified_absent_at,omitempty"`
	FoundPresentAt   *time.Time `json:"found_present_at,omitempty"`
}

// Hold is an active row of retention.holds.
type Hold struct {
	ID int64 `json:"id"`
	// WholeCharacter is true for a hold on every session of the character.
	WholeCharacter bool      `json:"whole_character"`
	Reason         string    `json:"reason"`
	CreatedBy      string    `json:"created_by"`
	CreatedAt      time.Time `json:"created_at"`
}

// SessionOptions says which session to give the evidence of.
type SessionOptions struct {
	SessionID string
	// Character narrows the evidence to one character. Default: every character with a session
	// of that ID.
	Character string
	// Source is the session source, a relation the caller has checked. Default DefaultSource.
	Source pgx.Identifier
}

// Session gathers the evidence for one session in one read-only, repeatable-read transaction.
func Session(ctx context.Context, db Beginner, o SessionOptions) (*Evidence, error) {
	if len(o.Source) == 0 {
		o.Source = DefaultSource
	}
	ev := &Evidence{SessionID: o.SessionID, Character: o.Character, Source: strings.Join(o.Source, "."), Findings: []Finding{}}
	err := readOnly(ctx, db, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT now()`).Scan(&ev.GeneratedAt); err != nil {
			return fmt.Errorf("read database clock: %w", err)
		}
		ev.GeneratedAt = ev.GeneratedAt.UTC()
		rules, err := loadRules(ctx, tx, ev.GeneratedAt)
		if err != nil {
			return err
		}
		attempts, err := sessionAttempts(ctx, tx, o)
		if err != nil {
			return err
		}
		inSource, err := sessionInSource(ctx, tx, o)
		if err != nil {
			return err
		}
		chars := map[string]bool{}
		for c := range attempts {
			chars[c] = true
		}
		for c := range inSource {
			chars[c] = true
		}
		if o.Character != "" {
			chars[o.Character] = true
		}
		names := make([]string, 0, len(chars))
		for c := range chars {
			names = append(names, c)
		}
		sort.Strings(names)
		for _, c := range names {
			f := Finding{CharacterID: c, Attempts: attempts[c]}
			if f.Attempts == nil {
				f.Attempts = []Attempt{}
			}
			src, ok := inSource[c]
			f.InSource = ok
			if ok && !src.undated {
				t := src.lastActive.UTC()
				f.LastActiveAt = &t
			}
			if err := judge(ctx, tx, rules, o.SessionID, &f, src); err != nil {
				return err
			}
			if err := readSessionMemory(ctx, tx, o.SessionID, &f); err != nil {
				return err
			}
			ev.Findings = append(ev.Findings, f)
		}
		if len(ev.Findings) == 0 {
			ev.Findings = append(ev.Findings, Finding{State: StateNotFound, ReasonCode: "not_in_source", Attempts: []Attempt{},
				Reason: fmt.Sprintf("never selected: no attempt is recorded and %s has no session %q", ev.Source, o.SessionID)})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ev, nil
}

func sessionAttempts(ctx context.Context, tx pgx.Tx, o SessionOptions) (map[string][]Attempt, error) {
	out := map[string][]Attempt{}
	var c string
	var a Attempt
	var lastActive, expired *time.Time
	err := pgrows.Each(ctx, tx, "read attempts", `
		SELECT o.character_id, o.deletion_id, o.run_id, r.status, r.started_at, o.status, o.attempts,
		       o.http_status, o.error, o.last_active_at, o.policy_id, o.policy_character_id,
		       (SELECT max(h.id) FROM retention.policy_history h
		        WHERE h.policy_id = o.policy_id AND h.changed_at <= o.requested_at), coalesce(o.max_age::text, ''),
		       o.expired_at, o.requested_at, o.completed_at, o.lag_seconds, o.seal_seq, o.seal_hash,
		       (SELECT max(b.recorded_at) FROM retention.verifications v
		        JOIN retention.verification_batches b ON b.seq = v.batch_seq
		        WHERE v.deletion_id = o.deletion_id AND v.result = 'absent'),
		       (SELECT min(b.recorded_at) FROM retention.verifications v
		        JOIN retention.verification_batches b ON b.seq = v.batch_seq
		        WHERE v.deletion_id = o.deletion_id AND v.result = 'present'),
		       d.erasure_request_id
		FROM retention.deletion_outcomes o
		JOIN retention.deletions d ON d.id = o.deletion_id
		JOIN retention.run_history r ON r.run_id = o.run_id
		WHERE o.session_id = $1 AND ($2::text = '' OR o.character_id = $2::text)
		ORDER BY o.character_id, o.requested_at, o.deletion_id`, []any{o.SessionID, o.Character},
		[]any{&c, &a.DeletionID, &a.RunID, &a.RunStatus, &a.RunStartedAt, &a.Status, &a.Attempts,
			&a.HTTPStatus, &a.Error, &lastActive, &a.PolicyID, &a.PolicyCharacterID, &a.PolicyVersion, &a.MaxAge,
			&expired, &a.RequestedAt, &a.CompletedAt, &a.LagSeconds, &a.SealSeq, &a.SealHash,
			&a.VerifiedAbsentAt, &a.FoundPresentAt, &a.ErasureRequestID,
		}, func() {
			x := a
			x.LastActiveAt, x.ExpiredAt = time.Time{}, time.Time{}
			if lastActive != nil {
				x.LastActiveAt = *lastActive
			}
			if expired != nil {
				x.ExpiredAt = *expired
			}
			x.RunStartedAt, x.LastActiveAt, x.ExpiredAt, x.RequestedAt = x.RunStartedAt.UTC(), x.LastActiveAt.UTC(), x.ExpiredAt.UTC(), x.RequestedAt.UTC()
			x.CompletedAt = utcPtr(x.CompletedAt)
			out[c] = append(out[c], x)
		})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// sourceRow is a session as the source has it: its latest usable activity, and whether any row
// of it has none, or one policy.ValidLastActive refuses (then the job never selects it).
type sourceRow struct {
	lastActive time.Time
	undated    bool
}

func sessionInSource(ctx context.Context, tx pgx.Tx, o SessionOptions) (map[string]sourceRow, error) {
	out := map[string]sourceRow{}
	var c string
	var at *time.Time
	var undated bool
	err := pgrows.Each(ctx, tx, "look up the session in "+o.Source.Sanitize(), fmt.Sprintf(`
		SELECT s.character_id::text,
		       max(s.last_active_at) FILTER (WHERE s.last_active_at > $3 AND s.last_active_at < $4),
		       bool_or(s.last_active_at IS NULL OR s.last_active_at <= $3 OR s.last_active_at >= $4)
		FROM %s s
		WHERE s.session_id::text = $1 AND ($2::text = '' OR s.character_id::text = $2::text)
		  AND s.character_id IS NOT NULL
		GROUP BY 1`, o.Source.Sanitize()), []any{o.SessionID, o.Character, time.Time{}, policy.LastActiveBefore},
		[]any{&c, &at, &undated}, func() {
			r := sourceRow{undated: undated || at == nil}
			if at != nil {
				r.lastActive = *at
			}
			out[c] = r
		})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// rules are the retention rules as a run starting now would load them.
type rules struct {
	set      *policy.Set
	policies []policy.Policy
}

// loadRules reads the policies, with their thresholds at cutoff, and the active holds into the
// job's own rule set, so the evidence judges a session with the same code as a run.
func loadRules(ctx context.Context, tx pgx.Tx, cutoff time.Time) (*rules, error) {
	rows, err := tx.Query(ctx, `
		SELECT id, coalesce(character_id, ''), max_age::text, enabled, retention.expiry_threshold(max_age, $1)
		FROM retention.policies ORDER BY id`, cutoff)
	if err != nil {
		return nil, fmt.Errorf("read policies: %w", err)
	}
	policies, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (policy.Policy, error) {
		var p policy.Policy
		err := r.Scan(&p.ID, &p.CharacterID, &p.MaxAge, &p.Enabled, &p.Threshold)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("read policies: %w", err)
	}
	rows, err = tx.Query(ctx, `SELECT character_id, coalesce(session_id, '') FROM retention.holds WHERE released_at IS NULL`)
	if err != nil {
		return nil, fmt.Errorf("read holds: %w", err)
	}
	holds, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (policy.Hold, error) {
		var h policy.Hold
		err := r.Scan(&h.CharacterID, &h.SessionID)
		return h, err
	})
	if err != nil {
		return nil, fmt.Errorf("read holds: %w", err)
	}
	set, err := policy.NewSet(policies, holds)
	if err != nil {
		return nil, fmt.Errorf("policies: %w", err)
	}
	return &rules{set: set, policies: policies}, nil
}

// inForce is the policy in force for a character, as the report shows it.
func (r *rules) inForce(character string) PolicyInForce {
	d := r.set.InForce(character)
	p := PolicyInForce{Decision: string(d.Reason)}
	switch d.Reason {
	case policy.ReasonOwnPolicy, policy.ReasonDefaultPolicy:
		p.PolicyID, p.MaxAge = &d.Policy.ID, d.Policy.MaxAge
	case policy.ReasonDisabled:
		for _, own := range r.policies {
			if own.CharacterID == character {
				p.PolicyID = &own.ID
			}
		}
	}
	return p
}

// judge fills the policy, the hold, the expiry and the state of f with the job's rules
// (policy.Set, the code a run judges its records with).
func judge(ctx context.Context, tx pgx.Tx, r *rules, sessionID string, f *Finding, src sourceRow) error {
	p := r.inForce(f.CharacterID)
	f.Policy = &p
	rec := policy.Record{CharacterID: f.CharacterID, SessionID: sessionID, Superseded: src.undated}
	if f.LastActiveAt != nil {
		rec.LastActive = *f.LastActiveAt
	}
	// The IDs as Check sees them, whatever the date.
	wellFormed := policy.Check(policy.Record{CharacterID: rec.CharacterID, SessionID: rec.SessionID, LastActive: time.Unix(0, 0)}) == policy.SkipNone
	verdict := r.set.Judge(rec)
	if err := judgeExpiry(ctx, tx, r.set.InForce(f.CharacterID), f); err != nil {
		return err
	}
	if err := readHold(ctx, tx, sessionID, f); err != nil {
		return err
	}
	erasures, err := readErasures(ctx, tx, `character_id = $1 AND (session_id IS NULL OR session_id = $2)`, `id`,
		f.CharacterID, sessionID)
	if err != nil {
		return fmt.Errorf("character %q: %w", f.CharacterID, err)
	}
	if len(erasures) > 0 {
		f.Erasures = erasures
	}
	if judgeAttempts(f) {
		return nil
	}
	judgeNotDeleted(f, wellFormed, src.undated, verdict.Eligible)
	return nil
}

// judgeExpiry sets f's expiry when the policy in force (d) deletes and f has a last activity:
// last_active_at plus max_age, computed by the database as a run computes it.
func judgeExpiry(ctx context.Context, tx pgx.Tx, d policy.Decision, f *Finding) error {
	if !d.Delete || f.LastActiveAt == nil {
		return nil
	}
	var expiresAt time.Time
	if err := tx.QueryRow(ctx, `SELECT (($1::timestamptz AT TIME ZONE 'UTC') + $2::interval) AT TIME ZONE 'UTC'`,
		*f.LastActiveAt, d.Policy.MaxAge).Scan(&expiresAt); err != nil {
		return fmt.Errorf("expiry of character %q's session: %w", f.CharacterID, err)
	}
	expiresAt = expiresAt.UTC()
	f.ExpiresAt = &expiresAt
	return nil
}

// readHold sets f's hold: the first unreleased hold on the session or its whole character.
// A hold on the whole character also holds the policy in force.
func readHold(ctx context.Context, tx pgx.Tx, sessionID string, f *Finding) error {
	var h Hold
	err := tx.QueryRow(ctx, `
		SELECT id, session_id IS NULL, reason, created_by, created_at FROM retention.holds
		WHERE released_at IS NULL AND character_id = $1 AND (session_id IS NULL OR session_id = $2)
		ORDER BY session_id NULLS FIRST, id LIMIT 1`, f.CharacterID, sessionID).
		Scan(&h.ID, &h.WholeCharacter, &h.Reason, &h.CreatedBy, &h.CreatedAt)
	switch {
	case err == nil:
		h.CreatedAt = h.CreatedAt.UTC()
		f.Hold = &h
		if h.WholeCharacter {
			f.Policy.HeldBy = &h.ID
		}
	case !errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("read holds of character %q: %w", f.CharacterID, err)
	}
	return nil
}

// judgeAttempts names f's deletion from its attempts (a deletion a verification refuted is
// history, not a deletion) and sets the state when the attempts decide it: deleted, or pending
// while a run has sent it and recorded no answer. It reports whether they did.
func judgeAttempts(f *Finding) bool {
	for i := range f.Attempts {
		switch f.Attempts[i].Status {
		case "deleted":
			if f.Attempts[i].FoundPresentAt != nil {
				continue // refuted by a verification: history, not a deletion
			}
			a := f.Attempts[i]
			f.Deletion = &a
		case "pending":
			if f.Deletion == nil {
				f.State, f.ReasonCode = StatePending, "pending"
				f.Reason = fmt.Sprintf("sent by run %d, still in progress: no answer recorded yet", f.Attempts[i].RunID)
			}
		}
	}
	if d := f.Deletion; d != nil && d.ErasureRequestID != nil {
		f.State, f.ReasonCode = StateDeleted, "deleted"
		f.Reason = fmt.Sprintf("deleted: confirmed at %s by run %d, under erasure request %d (whatever its age or policy)",
			stamp(*d.CompletedAt), d.RunID, *d.ErasureRequestID)
		return true
	}
	if d := f.Deletion; d != nil {
		f.State, f.ReasonCode = StateDeleted, "deleted"
		under := policyName(d.PolicyID, d.PolicyCharacterID)
		if d.PolicyVersion != nil {
			under += fmt.Sprintf(" version %d", *d.PolicyVersion)
		}
		f.Reason = fmt.Sprintf("deleted: confirmed at %s by run %d, under %s (max_age %s; expired at %s)",
			stamp(*d.CompletedAt), d.RunID, under, d.MaxAge, stamp(d.ExpiredAt))
		return true
	}
	return f.State == StatePending
}

// judgeNotDeleted sets the state and reason of a session that is neither deleted nor pending:
// the first rule that keeps it, or expired and waiting for the next run. wellFormed, undated
// and eligible are what the job's rules say of its record.
func judgeNotDeleted(f *Finding, wellFormed, undated, eligible bool) {
	p := f.Policy
	tried := ""
	if n := len(f.Attempts); n > 0 {
		last := f.Attempts[n-1]
		tried = fmt.Sprintf("; %d attempt(s) recorded, the last by run %d %s", n, last.RunID, last.Status)
		if last.Error != nil {
			tried += ": " + *last.Error
		}
	}
	never := "never selected: "
	if len(f.Attempts) > 0 {
		never = "not deleted: "
	}
	f.State = StateNotDue
	switch {
	case !f.InSource:
		f.State, f.ReasonCode = StateNotFound, "not_in_source"
		f.Reason = never + "the source has no such session" + tried
	case !wellFormed:
		f.ReasonCode = "malformed"
		f.Reason = never + "its IDs are malformed (blank, too long or with control characters), so the job skips it" + tried
	case undated:
		f.ReasonCode = "undated"
		f.Reason = never + "a row of it in the source has no usable last_active_at (none, infinite, or outside the years 1 to 9999), so it never expires" + tried
	case p.Decision == "no_policy":
		f.ReasonCode = "no_policy"
		f.Reason = never + fmt.Sprintf("no policy applies to character %q (no own policy, no enabled default)", f.CharacterID) + tried
	case p.Decision == "disabled":
		f.ReasonCode = "disabled"
		f.Reason = never + fmt.Sprintf("character %q's own policy %d is disabled", f.CharacterID, deref(p.PolicyID)) + tried
	case f.Hold != nil:
		f.ReasonCode = "held"
		what := "this session"
		if f.Hold.WholeCharacter {
			what = "every session of the character"
		}
		f.Reason = never + fmt.Sprintf("held by hold %d on %s (reason: %s; placed by %s at %s)",
			f.Hold.ID, what, f.Hold.Reason, f.Hold.CreatedBy, stamp(f.Hold.CreatedAt)) + tried
	case !eligible:
		f.ReasonCode = "not_expired"
		f.Reason = never + fmt.Sprintf("not yet expired: last active %s, max_age %s under %s; it expires at %s",
			stamp(*f.LastActiveAt), p.MaxAge, policyName(p.PolicyID, policyChar(*p, f.CharacterID)), stamp(*f.ExpiresAt)) + tried
	default:
		f.State, f.ReasonCode = StateWaiting, "expired"
		f.Reason = fmt.Sprintf("expired at %s under %s and not deleted yet: the next run sends it", stamp(*f.ExpiresAt),
			policyName(p.PolicyID, policyChar(*p, f.CharacterID))) + tried
	}
}

func policyChar(p PolicyInForce, character string) *string {
	if p.Decision == "own_policy" {
		return &character
	}
	return nil
}

func policyName(id *int64, character *string) string {
	switch {
	case id == nil:
		return "no recorded policy"
	case character == nil:
		return fmt.Sprintf("default policy %d", *id)
	}
	return fmt.Sprintf("policy %d of %q", *id, *character)
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") }
