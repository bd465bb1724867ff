// Package policytest holds the cases the retention rules are tested with. The Go rules in policy
// and their copies in SQL (the functions of the migrations that the report and the BI views use)
// are both run through every case here, so a rule cannot change in one place only.
//
// Every case is judged at Cutoff. Each policy carries both its max_age, as it would be written in
// retention.policies, and its Threshold, Cutoff minus max_age worked out by hand on PostgreSQL's
// calendar; the SQL conformance test checks that PostgreSQL agrees with the hand.
package policytest

import (
	"strings"
	"time"
	"unicode/utf8"

	"github.com/convai-retention/retention/policy"
)

// Cutoff is the run's cut-off in every case: the last day of a 30-day month, so that month
// arithmetic has to clamp (2026-06-30 minus 4 months is 2026-02-28, not March 2).
var Cutoff = time.Date(2026, 6, 30, 12, 0, 0, 0, time.UTC)

// Thresholds of the intervals the cases use, at Cutoff.
var (
	Days1    = time.Date(2026, 6, 29, 12, 0, 0, 0, time.UTC)
	Days7    = time.Date(2026, 6, 23, 12, 0, 0, 0, time.UTC)
	Days30   = time.Date(2026, 5, 31, 12, 0, 0, 0, time.UTC)
	Year1    = time.Date(2025, 6, 30, 12, 0, 0, 0, time.UTC)
	Months4  = time.Date(2026, 2, 28, 12, 0, 0, 0, time.UTC)             // '4 mons': June 30 has no February twin
	Hours36  = time.Date(2026, 6, 29, 0, 0, 0, 0, time.UTC)              // '36:00:00': hours, not days
	Mixed    = time.Date(2026, 5, 27, 10, 29, 59, 500_000_000, time.UTC) // '1 mon 2 days 25:30:00.5'
	Micro1   = Cutoff.Add(-time.Hour - time.Microsecond)                 // '01:00:00.000001'
	Weeks2   = time.Date(2026, 6, 16, 12, 0, 0, 0, time.UTC)
	Century2 = time.Date(1826, 6, 30, 12, 0, 0, 0, time.UTC) // '200 years', the longest allowed
)

// World is the policies and the active holds of a run.
type World struct {
	Policies []policy.Policy
	Holds    []policy.Hold
}

// Set builds the world's rules; it panics on a world NewSet refuses, which is a broken case.
func (w World) Set() *policy.Set {
	s, err := policy.NewSet(w.Policies, w.Holds)
	if err != nil {
		panic("policytest: " + err.Error())
	}
	return s
}

// DecideCase is one character in one world, and the decision the rules make for it.
type DecideCase struct {
	Name      string
	World     World
	Character string
	Want      policy.Decision
}

// The policies of the precedence cases.
var (
	def     = policy.Policy{ID: 1, MaxAge: "30 days", Enabled: true, Threshold: Days30}
	defOff  = policy.Policy{ID: 1, MaxAge: "30 days", Enabled: false, Threshold: Days30}
	own     = policy.Policy{ID: 2, CharacterID: "alice", MaxAge: "7 days", Enabled: true, Threshold: Days7}
	ownOff  = policy.Policy{ID: 3, CharacterID: "alice", MaxAge: "7 days", Enabled: false, Threshold: Days7}
	ownLong = policy.Policy{ID: 4, CharacterID: "alice", MaxAge: "1 year", Enabled: true, Threshold: Year1}
)

func ps(p ...policy.Policy) []policy.Policy { return p }
func hs(h ...policy.Hold) []policy.Hold     { return h }

// DecideCases are the precedence and the holds: an active hold on the character beats every
// policy; the character's own row wins over the default; an own row that is disabled means never;
// without an own row the enabled default applies; otherwise the character is never touched.
var DecideCases = []DecideCase{
	{"nothing configured", World{}, "alice", policy.Decision{Reason: policy.ReasonNoPolicy}},
	{"default applies", World{ps(def), nil}, "bob", policy.Decision{Delete: true, Reason: policy.ReasonDefaultPolicy, Policy: def}},
	{"disabled default touches nobody", World{ps(defOff), nil}, "bob", policy.Decision{Reason: policy.ReasonNoPolicy}},
	{"own row wins over default", World{ps(def, own), nil}, "alice", policy.Decision{Delete: true, Reason: policy.ReasonOwnPolicy, Policy: own}},
	{"own longer row wins over shorter default", World{ps(def, ownLong), nil}, "alice", policy.Decision{Delete: true, Reason: policy.ReasonOwnPolicy, Policy: ownLong}},
	{"own disabled row means never, even with a default", World{ps(def, ownOff), nil}, "alice", policy.Decision{Reason: policy.ReasonDisabled}},
	{"own disabled row means never, even with a disabled default", World{ps(defOff, ownOff), nil}, "alice", policy.Decision{Reason: policy.ReasonDisabled}},
	{"own row without default", World{ps(own), nil}, "alice", policy.Decision{Delete: true, Reason: policy.ReasonOwnPolicy, Policy: own}},
	{"own row with a disabled default", World{ps(defOff, own), nil}, "alice", policy.Decision{Delete: true, Reason: policy.ReasonOwnPolicy, Policy: own}},
	{"other character without default", World{ps(own), nil}, "bob", policy.Decision{Reason: policy.ReasonNoPolicy}},
	{"hold beats own policy", World{ps(def, own), hs(policy.Hold{CharacterID: "alice"})}, "alice", policy.Decision{Reason: policy.ReasonHeld, Policy: own}},
	{"hold beats default", World{ps(def), hs(policy.Hold{CharacterID: "bob"})}, "bob", policy.Decision{Reason: policy.ReasonHeld, Policy: def}},
	{"hold on a character no policy deletes", World{ps(def, ownOff), hs(policy.Hold{CharacterID: "alice"})}, "alice", policy.Decision{Reason: policy.ReasonHeld}},
	{"session hold does not hold the character", World{ps(def), hs(policy.Hold{CharacterID: "bob", SessionID: "s1"})}, "bob", policy.Decision{Delete: true, Reason: policy.ReasonDefaultPolicy, Policy: def}},
	{"hold on another character", World{ps(def), hs(policy.Hold{CharacterID: "carol"})}, "bob", policy.Decision{Delete: true, Reason: policy.ReasonDefaultPolicy, Policy: def}},
	{"character IDs are exact, not case-folded", World{ps(def, own), nil}, "Alice", policy.Decision{Delete: true, Reason: policy.ReasonDefaultPolicy, Policy: def}},
	{"holds are exact, not case-folded", World{ps(def), hs(policy.Hold{CharacterID: "Bob"})}, "bob", policy.Decision{Delete: true, Reason: policy.ReasonDefaultPolicy, Policy: def}},
}

// JudgeCase is one session record in one world, and the verdict the rules give it.
type JudgeCase struct {
	Name     string
	World    World
	Record   policy.Record
	Eligible bool
	Skip     policy.Skip
}

// judgeWorld is the world of the record cases: a 30-day default, alice's own year, dave's
// disabled day, carol held, bob's session "held" held, and characters under odd intervals.
var judgeWorld = World{
	Policies: ps(
		def,
		policy.Policy{ID: 2, CharacterID: "alice", MaxAge: "1 year", Enabled: true, Threshold: Year1},
		policy.Policy{ID: 3, CharacterID: "dave", MaxAge: "1 day", Enabled: false, Threshold: Days1},
		policy.Policy{ID: 4, CharacterID: "months", MaxAge: "4 mons", Enabled: true, Threshold: Months4},
		policy.Policy{ID: 5, CharacterID: "hours", MaxAge: "36:00:00", Enabled: true, Threshold: Hours36},
		policy.Policy{ID: 6, CharacterID: "mixed", MaxAge: "1 mon 2 days 25:30:00.5", Enabled: true, Threshold: Mixed},
		policy.Policy{ID: 7, CharacterID: "micro", MaxAge: "01:00:00.000001", Enabled: true, Threshold: Micro1},
		policy.Policy{ID: 8, CharacterID: "weeks", MaxAge: "2 weeks", Enabled: true, Threshold: Weeks2},
		policy.Policy{ID: 9, CharacterID: "century", MaxAge: "200 years", Enabled: true, Threshold: Century2},
	),
	Holds: hs(policy.Hold{CharacterID: "carol"}, policy.Hold{CharacterID: "bob", SessionID: "held"}),
}

var old = Year1.Add(-time.Hour)

func rec(char, sess string, at time.Time) policy.Record {
	return policy.Record{CharacterID: char, SessionID: sess, LastActive: at}
}

// JudgeCases are the record cases: expiry at the boundary, odd intervals, holds, precedence and
// records the run passes over.
var JudgeCases = []JudgeCase{
	{"expired under default", judgeWorld, rec("bob", "s", Days30.Add(-time.Hour)), true, policy.SkipNone},
	{"exactly at the threshold expires", judgeWorld, rec("bob", "s", Days30), true, policy.SkipNone},
	{"a microsecond after the threshold does not", judgeWorld, rec("bob", "s", Days30.Add(time.Microsecond)), false, policy.SkipNone},
	{"not yet expired under default", judgeWorld, rec("bob", "s", Days7), false, policy.SkipNone},
	{"active at the cut-off", judgeWorld, rec("bob", "s", Cutoff), false, policy.SkipNone},
	{"active after the cut-off", judgeWorld, rec("bob", "s", Cutoff.Add(time.Hour)), false, policy.SkipNone},
	{"long ago", judgeWorld, rec("bob", "s", time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)), true, policy.SkipNone},
	{"own long policy keeps it", judgeWorld, rec("alice", "s", Days30), false, policy.SkipNone},
	{"own long policy expires it", judgeWorld, rec("alice", "s", old), true, policy.SkipNone},
	{"session hold", judgeWorld, rec("bob", "held", old), false, policy.SkipHeld},
	{"session hold on a session not yet due is no skip", judgeWorld, rec("bob", "held", Cutoff), false, policy.SkipNone},
	{"session hold names one character's session", judgeWorld, rec("alice", "held", old), true, policy.SkipNone},
	{"character hold", judgeWorld, rec("carol", "s", old), false, policy.SkipHeld},
	{"character hold on a session not yet due is no skip", judgeWorld, rec("carol", "s", Cutoff), false, policy.SkipNone},
	{"disabled own policy", judgeWorld, rec("dave", "s", old), false, policy.SkipNone},
	{"malformed", judgeWorld, rec("bob", "", old), false, policy.SkipMalformed},
	{"malformed and held", judgeWorld, rec("carol", "s\u0085", old), false, policy.SkipMalformed},
	{"malformed, no policy", World{}, rec("bob", "s\u0085", old), false, policy.SkipMalformed},
	{"undated", judgeWorld, rec("bob", "s", time.Time{}), false, policy.SkipMalformed},
	{"already deleted", judgeWorld, policy.Record{CharacterID: "bob", SessionID: "s", LastActive: old, Deleted: true}, false, policy.SkipNone},
	{"superseded", judgeWorld, policy.Record{CharacterID: "bob", SessionID: "s", LastActive: old, Superseded: true}, false, policy.SkipNone},
	{"4 months clamp at the end of February: at", judgeWorld, rec("months", "s", Months4), true, policy.SkipNone},
	{"4 months clamp at the end of February: after", judgeWorld, rec("months", "s", Months4.Add(time.Microsecond)), false, policy.SkipNone},
	{"4 months is not March 2", judgeWorld, rec("months", "s", time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)), false, policy.SkipNone},
	{"36 hours: at", judgeWorld, rec("hours", "s", Hours36), true, policy.SkipNone},
	{"36 hours: after", judgeWorld, rec("hours", "s", Hours36.Add(time.Microsecond)), false, policy.SkipNone},
	{"mixed interval: at", judgeWorld, rec("mixed", "s", Mixed), true, policy.SkipNone},
	{"mixed interval: after", judgeWorld, rec("mixed", "s", Mixed.Add(time.Microsecond)), false, policy.SkipNone},
	{"an hour and a microsecond: at", judgeWorld, rec("micro", "s", Micro1), true, policy.SkipNone},
	{"an hour and a microsecond: a microsecond after", judgeWorld, rec("micro", "s", Micro1.Add(time.Microsecond)), false, policy.SkipNone},
	{"two weeks: at", judgeWorld, rec("weeks", "s", Weeks2), true, policy.SkipNone},
	{"two weeks: after", judgeWorld, rec("weeks", "s", Weeks2.Add(time.Microsecond)), false, policy.SkipNone},
	{"200 years: at", judgeWorld, rec("century", "s", Century2), true, policy.SkipNone},
	{"200 years: after", judgeWorld, rec("century", "s", Century2.Add(time.Microsecond)), false, policy.SkipNone},
	{"the last instant of 9999: not expired", judgeWorld, rec("bob", "s", policy.LastActiveBefore.Add(-time.Microsecond)), false, policy.SkipNone},
	{"year 10000: malformed", judgeWorld, rec("bob", "s", policy.LastActiveBefore), false, policy.SkipMalformed},
	{"4713 BC: malformed, not expired", judgeWorld, rec("bob", "s", time.Date(-4712, 1, 1, 0, 0, 0, 0, time.UTC)), false, policy.SkipMalformed},
	{"no policy at all", World{}, rec("bob", "s", old), false, policy.SkipNone},
	{"a disabled default", World{ps(defOff), nil}, rec("bob", "s", old), false, policy.SkipNone},
}

// CheckCase is one record and whether Check finds it well-formed.
type CheckCase struct {
	Name   string
	Record policy.Record
	Want   policy.Skip
}

// Storable reports whether PostgreSQL text can hold the record's IDs: no NUL, valid UTF-8.
func (c CheckCase) Storable() bool {
	for _, id := range []string{c.Record.CharacterID, c.Record.SessionID} {
		if strings.ContainsRune(id, 0) || !utf8.ValidString(id) {
			return false
		}
	}
	return true
}

func at(char, sess string) policy.Record { return rec(char, sess, Days30) }

// CheckCases are the malformed IDs of every kind, and their well-formed neighbours.
var CheckCases = []CheckCase{
	{"good", at("c", "s"), policy.SkipNone},
	{"non-ASCII is fine", at("персонаж", "会话-1"), policy.SkipNone},
	{"quotes and backslashes are fine", at(`c"\`, `s'; DROP TABLE x;--`), policy.SkipNone},
	{"inner spaces are fine", at("c", " s 1 "), policy.SkipNone},
	{"a zero-width space is not white space", at("c", "\u200b"), policy.SkipNone},
	{"a byte order mark is not a control character", at("c", "\ufeffs"), policy.SkipNone},
	{"U+00A0 inside is fine", at("c", "s\u00a0s"), policy.SkipNone},
	{"empty session", at("c", ""), policy.SkipMalformed},
	{"empty character", at("", "s"), policy.SkipMalformed},
	{"blank session", at("c", " \t"), policy.SkipMalformed},
	{"a space only", at("c", " "), policy.SkipMalformed},
	{"no-break spaces only", at("c", "\u00a0\u00a0"), policy.SkipMalformed},
	{"ideographic space only", at("c", "\u3000"), policy.SkipMalformed},
	{"Unicode spaces only", at("\u1680\u2000\u200a\u2028\u2029\u202f\u205f", "s"), policy.SkipMalformed},
	{"no last activity", rec("c", "s", time.Time{}), policy.SkipMalformed},
	{"the first instant after the zero time", rec("c", "s", time.Time{}.Add(time.Microsecond)), policy.SkipNone},
	{"year 0", rec("c", "s", time.Date(0, 12, 31, 23, 59, 59, 0, time.UTC)), policy.SkipMalformed},
	{"4713 BC", rec("c", "s", time.Date(-4712, 1, 1, 0, 0, 0, 0, time.UTC)), policy.SkipMalformed},
	{"too long", at("c", strings.Repeat("x", policy.MaxIDLength+1)), policy.SkipMalformed},
	{"longest allowed", at("c", strings.Repeat("x", policy.MaxIDLength)), policy.SkipNone},
	{"too long in bytes, not in characters", at("c", strings.Repeat("会", 86)), policy.SkipMalformed},
	{"longest allowed in two-byte characters", at(strings.Repeat("é", 128), "s"), policy.SkipNone},
	{"invalid UTF-8", at("c", "s\xff"), policy.SkipMalformed},
	{"NUL", at("c", "s\x00"), policy.SkipMalformed},
	{"newline", at("c", "s\n1"), policy.SkipMalformed},
	{"tab inside", at("c\tx", "s"), policy.SkipMalformed},
	{"escape", at("c", "\x1bs"), policy.SkipMalformed},
	{"DEL", at("c", "s\x7f"), policy.SkipMalformed},
	{"C1 NEXT LINE (U+0085)", at("c", "s\u0085"), policy.SkipMalformed},
	{"C1 U+0080", at("c", "\u0080s"), policy.SkipMalformed},
	{"C1 U+009F in the character", at("c\u009fc", "s"), policy.SkipMalformed},
}
