package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/convai-retention/retention/job"
)

// writeSummary prints a run's summary on w as text or JSON, both as job.Summary.Reported says.
func writeSummary(w io.Writer, format string, s *job.Summary) error {
	s = s.Reported()
	if format == "json" {
		return writeJSON(w, s)
	}
	return writeText(w, s)
}

// writeJSON writes v on w as JSON indented by two spaces: every command's --format json.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writeText writes the summary as text: the headline, the notes, the erasure requests, memory
// and the safety cap, then the table of characters.
func writeText(w io.Writer, s *job.Summary) error {
	var b strings.Builder
	writeHeadline(&b, s)
	if s.Sync != nil {
		b.WriteString(syncText(s.Sync))
	}
	writeNotes(&b, s)
	writeErasures(&b, s)
	writeMemory(&b, s)
	writeCap(&b, s)
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	if len(s.Characters) == 0 {
		return nil
	}
	return writeCharacters(w, s)
}

// writeHeadline writes the first line: what the run did or would do, its cut-off, source and
// shard.
func writeHeadline(b *strings.Builder, s *job.Summary) {
	switch {
	case s.DryRun:
		fmt.Fprintf(b, "dry-run: nothing was sent or written. Would delete %d sessions", s.Selected)
	case s.Status == job.StatusAborted && s.Cap != nil:
		// Its selection never ran: say what the cap counted, not "0 selected".
		fmt.Fprintf(b, "run %d aborted: its policies would send %d sessions, above the safety cap of %d, so none of them was sent",
			s.RunID, s.Cap.WouldSend, s.Cap.Limit)
		if s.Selected > 0 {
			fmt.Fprintf(b, "; erasure requests: %d selected, %d deleted, %d failed", s.Selected, s.Deleted, s.Failed)
		}
	default:
		fmt.Fprintf(b, "run %d %s: %d selected, %d deleted, %d failed", s.RunID, s.Status, s.Selected, s.Deleted, s.Failed)
	}
	b.WriteString(" (")
	if !s.Cutoff.IsZero() {
		fmt.Fprintf(b, "cut-off %s, ", s.Cutoff.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(b, "source %s", s.Source)
	if s.Shard.Count > 1 {
		fmt.Fprintf(b, ", shard %d of %d", s.Shard.Index, s.Shard.Count)
	}
	b.WriteString(")\n")
}

// writeNotes writes a line for each of what the summary notes, when it does: sessions skipped,
// a selection unlike the estimate, sessions not sent, the budget reached, holds that match
// nothing, runs recovered, the error, and the results log.
func writeNotes(b *strings.Builder, s *job.Summary) {
	if s.Skipped > 0 {
		reasons := make([]string, 0, len(s.SkippedByReason))
		for k, v := range s.SkippedByReason {
			reasons = append(reasons, fmt.Sprintf("%s %d", k, v))
		}
		sort.Strings(reasons)
		fmt.Fprintf(b, "skipped %d: %s\n", s.Skipped, strings.Join(reasons, ", "))
	}
	// Only a run that went to its end selected what it would: a failed or interrupted one
	// selected less because it stopped, which the status and not_sent say already.
	if e := s.EstimatedTotal; e != nil && *e != s.Selected && (s.Status == job.StatusSucceeded || s.Status == job.StatusPartial) && !s.DryRun {
		fmt.Fprintf(b, "selected %d sessions where the progress estimated %d: the estimate is a separate count made while the "+
			"run was already deleting (sessions deleted during the count, and the source's changes, count differently); the "+
			"figures above are the run's own\n", s.Selected, *e)
	}
	if s.NotSent > 0 {
		fmt.Fprintf(b, "%d selected sessions were not sent: the run stopped first; they wait for the next run\n", s.NotSent)
	}
	if s.BudgetReached {
		b.WriteString("the deletion budget (--max-deletions) was reached: the rest waits for the next run\n")
	}
	if len(s.UnmatchedHolds) > 0 {
		names := make([]string, len(s.UnmatchedHolds))
		for i, h := range s.UnmatchedHolds {
			names[i] = strconv.Quote(h)
		}
		fmt.Fprintf(b, "WARNING: %d hold(s) match no session of the source and protect nothing now (a typo? spaces and case count): %s\n",
			len(names), strings.Join(names, ", "))
	}
	if len(s.Recovered) > 0 {
		fmt.Fprintf(b, "runs found unfinished and marked interrupted: %v\n", s.Recovered)
	}
	if s.Error != "" {
		fmt.Fprintf(b, "error: %s\n", s.Error)
	}
	if c := s.Checkpoint; c != nil {
		signed := "unsigned: no RETENTION_CHECKPOINT_KEY_FILE"
		if c.Signed {
			signed = "signed"
		}
		fmt.Fprintf(b, "results log: %d leaves, root %s (%s)\n", c.TreeSize, c.Root, signed)
	}
}

// writeErasures writes the erasure requests' line, when there were open requests.
func writeErasures(b *strings.Builder, s *job.Summary) {
	e := s.Erasure
	if e == nil || (e.Open == 0 && e.Left == 0) {
		return
	}
	if s.DryRun {
		fmt.Fprintf(b, "erasure requests: %d open; would send %d of their sessions first (%d held)", e.Open, e.Sessions-e.Held, e.Held)
	} else {
		fmt.Fprintf(b, "erasure requests: %d open, sent first: %d sessions deleted, %d failed, %d held; completed %v",
			e.Open, e.Deleted, e.Failed, e.Held, e.Completed)
		if e.Listed > 0 {
			fmt.Fprintf(b, "; %d found only at Convai", e.Listed)
		}
	}
	if len(e.Blocked) > 0 {
		fmt.Fprintf(b, "; blocked by a hold: %v", e.Blocked)
	}
	if e.Overdue > 0 {
		fmt.Fprintf(b, "; OVERDUE: %d", e.Overdue)
	}
	b.WriteString("\n")
}

// writeCap writes the safety cap's line, when the run checked it.
func writeCap(b *strings.Builder, s *job.Summary) {
	c := s.Cap
	if c == nil {
		return
	}
	if !c.Aborted {
		fmt.Fprintf(b, "safety cap: %d to send, limit %d (%s)\n", c.WouldSend, c.Limit, c.Reason())
		return
	}
	if c.ErasureSessions > 0 {
		fmt.Fprintf(b, "ABORTED by the safety cap: only the %d sessions erasure requests ask for were sent (never capped). ", c.ErasureSessions)
	} else {
		b.WriteString("ABORTED by the safety cap: nothing was sent. ")
	}
	b.WriteString("Check the policies; if this many deletions are " +
		"intended (a first run over a backlog), lift the cap for one run (--abort-above, --abort-above-percent; 0 is off) " +
		"or work through it in bounded runs with --max-deletions\n")
}

// writeCharacters writes the table of characters, as the summary orders them (failed, then
// held, then the rest, each in natural order), and a totals row. A dry-run's table has what
// it would delete instead of what was deleted and failed.
func writeCharacters(w io.Writer, s *job.Summary) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if s.DryRun {
		fmt.Fprintln(tw, "CHARACTER\tPOLICY\tMAX AGE\tWOULD DELETE\tHELD\tOLDEST ACTIVITY")
	} else {
		fmt.Fprintln(tw, "CHARACTER\tPOLICY\tMAX AGE\tSELECTED\tDELETED\tFAILED\tHELD\tOLDEST ACTIVITY")
	}
	var total job.CharacterSummary
	for _, c := range s.Characters {
		if !c.Oldest.IsZero() && (total.Oldest.IsZero() || c.Oldest.Before(total.Oldest)) {
			total.Oldest = c.Oldest
		}
		total.Selected, total.Deleted, total.Failed, total.Held = total.Selected+c.Selected, total.Deleted+c.Deleted,
			total.Failed+c.Failed, total.Held+c.Held
		writeCharacterRow(tw, s.DryRun, printable(c.CharacterID), c)
	}
	writeCharacterRow(tw, s.DryRun, "(total)", total)
	return tw.Flush()
}

// writeCharacterRow writes one row of the characters' table under name; the totals row has
// the same columns, its policy and max age empty.
func writeCharacterRow(tw io.Writer, dryRun bool, name string, c job.CharacterSummary) {
	oldest := "-"
	if !c.Oldest.IsZero() {
		oldest = c.Oldest.UTC().Format(time.RFC3339)
	}
	if dryRun {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\n", name, c.Policy, c.MaxAge, c.Selected, c.Held, oldest)
	} else {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\n", name, c.Policy, c.MaxAge, c.Selected, c.Deleted, c.Failed, c.Held, oldest)
	}
}

// printable quotes an ID that could garble a terminal table.
func printable(s string) string {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == '\t' || r == ' ' {
			return fmt.Sprintf("%q", s)
		}
	}
	return s
}
