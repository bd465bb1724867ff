package report

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
)

func (r *Report) writeText(w io.Writer) error {
	var b strings.Builder
	b.WriteString("Retention compliance report\n")
	for _, s := range r.Statements() {
		label := s.Label
		if s.Alarm {
			label = strings.ToUpper(label)
		}
		fmt.Fprintf(&b, "%-10s %s\n", label, s.Text)
	}
	for _, c := range r.Checks {
		fmt.Fprintf(&b, "%-10s %s\n%-10s (exit 0: %s)\n", "check", c.Command, "", c.Shows)
	}
	b.WriteString("\n")
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}

	tw := newTable(w, "CHARACTER\tPOLICY IN FORCE\tDELETED\tLATE\tFAILED\tOUTSTANDING\tHELD\tOVERDUE\tLAG P50\tLAG P95\tLAG MAX")
	row := func(name, policy string, c CharacterRow) {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\n", name, policy, c.Deleted, c.DeletedLate, c.Failed, c.Outstanding,
			c.Held, c.Overdue, human(c.LagP50), human(c.LagP95), human(c.LagMax))
	}
	for _, c := range r.Characters {
		row(printable(c.CharacterID), c.Policy.String(), c)
	}
	row("(total)", "", r.Total)
	if err := tw.Flush(); err != nil {
		return err
	}
	if err := r.writeHoldsText(w); err != nil {
		return err
	}

	fmt.Fprintf(w, "\nRuns started in the period: %d\n", len(r.Runs))
	if len(r.Runs) > 0 {
		tw = newTable(w, "RUN\tSTATUS\tSTARTED\tDURATION\tSHARD\tSELECTED\tDELETED\tFAILED\tSKIPPED")
		for _, x := range r.Runs {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d/%d\t%d\t%d\t%d\t%d\n", x.RunID, x.Status, x.StartedAt.Format(time.DateTime),
				human(x.DurationSeconds), x.ShardIndex, x.ShardCount, x.Selected, x.Deleted, x.Failed, x.Skipped)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}

	fmt.Fprintln(w, "\nDays (UTC): deleted, late and failed that day; backlog and overdue reconstructed for the end of the day")
	tw = newTable(w, "DAY\tDELETED\tLATE\tFAILED\tBACKLOG AT END\tOVERDUE AT END")
	for _, d := range r.Days {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\n", d.Day, d.Deleted, d.DeletedLate, d.Failed, d.Backlog, d.Overdue)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if err := r.writeVerificationText(w); err != nil {
		return err
	}
	return r.writeErasureText(w)
}

// newTable returns a writer of a text table with the report's column spacing, its header line
// written; the caller flushes it.
func newTable(w io.Writer, header string) *tabwriter.Writer {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	return tw
}

// writeHoldsText lists the holds that match no session, if any.
func (r *Report) writeHoldsText(w io.Writer) error {
	if len(r.UnmatchedHolds) == 0 {
		return nil
	}
	fmt.Fprintf(w, "\nHolds that match no session of the source: %d\n", len(r.UnmatchedHolds))
	tw := newTable(w, "HOLD\tCHARACTER\tSESSION\tPLACED BY\tPLACED (UTC)\tREASON")
	for _, h := range r.UnmatchedHolds {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", h.ID, printable(h.CharacterID), h.Scope(), printableText(h.CreatedBy),
			h.CreatedAt.Format(time.DateTime), printableText(h.Reason))
	}
	return tw.Flush()
}

func (e *Evidence) writeText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Evidence for session %s", printable(e.SessionID))
	if e.Character != "" {
		fmt.Fprintf(&b, " of character %s", printable(e.Character))
	}
	fmt.Fprintf(&b, "\nas of %s, source %s\n", rfc3339(e.GeneratedAt), e.Source)
	for _, f := range e.Findings {
		b.WriteString("\n")
		if f.CharacterID != "" {
			fmt.Fprintf(&b, "character %s: %s\n", printable(f.CharacterID), strings.ToUpper(strings.ReplaceAll(f.State, "_", " ")))
		} else {
			fmt.Fprintf(&b, "%s\n", strings.ToUpper(strings.ReplaceAll(f.State, "_", " ")))
		}
		fmt.Fprintf(&b, "  %s\n", f.Reason)
		if f.CharacterID == "" {
			continue
		}
		writeFindingText(&b, f)
		if _, err := io.WriteString(w, b.String()); err != nil {
			return err
		}
		b.Reset()
		if len(f.Attempts) == 0 {
			continue
		}
		if err := writeAttemptsText(w, f.Attempts); err != nil {
			return err
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeFindingText writes what the evidence knows of a session of one character, down to the
// count of its attempts: the source, the policy now, the expiry, the hold, the erasure requests.
func writeFindingText(b *strings.Builder, f Finding) {
	if f.InSource {
		last := "no last_active_at"
		if f.LastActiveAt != nil {
			last = "last active " + rfc3339(*f.LastActiveAt)
		}
		fmt.Fprintf(b, "  in the source: yes, %s\n", last)
	} else {
		b.WriteString("  in the source: no\n")
	}
	fmt.Fprintf(b, "  policy now: %s\n", f.Policy)
	if f.ExpiresAt != nil {
		fmt.Fprintf(b, "  expires at: %s (under the policy now)\n", rfc3339(*f.ExpiresAt))
	}
	if f.Hold != nil {
		fmt.Fprintf(b, "  hold: %d, %s, by %s at %s\n", f.Hold.ID, f.Hold.Reason, f.Hold.CreatedBy, rfc3339(f.Hold.CreatedAt))
	}
	for _, e := range f.Erasures {
		fmt.Fprintf(b, "  erasure request %d (%s): %s, requested by %s at %s, due %s", e.ID, e.Scope(), e.StateText(),
			printableText(e.RequestedBy), rfc3339(e.RequestedAt), rfc3339(e.DueAt))
		if e.CompletedAt != nil {
			fmt.Fprintf(b, ", completed %s", rfc3339(*e.CompletedAt))
		}
		if len(e.BlockedBy) > 0 {
			fmt.Fprintf(b, ", blocked by %s", e.BlockedByText())
		}
		fmt.Fprintf(b, "; reason: %s\n", printableText(e.Reason))
	}
	if f.Memory != nil {
		fmt.Fprintf(b, "  long-term memory: %s\n", f.Memory.Text(f.Deleted()))
	}
	fmt.Fprintf(b, "  attempts: %d\n", len(f.Attempts))
}

// writeAttemptsText writes a finding's attempts as an indented table.
func writeAttemptsText(w io.Writer, attempts []Attempt) error {
	tw := newTable(w, "    DELETION\tRUN\tRUN STATUS\tSTATUS\tTRIES\tHTTP\tPOLICY\tMAX AGE\tEXPIRED\tREQUESTED\tCOMPLETED\tSEAL\tVERIFIED\tERROR")
	for _, a := range attempts {
		seal := "-"
		if a.SealSeq != nil {
			seal = fmt.Sprintf("%d:%s", *a.SealSeq, optString(a.SealHash))
		}
		verified := "-"
		switch {
		case a.FoundPresentAt != nil:
			verified = "PRESENT at Convai " + rfc3339(*a.FoundPresentAt)
		case a.VerifiedAbsentAt != nil:
			verified = "absent " + rfc3339(*a.VerifiedAbsentAt)
		}
		under, expired := dash(optInt(a.PolicyID)), "-"
		if a.ErasureRequestID != nil {
			under = fmt.Sprintf("erasure %d", *a.ErasureRequestID)
		}
		if !a.ExpiredAt.IsZero() {
			expired = rfc3339(a.ExpiredAt)
		}
		fmt.Fprintf(tw, "    %d\t%d\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.DeletionID, a.RunID, a.RunStatus, a.Status,
			a.Attempts, dash(optInt(a.HTTPStatus)), under, dash(a.MaxAge), expired,
			rfc3339(a.RequestedAt), dash(optTime(a.CompletedAt)), seal, verified, dash(optString(a.Error)))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// printable quotes an ID that could garble a terminal table.
// printableText is printable for free text in the last column: spaces are kept.
func printableText(s string) string {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || unicode.Is(unicode.Cc, r) || unicode.Is(unicode.Cf, r) {
			return fmt.Sprintf("%q", s)
		}
	}
	return s
}

func printable(s string) string {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == '\t' || r == ' ' {
			return fmt.Sprintf("%q", s)
		}
	}
	return s
}
