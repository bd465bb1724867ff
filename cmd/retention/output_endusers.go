package main

import (
	"fmt"
	"strings"

	"github.com/convai-retention/retention/job"
)

// maxMemoryCharacterLines is how many characters under a memory policy a dry-run's text summary
// names, one a line; the JSON names them all.
const maxMemoryCharacterLines = 20

// writeMemory adds to a run's text summary the lines of long-term memory: the end users'
// erasure requests, and the deletions under memory_max_age.
func writeMemory(b *strings.Builder, s *job.Summary) {
	writeEndUsers(b, s)
	writeListedMemory(b, s)
	m := s.MemoryRetention
	if m == nil {
		return
	}
	if s.DryRun {
		fmt.Fprintf(b, "memory retention: %d character(s) with memory_max_age, %d end user(s) to list (%d held); a dry-run lists none\n",
			m.Characters, m.EndUsers, m.Held)
		for i, c := range m.PerCharacter {
			if i == maxMemoryCharacterLines {
				fmt.Fprintf(b, "  and %d more character(s) (the JSON summary lists them all)\n", len(m.PerCharacter)-i)
				break
			}
			fmt.Fprintf(b, "  %s: memory_max_age %s applies to %d end user(s) (%d held)\n", printable(c.CharacterID), c.MemoryMaxAge, c.EndUsers, c.Held)
		}
		return
	}
	fmt.Fprintf(b, "memory retention: %d end user(s) of %d character(s) listed (%d held, %d unlisted): %d memories, %d due, %d deleted, %d gone already, %d failed",
		m.EndUsers-m.Held, m.Characters, m.Held, m.Unlisted, m.Listed, m.Due, m.Deleted, m.Gone, m.Failed)
	if m.Undated > 0 {
		fmt.Fprintf(b, "; %d without a usable updated_at, kept", m.Undated)
	}
	if m.Capped {
		b.WriteString("; STOPPED by the safety cap: none deleted")
	}
	if m.BudgetReached {
		b.WriteString("; --max-deletions reached")
	}
	b.WriteString("\n")
}

// writeEndUsers adds the line of the end users' erasure requests.
func writeEndUsers(b *strings.Builder, s *job.Summary) {
	if s.Erasure == nil || s.Erasure.EndUsers == nil {
		return
	}
	e := s.Erasure.EndUsers
	if s.DryRun {
		fmt.Fprintf(b, "end users' erasure requests: %d open over %d character(s); would erase long-term memory with %d of them after their sessions",
			e.Open, e.Characters, e.ToErase)
	} else {
		fmt.Fprintf(b, "end users' erasure requests: %d open over %d character(s); long-term memory: %d erased, %d pending, %d failed",
			e.Open, e.Characters, e.Erased, e.Pending, e.Failed)
		if e.Forbidden > 0 {
			fmt.Fprintf(b, ", %d forbidden to this key (403)", e.Forbidden)
		}
		if e.Unavailable > 0 {
			fmt.Fprintf(b, ", %d not offered (404: this account or API does not offer long-term memory)", e.Unavailable)
		}
		if e.RecordsErased > 0 {
			fmt.Fprintf(b, "; %d end user record(s) deleted", e.RecordsErased)
		}
		fmt.Fprintf(b, "; completed %v", e.Completed)
		if len(e.Reopened) > 0 {
			fmt.Fprintf(b, "; erased again, as verify found memory after their erasure: completed requests %v", e.Reopened)
		}
	}
	if len(e.Blocked) > 0 {
		fmt.Fprintf(b, "; blocked by a hold: %v", e.Blocked)
	}
	b.WriteString("\n")
}

// writeListedMemory adds the line of what the run's own lists (settle, erasure requests) said
// of long-term memory, recorded per session.
func writeListedMemory(b *strings.Builder, s *job.Summary) {
	l := s.ListedMemory
	if l == nil {
		return
	}
	fmt.Fprintf(b, "the run's lists: %d character list(s), %d sessions: %d added to long-term memory, %d not added, %d unstated",
		l.Lists, l.Sessions, l.Added, l.NotAdded, l.Unstated)
	if l.Unrecorded > 0 {
		fmt.Fprintf(b, "; %d answers NOT RECORDED (see the log; deletions not affected)", l.Unrecorded)
	}
	b.WriteString("\n")
}
