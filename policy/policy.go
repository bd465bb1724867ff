// Package policy holds the retention rules, free of I/O and of any clock: which policy applies to
// a character, whether a hold protects a session, whether a session record is well-formed, whether
// it has expired, and which shard owns a character.
//
// The database computes each policy's threshold (the run's cut-off minus max_age) once per run, so
// interval arithmetic follows PostgreSQL exactly; this package only compares instants.
package policy

import (
	"fmt"
	"hash/fnv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// MaxIDLength is the longest character or session ID the job will send. Longer values are not
// Convai IDs and are skipped as malformed.
const MaxIDLength = 256

// Policy is one row of retention.policies, as seen by a run.
type Policy struct {
	ID int64
	// CharacterID is empty for the default policy.
	CharacterID string
	// MaxAge is the interval as PostgreSQL prints it, e.g. "30 days". It is recorded with each
	// deletion; the rules use Threshold.
	MaxAge  string
	Enabled bool
	// Threshold is the run's cut-off minus MaxAge: a session whose last activity is at or before
	// it has expired.
	Threshold time.Time
}

// IsDefault reports whether p is the default policy.
func (p Policy) IsDefault() bool { return p.CharacterID == "" }

// Reason says why a Decision was made.
type Reason string

// The reasons a Decision carries.
const (
	ReasonOwnPolicy     Reason = "own_policy"     // the character's own enabled policy applies
	ReasonDefaultPolicy Reason = "default_policy" // the enabled default policy applies
	ReasonDisabled      Reason = "disabled"       // the character's own policy is disabled: never delete
	ReasonNoPolicy      Reason = "no_policy"      // no own policy and no enabled default: never touched
	ReasonHeld          Reason = "held"           // an active hold protects the whole character
	// ReasonErasureRequest: a person asked for the session's deletion (a run's erasure
	// requests, not a Decision of the policies).
	ReasonErasureRequest Reason = "erasure_request"
)

// Decision is what the rules say about one character.
type Decision struct {
	// Delete is true when expired sessions of the character may be deleted.
	Delete bool
	Reason Reason
	// Policy is the policy that applies; zero unless Delete.
	Policy Policy
}

// Expired reports whether a session last active at lastActive may be deleted under d.
func (d Decision) Expired(lastActive time.Time) bool {
	return d.Delete && !lastActive.IsZero() && !lastActive.After(d.Policy.Threshold)
}

// Hold is an active row of retention.holds. An empty SessionID holds the whole character.
type Hold struct {
	CharacterID string
	SessionID   string
}

// Set is the rules of one run: the policies and the holds active when it started.
type Set struct {
	byCharacter map[string]Policy
	def         *Policy
	heldChars   map[string]bool
	heldSess    map[Hold]bool
	// sessHeldChars names the characters with at least one session held.
	sessHeldChars map[string]bool
}

// NewSet checks the policies (at most one default, at most one per character, a threshold on
// each) and indexes them and the holds.
func NewSet(policies []Policy, holds []Hold) (*Set, error) {
	s := &Set{
		byCharacter:   make(map[string]Policy, len(policies)),
		heldChars:     make(map[string]bool),
		heldSess:      make(map[Hold]bool),
		sessHeldChars: make(map[string]bool),
	}
	for _, p := range policies {
		if p.Threshold.IsZero() {
			return nil, fmt.Errorf("policy %d: no threshold", p.ID)
		}
		if p.IsDefault() {
			if s.def != nil {
				return nil, fmt.Errorf("policies %d and %d are both the default policy", s.def.ID, p.ID)
			}
			p := p
			s.def = &p
			continue
		}
		if prev, ok := s.byCharacter[p.CharacterID]; ok {
			return nil, fmt.Errorf("policies %d and %d both name character %q", prev.ID, p.ID, p.CharacterID)
		}
		s.byCharacter[p.CharacterID] = p
	}
	for _, h := range holds {
		if h.SessionID == "" {
			s.heldChars[h.CharacterID] = true
		} else {
			s.heldSess[h] = true
			s.sessHeldChars[h.CharacterID] = true
		}
	}
	return s, nil
}

// CheckThresholds returns an error naming the first enabled policy whose threshold is not before
// the run's cut-off: such a policy would treat a session active right now as expired. The schema
// refuses the intervals that cause it; this guards the rule itself.
func CheckThresholds(cutoff time.Time, policies []Policy) error {
	for _, p := range policies {
		if p.Enabled && !p.Threshold.Before(cutoff) {
			who := "the default policy"
			if !p.IsDefault() {
				who = fmt.Sprintf("the policy of character %q", p.CharacterID)
			}
			return fmt.Errorf("policy %d (%s): max_age %q puts the expiry threshold %s at or after the cut-off %s",
				p.ID, who, p.MaxAge, p.Threshold.UTC().Format(time.RFC3339), cutoff.UTC().Format(time.RFC3339))
		}
	}
	return nil
}

// Decide applies the precedence: an active hold on the character beats every policy; the
// character's own row wins over the default; an own row that is disabled means never; without
// an own row the enabled default applies; otherwise the character is never touched. A held
// character's Decision still names the policy that would apply, so a caller can tell which of
// its sessions the hold protects.
func (s *Set) Decide(characterID string) Decision {
	d := s.InForce(characterID)
	if s.heldChars[characterID] {
		d.Delete, d.Reason = false, ReasonHeld
	}
	return d
}

// InForce is the decision for a character leaving its holds aside: the policy in force, as a
// report shows it next to the holds. Runs use Decide.
func (s *Set) InForce(characterID string) Decision {
	if p, ok := s.byCharacter[characterID]; ok {
		if !p.Enabled {
			return Decision{Reason: ReasonDisabled}
		}
		return Decision{Delete: true, Reason: ReasonOwnPolicy, Policy: p}
	}
	if s.def != nil && s.def.Enabled {
		return Decision{Delete: true, Reason: ReasonDefaultPolicy, Policy: *s.def}
	}
	return Decision{Reason: ReasonNoPolicy}
}

// Verdict is what the rules say about one session record.
type Verdict struct {
	// Eligible is true when the session may be deleted now.
	Eligible bool
	// Skip is set when the record is malformed, or expired but held. A record that is simply not
	// expired, or whose character no policy deletes, has neither Eligible nor Skip.
	Skip     Skip
	Decision Decision
}

// Judge applies every rule to one record: well-formedness, precedence, expiry, holds. A record
// already deleted or superseded is never eligible and never counted as skipped.
func (s *Set) Judge(r Record) Verdict {
	if r.Deleted || r.Superseded {
		return Verdict{}
	}
	if skip := Check(r); skip != SkipNone {
		return Verdict{Skip: skip}
	}
	d := s.Decide(r.CharacterID)
	due := d.Policy.Enabled && !d.Policy.Threshold.IsZero() && !r.LastActive.After(d.Policy.Threshold)
	switch {
	case !due:
		return Verdict{Decision: d}
	case d.Reason == ReasonHeld || s.SessionHeld(r.CharacterID, r.SessionID):
		return Verdict{Skip: SkipHeld, Decision: d}
	}
	return Verdict{Eligible: true, Decision: d}
}

// Held reports whether an active hold protects the session: one on its character or one naming
// it. An erasure request yields to it.
func (s *Set) Held(characterID, sessionID string) bool {
	return s.heldChars[characterID] || s.SessionHeld(characterID, sessionID)
}

// AnyHeld reports whether an active hold names the character or any one of its sessions: a
// request for every session of the character yields to it until it is released.
func (s *Set) AnyHeld(characterID string) bool {
	return s.heldChars[characterID] || s.sessHeldChars[characterID]
}

// SessionHeld reports whether an active hold names this session (a hold on the whole character
// is reported by Decide).
func (s *Set) SessionHeld(characterID, sessionID string) bool {
	return s.heldSess[Hold{CharacterID: characterID, SessionID: sessionID}]
}

// Horizon is the latest threshold of any policy that can delete: no session last active after it
// can be expired. ok is false when no policy can delete anything.
func (s *Set) Horizon() (t time.Time, ok bool) {
	consider := func(p Policy) {
		if p.Enabled && (!ok || p.Threshold.After(t)) {
			t, ok = p.Threshold, true
		}
	}
	if s.def != nil {
		consider(*s.def)
	}
	for _, p := range s.byCharacter {
		consider(p)
	}
	return t, ok
}

// Skip says why a session record was met but not sent.
type Skip string

// The reasons a record is skipped.
const (
	SkipNone      Skip = ""
	SkipMalformed Skip = "malformed" // a NULL, empty, over-long or non-UTF-8 ID, or no usable last activity
	SkipDuplicate Skip = "duplicate" // the same session met again in one run
	SkipHeld      Skip = "held"      // an active hold protects it
)

// Record is one row of the session source. NULL IDs arrive as empty strings and a NULL
// last_active_at as the zero time.
type Record struct {
	CharacterID string
	SessionID   string
	LastActive  time.Time
	// Deleted says the session is already recorded deleted.
	Deleted bool
	// Superseded says a later row of the same session exists (or one without a date): this row
	// says nothing about when the session was last active.
	Superseded bool
}

// Check reports whether r is well-formed enough to be sent: both IDs present, not blank, valid
// UTF-8 (the JSON encoder would otherwise replace bytes and send a different ID), without NUL or
// other control characters, at most MaxIDLength bytes; and a last activity ValidLastActive
// accepts.
func Check(r Record) Skip {
	if !ValidIDs(r.CharacterID, r.SessionID) || !ValidLastActive(r.LastActive) {
		return SkipMalformed
	}
	return SkipNone
}

// LastActiveBefore is the end of the last activities a record may have: the year 10000. A last
// activity must lie after the zero time (0001-01-01T00:00:00Z, which stands for none) and before
// it, as encoding/json and RFC 3339 can write it. Outside, it is no session's time (PostgreSQL's
// infinity, a year BC, a typo of 20260), and the record is malformed.
var LastActiveBefore = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)

// ValidLastActive reports whether t can be a session's last activity: after the zero time and
// before LastActiveBefore.
func ValidLastActive(t time.Time) bool {
	return t.After(time.Time{}) && t.Before(LastActiveBefore)
}

// ValidIDs reports whether both IDs are well-formed enough to be sent, as Check requires of a
// record. An erasure request's session needs no last activity: it is sent all the same.
func ValidIDs(characterID, sessionID string) bool {
	return validID(characterID) && validID(sessionID)
}

func validID(id string) bool {
	if strings.TrimSpace(id) == "" || len(id) > MaxIDLength || !utf8.ValidString(id) {
		return false
	}
	for _, r := range id {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// Shard returns the shard, in [0, count), that owns a character. It hashes the ID with FNV-1a,
// so the split is stable across runs, hosts and versions. count < 1 is treated as 1.
func Shard(characterID string, count int) int {
	if count <= 1 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(characterID))
	return int(h.Sum64() % uint64(count))
}
