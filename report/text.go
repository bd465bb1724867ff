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
	fmt.Fprintf(&b, "period     %s to %s (UTC; outcomes by completion, runs by start)\n", rfc3339(r.Since), rfc3339(r.Until))
	if r.Character != "" {
		fmt.Fprintf(&b, "character  %s\n", printable(r.Character))
	}
	fmt.Fprintf(&b, "generated  %s (outstanding, held and overdue are counted live, as of then)\n", rfc3339(r.GeneratedAt))
	fmt.Fprintf(&b, "source     %s; SLA %s (overdue: expired for longer, not held, not deleted)\n", r.Source, slaText(r.SLA()))
	fmt.Fprintf(&b, "log        %d leaves; root %s (check with: retention audit verify)\n", r.Chain.LogSize, r.Chain.LogRoot)
	if r.Chain.Seq > 0 {
		fmt.Fprintf(&b, "v1 chain   %d seals; head %d:%s\n", r.Chain.Seq, r.Chain.Seq, r.Chain.Hash)
	}
	if r.Total.Overdue > 0 {
		fmt.Fprintf(&b, "OVERDUE    %d session(s) expired for longer than the SLA are not deleted\n", r.Total.Overdue)
	} else {
		b.WriteString("overdue    none\n")
	}
	b.WriteString("\n")
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}

	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CHARACTER\tPOLICY IN FORCE\tDELETED\tFAILED\tOUTSTANDING\tHELD\tOVERDUE\tLAG P50\tLAG P95\tLAG MAX")
	row := func(name, policy string, c CharacterRow) {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\n", name, policy, c.Deleted, c.Failed, c.Outstanding,
			c.Held, c.Overdue, human(c.LagP50), human(c.LagP95), human(c.LagMax))
	}
	for _, c := range r.Characters {
		row(printable(c.CharacterID), c.Policy.String(), c)
	}
	row("(total)", "", r.Total)
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintf(w, "\nRuns started in the period: %d\n", len(r.Runs))
	if len(r.Runs) > 0 {
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "RUN\tSTATUS\tSTARTED\tDURATION\tSHARD\tSELECTED\tDELETED\tFAILED\tSKIPPED")
		for _, x := range r.Runs {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d/%d\t%d\t%d\t%d\t%d\n", x.RunID, x.Status, x.StartedAt.Format(time.DateTime),
				human(x.DurationSeconds), x.ShardIndex, x.ShardCount, x.Selected, x.Deleted, x.Failed, x.Skipped)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}

	fmt.Fprintln(w, "\nDays (UTC; backlog and overdue reconstructed for the end of each day)")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DAY\tDELETED\tFAILED\tBACKLOG\tOVERDUE")
	for _, d := range r.Days {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\n", d.Day, d.Deleted, d.Failed, d.Backlog, d.Overdue)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if err := r.writeVerificationText(w); err != nil {
		return err
	}
	return r.writeErasureText(w)
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
		if f.InSource {
			last := "no last_active_at"
			if f.LastActiveAt != nil {
				last = "last active " + rfc3339(*f.LastActiveAt)
			}
			fmt.Fprintf(&b, "  in the source: yes, %s\n", last)
		} else {
			b.WriteString("  in the source: no\n")
		}
		fmt.Fprintf(&b, "  policy now: %s\n", f.Policy)
		if f.ExpiresAt != nil {
			fmt.Fprintf(&b, "  expires at: %s (under the policy now)\n", rfc3339(*f.ExpiresAt))
		}
		if f.Hold != nil {
			fmt.Fprintf(&b, "  hold: %d, %s, by %s at %s\n", f.Hold.ID, f.Hold.Reason, f.Hold.CreatedBy, rfc3339(f.Hold.CreatedAt))
		}
		for _, e := range f.Erasures {
			fmt.Fprintf(&b, "  erasure request %d (%s): %s, requested by %s at %s, due %s", e.ID, e.Scope(), e.StateText(),
				printableText(e.RequestedBy), rfc3339(e.RequestedAt), rfc3339(e.DueAt))
			if e.CompletedAt != nil {
				fmt.Fprintf(&b, ", completed %s", rfc3339(*e.CompletedAt))
			}
			if len(e.BlockedBy) > 0 {
				fmt.Fprintf(&b, ", blocked by %s", e.BlockedByText())
			}
			fmt.Fprintf(&b, "; reason: %s\n", printableText(e.Reason))
		}
		fmt.Fprintf(&b, "  attempts: %d\n", len(f.Attempts))
		if _, err := io.WriteString(w, b.String()); err != nil {
			return err
		}
		b.Reset()
		if len(f.Attempts) == 0 {
			continue
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "    DELETION\tRUN\tRUN STATUS\tSTATUS\tTRIES\tHTTP\tPOLICY\tMAX AGE\tEXPIRED\tREQUESTED\tCOMPLETED\tSEAL\tVERIFIED\tERROR")
		for _, a := range f.Attempts {
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
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
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
