// Package policyplan says what a change of the policies does: the changes that make the
// policies table equal to a policy file (Diff), what the current and the planned policies
// make due per character, now and within Horizon (Impact, gathered in a Plan), and where the
// planned policies delete long-term memory by age (memory_max_age: MemoryPolicies, Memory).
//
// It is pure: package source counts the due sessions in the database, inside the transaction
// that writes the changes, and hands the counts here.
package policyplan

import (
	"sort"
	"time"

	"github.com/convai-retention/retention/policy/policyfile"
)

// Horizon is how far ahead a plan looks: it counts the sessions a change makes due now and
// within this much.
const Horizon = 7 * 24 * time.Hour

// Change is one change of a policy file to the policies table.
type Change struct {
	// Op is "insert", "update" or "delete".
	Op string `json:"op"`
	// CharacterID is the policy's character, "" for the default.
	CharacterID string `json:"character_id"`
	// Old is the row before (nil for an insert), New the row after (nil for a delete).
	Old *policyfile.Entry `json:"old,omitempty"`
	New *policyfile.Entry `json:"new,omitempty"`
}

// Impact is what the policies make due in one character's sessions: now and within Horizon,
// under the current policies and under the planned ones (the same when nothing is planned),
// counted as a run selects them: held sessions, sessions already deleted and malformed rows
// are not counted.
type Impact struct {
	CharacterID string `json:"character_id"`
	NowCurrent  int64  `json:"due_now_current"`
	NowPlanned  int64  `json:"due_now_planned"`
	WeekCurrent int64  `json:"due_within_7d_current"`
	WeekPlanned int64  `json:"due_within_7d_planned"`
}

// Plan is the changes a policy file makes, their impact per character, the source's size, and
// the memory retention of the planned policies.
type Plan struct {
	At             time.Time `json:"at"`
	Source         string    `json:"source"`
	SourceSessions int64     `json:"source_sessions"`
	Changes        []Change  `json:"changes"`
	Impact         []Impact  `json:"impact"`
	// MemoryPolicies are the planned policies that set memory_max_age (MemoryPolicies), and
	// Memory the characters whose policy in force sets it, with their end users.
	MemoryPolicies []policyfile.Entry `json:"memory_policies"`
	Memory         []Memory           `json:"memory_retention"`
}

// Memory is one character's memory retention under the planned policies: its policy in force
// (its own enabled policy, or the enabled default) sets memory_max_age, so a run lists the
// memories of each end user seen with it and deletes those last updated at or before
// Threshold, except for the end users a hold blocks with it (Held).
type Memory struct {
	CharacterID  string    `json:"character_id"`
	PolicyID     int64     `json:"policy_id"`
	MemoryMaxAge string    `json:"memory_max_age"`
	Threshold    time.Time `json:"threshold"`
	EndUsers     int64     `json:"end_users"`
	Held         int64     `json:"held"`
}

// MemoryPolicies returns the policies of f that set memory_max_age, the default first: an
// empty list, not nil, when none does.
func MemoryPolicies(f *policyfile.File) []policyfile.Entry {
	out := []policyfile.Entry{}
	for _, e := range f.Entries() {
		if e.MemoryMaxAge != "" {
			out = append(out, e)
		}
	}
	return out
}

// MemoryChange says how c changes memory_max_age: the old and the new value ("" for none) and
// whether they differ. An insert that sets none, and a delete of a policy that set none, change
// nothing.
func (c Change) MemoryChange() (from, to string, changed bool) {
	if c.Old != nil {
		from = c.Old.MemoryMaxAge
	}
	if c.New != nil {
		to = c.New.MemoryMaxAge
	}
	return from, to, from != to
}

// DueNow is the sessions due now under the planned policies.
func (p *Plan) DueNow() (n int64) {
	for _, i := range p.Impact {
		n += i.NowPlanned
	}
	return n
}

// NewDeletions is the sessions the changes make due now that the current policies do not: per
// character, what the planned policies add.
func (p *Plan) NewDeletions() (n int64) {
	for _, i := range p.Impact {
		n += max(i.NowPlanned-i.NowCurrent, 0)
	}
	return n
}

// Due is what one set of policies makes due in one character's sessions: now, and within
// Horizon.
type Due struct {
	Now, Within int64
}

// Dues puts side by side, per character, the sessions due now and those due at Horizon from
// now. A character counted only now is due as much within Horizon.
func Dues(now, within map[string]int64) map[string]Due {
	out := make(map[string]Due, len(within))
	for c, n := range within {
		out[c] = Due{Now: now[c], Within: n}
	}
	for c, n := range now {
		if _, ok := within[c]; !ok {
			out[c] = Due{Now: n, Within: n}
		}
	}
	return out
}

// Impacts sets what the current and the planned policies make due side by side, for every
// character either counts, in the order of the characters' IDs.
func Impacts(current, planned map[string]Due) []Impact {
	chars := map[string]bool{}
	for c := range current {
		chars[c] = true
	}
	for c := range planned {
		chars[c] = true
	}
	out := []Impact{}
	for c := range chars {
		out = append(out, Impact{CharacterID: c, NowCurrent: current[c].Now, WeekCurrent: current[c].Within,
			NowPlanned: planned[c].Now, WeekPlanned: planned[c].Within})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CharacterID < out[j].CharacterID })
	return out
}

// Diff lists the changes that make have equal to want: updates and inserts in want's order,
// then deletes. want is the whole truth: an entry of want without memory_max_age clears the one
// of have (an update), as an entry without a note clears the note.
func Diff(have, want *policyfile.File) []Change {
	rows := map[string]policyfile.Entry{}
	for _, e := range have.Entries() {
		rows[e.CharacterID] = e
	}
	changes := []Change{}
	for _, e := range want.Entries() {
		e := e
		old, ok := rows[e.CharacterID]
		delete(rows, e.CharacterID)
		switch {
		case !ok:
			changes = append(changes, Change{Op: "insert", CharacterID: e.CharacterID, New: &e})
		case old.MaxAge != e.MaxAge || old.MemoryMaxAge != e.MemoryMaxAge || old.Enabled != e.Enabled || old.Note != e.Note:
			changes = append(changes, Change{Op: "update", CharacterID: e.CharacterID, Old: &old, New: &e})
		}
	}
	for _, e := range have.Entries() {
		if _, gone := rows[e.CharacterID]; gone {
			e := e
			changes = append(changes, Change{Op: "delete", CharacterID: e.CharacterID, Old: &e})
		}
	}
	return changes
}
