package report

import (
	"fmt"
	"strings"
)

// maxHoldsNamed is how many unmatched holds the heading names; the report lists them all.
const maxHoldsNamed = 5

// Statement is one line of the report's heading: a figure of the model, said in words. The
// table and the HTML print the same statements, so they cannot state different things.
type Statement struct {
	// Key names the statement: period, character, generated, source, sync, overdue, late,
	// unmatched_holds, log or v1_chain.
	Key string
	// Label is the short name the table prints before Text.
	Label string
	Text  string
	// Alarm is true when the statement asks for action: sessions overdue now, deletions late in
	// the period, holds that protect nothing.
	Alarm bool
}

// Statements returns the heading of the report: the period and its terms, then what a
// compliance officer asks first. "Overdue" is now: sessions expired for longer than the SLA and
// still not deleted (nor held). "Late" is in the period: deletions confirmed more than the SLA
// after the session expired. The v1 chain is stated only when it has seals.
func (r *Report) Statements() []Statement {
	sla := slaText(r.SLA())
	out := []Statement{
		{Key: "period", Label: "period", Text: fmt.Sprintf("%s to %s (UTC; outcomes by completion, runs by start)", rfc3339(r.Since), rfc3339(r.Until))},
	}
	if r.Character != "" {
		out = append(out, Statement{Key: "character", Label: "character", Text: printable(r.Character)})
	}
	out = append(out,
		Statement{Key: "generated", Label: "generated", Text: rfc3339(r.GeneratedAt) + " (outstanding, held and overdue are counted live, as of then)"},
		Statement{Key: "source", Label: "source", Text: fmt.Sprintf("%s; SLA %s", r.Source, sla)},
	)
	if r.Sync != nil {
		out = append(out, r.Sync.statement())
	}

	overdue := Statement{Key: "overdue", Label: "overdue", Alarm: r.Total.Overdue > 0}
	if r.Total.Overdue > 0 {
		overdue.Text = fmt.Sprintf("%d session(s) now: expired for longer than the SLA (%s) and still not deleted, not held", r.Total.Overdue, sla)
	} else {
		overdue.Text = fmt.Sprintf("none now: every session expired for longer than the SLA (%s) is deleted or held", sla)
	}
	late := Statement{Key: "late", Label: "late", Alarm: r.Total.DeletedLate > 0,
		Text: fmt.Sprintf("%d of the %d deletion(s) in the period: confirmed more than the SLA (%s) after the session expired",
			r.Total.DeletedLate, r.Total.Deleted, sla)}
	holds := Statement{Key: "unmatched_holds", Label: "holds", Alarm: len(r.UnmatchedHolds) > 0}
	if n := len(r.UnmatchedHolds); n > 0 {
		var names []string
		for _, h := range r.UnmatchedHolds[:min(n, maxHoldsNamed)] {
			names = append(names, fmt.Sprintf("hold %d (%q)", h.ID, h.Name()))
		}
		if n > maxHoldsNamed {
			names = append(names, fmt.Sprintf("and %d more", n-maxHoldsNamed))
		}
		holds.Text = fmt.Sprintf("%d active hold(s) match no session of the source and protect nothing now (a typo? spaces and case count): %s",
			n, strings.Join(names, ", "))
	} else {
		holds.Text = "every active hold matches a session of the source"
	}
	out = append(out, overdue, late, holds,
		Statement{Key: "log", Label: "log", Text: fmt.Sprintf("%d leaves; root %s", r.Chain.LogSize, r.Chain.LogRoot)})
	if r.Chain.Seq > 0 {
		out = append(out, Statement{Key: "v1_chain", Label: "v1 chain", Text: fmt.Sprintf("%d seals; head %d:%s", r.Chain.Seq, r.Chain.Seq, r.Chain.Hash)})
	}
	return out
}

// Check is a command the report tells its reader to run against the same database, and what
// its exit status 0 shows.
type Check struct {
	Command string `json:"command"`
	Shows   string `json:"shows"`
}

// checks returns the commands that check the results trail the report read: audit verify, with
// the v1 chain's head as a checkpoint when that chain has seals (a head of 0 is no checkpoint:
// audit verify refuses it).
func checks(c ChainHead) []Check {
	v := Check{Command: "retention audit verify",
		Shows: fmt.Sprintf("no recorded outcome was edited, removed or inserted; its log line shows %d leaves and root %s, or more leaves once later runs recorded", c.LogSize, c.LogRoot)}
	if c.Seq > 0 {
		v.Command += fmt.Sprintf(" --checkpoint %d:%s", c.Seq, c.Hash)
		v.Shows += fmt.Sprintf("; the v1 chain still holds seal %d with this report's hash", c.Seq)
	}
	return []Check{v}
}
