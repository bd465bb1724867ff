package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/convai-retention/retention/internal/natural"
	"github.com/convai-retention/retention/job"
	"github.com/convai-retention/retention/policy/policyfile"
	"github.com/convai-retention/retention/policy/policyplan"
	"github.com/convai-retention/retention/source"
)

const policyUsage = `usage: retention policy export [--out FILE]
       retention policy apply -f FILE [--dry-run] [--confirm N] [--max-due-share P] [--actor WHO] [--reason WHY] [--abort-above N] [--abort-above-percent P]
       retention plan [--abort-above N] [--abort-above-percent P] [--max-deletions N]
`

// planOptions are the flags "policy apply" and "plan" share: the caps, the source, the output.
type planOptions struct {
	source       string
	output       string
	abortAbove   int64
	abortPercent float64
	// shareCap is set for policy apply, whose --max-due-share (dueShare, in percent) is a cap
	// even when no other is given.
	shareCap bool
	dueShare float64
}

// table is the flag table plan and policy apply share: the source, the format and the caps.
// --format reads no variable here, as before, and keeps its short help.
func (o *planOptions) table() options {
	format := outputOption(&o.output).withEnv(noEnv)
	format.help = "text or json"
	return options{
		{name: "source", value: &o.source, def: source.DefaultRelation,
			help: "SCHEMA.RELATION with columns character_id, session_id, last_active_at"},
		format,
		{name: "abort-above", value: &o.abortAbove, def: int64(0),
			help: "the safety cap in sessions, as for retention run; 0 for off"},
		{name: "abort-above-percent", value: &o.abortPercent, def: 0.0,
			help: "the safety cap in percent of the source's sessions, as for retention run; 0 for off"},
	}
}

// planFlags is the flag set of "retention plan": the shared rows and the next run's budget.
func planFlags(o *planOptions, budget *int64) *flagSet {
	return slices.Concat(o.table(), options{
		{name: "max-deletions", value: budget, def: int64(0),
			help: "the budget of the next run, as for retention run; 0 for no limit"},
	}).flagSet("plan")
}

func (o *planOptions) check() error {
	switch {
	case o.abortAbove < 0:
		return usagef("invalid --abort-above %d: want 0 (off) or more sessions", o.abortAbove)
	case math.IsNaN(o.abortPercent) || o.abortPercent < 0 || o.abortPercent > 100:
		return usagef("invalid --abort-above-percent %v: want 0 (off) to 100", o.abortPercent)
	case o.shareCap && (math.IsNaN(o.dueShare) || o.dueShare < 0 || o.dueShare > 100):
		return usagef("invalid --max-due-share %v: want 0 to 100 (percent of the source's sessions; 100 lets any change through)", o.dueShare)
	}
	return nil
}

// limit is the lowest cap in sessions for a source of n sessions; ok false when no cap is set.
func (o *planOptions) limit(n int64) (limit int64, ok bool) {
	limit = math.MaxInt64
	if o.abortAbove > 0 {
		limit, ok = o.abortAbove, true
	}
	if o.abortPercent > 0 {
		limit, ok = min(limit, int64(math.Floor(o.abortPercent/100*float64(n)))), true
	}
	if o.shareCap {
		limit, ok = min(limit, int64(math.Floor(o.dueShare/100*float64(n)))), true
	}
	return limit, ok
}

// policy runs "retention policy export" and "retention policy apply".
func (a *app) policy(ctx context.Context, args []string) error {
	return dispatch(ctx, "policy", policyUsage, []subcommand{
		{"export", a.policyExport},
		{"apply", a.policyApply},
	}, args)
}

// policyHelp is the help of "retention policy" and of its subcommands: the flags of each.
func policyHelp(w io.Writer) {
	fmt.Fprintf(w, policyUsage+"\nFILE is one YAML document, a regular file of at most %d MiB: a default and one entry per "+
		"character, each with max_age (required), memory_max_age (optional; an entry without it clears the table's: the file "+
		"is the whole truth), enabled and note.\n", maxPolicyFile>>20)
	fmt.Fprintf(w, "policy apply refuses (exit 6, nothing changed) a change that makes more sessions newly due than a cap "+
		"allows: --max-due-share (default %v%% of the source's sessions, even with no other cap) and --abort-above, "+
		"--abort-above-percent; --confirm N, with N the plan's count of newly due sessions (see --dry-run), applies it.\n",
		maxDueShareDefault)
	fmt.Fprint(w, "\nflags of policy export:\n")
	var out string
	exportFlags(&out).usage(w)
	fmt.Fprint(w, "\nflags of policy apply (for plan's, see retention plan --help):\n")
	usageOf(w, applyFlags)
}

// planHelp is the help of "retention plan".
func planHelp(w io.Writer) {
	fmt.Fprint(w, `usage: retention plan [flags]

What the next run would delete per character under the policies as they are (due now and within
7 days, over all shards), whether it would trip the safety cap (with --max-deletions, the budget
first), how many sessions the open erasure requests ask for (sent first, never capped), and, per
character whose policy sets memory_max_age, the memory retention a run applies. It changes
nothing; an app's source (--source) is synced into retention.sessions inside the plan's
transaction, which is rolled back.

`)
	var o planOptions
	var budget int64
	planFlags(&o, &budget).usage(w)
}

// policyStore connects and returns a store on the job's own set, retention.sessions. For an
// app's source (rel other than retention.sessions) it also returns the options that sync it into
// the set inside the plan's transaction, as the next run would, and name it; nil otherwise.
func (a *app) policyStore(ctx context.Context, rel string) (*pgxpool.Pool, *source.Store, *planSync, error) {
	r, err := source.ParseRelation(rel)
	if err != nil {
		return nil, nil, nil, err
	}
	dsn, err := a.databaseURL()
	if err != nil {
		return nil, nil, nil, err
	}
	pool, err := connectCurrent(ctx, dsn, 2)
	if err != nil {
		return nil, nil, nil, err
	}
	var ps *planSync
	if syncs(r) {
		log, err := newLogger(a.stderr, logLevel("", a.getenv), a.redactor)
		if err != nil {
			pool.Close()
			return nil, nil, nil, err
		}
		y, err := a.newSyncer(ctx, log, pool, r, syncFlags{})
		if err != nil {
			pool.Close()
			return nil, nil, nil, err
		}
		ps = &planSync{y: y, name: r.String() + " (synced into retention.sessions)"}
		r, _ = source.ParseRelation(source.DefaultRelation)
	}
	src, err := source.Inspect(ctx, pool, r)
	if err != nil {
		ps.close()
		pool.Close()
		return nil, nil, nil, err
	}
	return pool, source.New(pool, src, source.Config{}), ps, nil
}

// planSync syncs an app's source into the set within a plan's transaction.
type planSync struct {
	y    *syncer
	name string
}

// options returns o with the sync set; o as it is for a nil planSync.
func (ps *planSync) options(o source.ApplyOptions) source.ApplyOptions {
	if ps == nil {
		return o
	}
	o.SourceName = ps.name
	o.Sync = func(ctx context.Context, tx pgx.Tx) error {
		_, err := ps.y.Into(ctx, tx)
		return err
	}
	return o
}

func (ps *planSync) close() {
	if ps != nil {
		ps.y.close()
	}
}

// exportFlags is the flag set of "retention policy export".
func exportFlags(out *string) *flagSet {
	return options{
		{name: "out", env: noEnv, value: out, def: "", help: "write to FILE instead of stdout (replaced whole, or not at all)"},
	}.flagSet("policy export")
}

func (a *app) policyExport(ctx context.Context, args []string) error {
	var out string
	if err := exportFlags(&out).parse(args, a.getenv); err != nil {
		return err
	}
	pool, store, _, err := a.policyStore(ctx, source.DefaultRelation)
	if err != nil {
		return err
	}
	defer pool.Close()
	f, err := store.PolicyFile(ctx)
	if err != nil {
		return err
	}
	header := fmt.Sprintf("retention policies, exported %s\napply with: retention policy apply -f FILE (see retention policy --help)",
		time.Now().UTC().Format(time.RFC3339))
	return a.writeOut(out, func(w io.Writer) error { return policyfile.Write(w, f, header) })
}

// parsePolicyFile parses raw, the policy file at path, without the database: its mistakes of
// shape, all of them, are one usage error naming the file and each line.
func parsePolicyFile(path string, raw []byte) (*policyfile.File, error) {
	f, err := policyfile.Parse(bytes.NewReader(raw))
	if err != nil {
		return nil, policyFileError(path, err)
	}
	return f, nil
}

// checkPolicyFile parses raw, the policy file at path, reading every max_age with the database
// behind pool in one round trip; its mistakes, all of them, are one usage error naming the file
// and each line.
func checkPolicyFile(ctx context.Context, pool *pgxpool.Pool, path string, raw []byte) (*policyfile.File, error) {
	f, err := policyfile.ParseChecked(bytes.NewReader(raw), intervalReader(ctx, pool))
	if err != nil {
		return nil, policyFileError(path, err)
	}
	return f, nil
}

// policyFileError is err, a failure to parse the file at path: a usage error listing the
// file's mistakes when it is some.
func policyFileError(path string, err error) error {
	var list policyfile.ErrorList
	if asErrorList(err, &list) {
		return fileError(path, list)
	}
	return fmt.Errorf("policy apply: read %s: %w", path, err)
}

func asErrorList(err error, list *policyfile.ErrorList) bool { return errors.As(err, list) }

// fileError is a usage error listing every mistake of a file as FILE:LINE: reason.
func fileError(path string, list policyfile.ErrorList) error {
	msgs := make([]string, len(list))
	for i, e := range list {
		if e.Line > 0 {
			msgs[i] = fmt.Sprintf("%s:%d: %s", path, e.Line, e.Reason)
		} else {
			msgs[i] = fmt.Sprintf("%s: %s", path, e.Reason)
		}
	}
	return usagef("invalid policy file; nothing changed:\n  %s", strings.Join(msgs, "\n  "))
}

// due counts what a run would select, with the job's rules and selection, over every shard.
func due(ctx context.Context, rd job.Reader, at time.Time) (map[string]int64, error) {
	r, err := job.New(nil, nil, job.Config{})
	if err != nil {
		return nil, err
	}
	return r.Due(ctx, rd, at)
}

// plan runs "retention plan": the impact of the policies as they are.
func (a *app) plan(ctx context.Context, args []string) error {
	var o planOptions
	var budget int64
	if err := planFlags(&o, &budget).parse(args, a.getenv); err != nil {
		return err
	}
	if err := o.check(); err != nil {
		return err
	}
	if budget < 0 {
		return usagef("invalid --max-deletions %d: want 0 (no limit) or more", budget)
	}
	pool, store, ps, err := a.policyStore(ctx, o.source)
	if err != nil {
		return err
	}
	defer pool.Close()
	defer ps.close()
	p, err := store.ApplyPolicies(ctx, nil, ps.options(source.ApplyOptions{Due: due}))
	if err != nil {
		return err
	}
	if err := writePlan(a.stdout, o, p, false, false); err != nil {
		return err
	}
	next := p.DueNow()
	if budget > 0 {
		next = min(next, budget)
	}
	if limit, ok := o.limit(p.SourceSessions); ok && next > limit {
		fmt.Fprintf(a.stdout, "the next run would send %d sessions, above the safety cap of %d: it would abort (exit 6)\n", next, limit)
	}
	if o.output == "text" {
		work, err := store.OpenErasures(ctx, job.Shard{Index: 0, Count: 1})
		if err != nil {
			return err
		}
		var open, n int
		for _, w := range work {
			n += len(w.Sessions)
			if !w.Refuted {
				open++
			}
		}
		if n > 0 || open > 0 {
			fmt.Fprintf(a.stdout, "erasure requests: %d open, asking for %d session(s) not yet deleted, held ones included; the next "+
				"run sends the others first, never capped and not counted above (see retention report)\n", open, n)
		}
	}
	return nil
}

// writePlan prints a plan: the changes (withChanges) and the impact per character.
func writePlan(w io.Writer, o planOptions, p *policyplan.Plan, withChanges, applied bool) error {
	// Characters in natural order (big-2 before big-10), in both formats.
	slices.SortStableFunc(p.Impact, func(a, b policyplan.Impact) int { return natural.Compare(a.CharacterID, b.CharacterID) })
	limit, capped := o.limit(p.SourceSessions)
	if o.output == "json" {
		return writePlanJSON(w, p, limit, capped, applied)
	}
	var b strings.Builder
	if withChanges {
		writeChangesText(&b, p.Changes)
	}
	fmt.Fprintf(&b, "impact on %s (%d sessions; due = expired and not held; at %s):\n", p.Source, p.SourceSessions, p.At.UTC().Format(time.RFC3339))
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	if err := writeImpactTable(w, p.Impact, withChanges); err != nil {
		return err
	}
	if err := writeMemoryPlan(w, p); err != nil {
		return err
	}
	b.Reset()
	if withChanges {
		fmt.Fprintf(&b, "new deletions due now: %d", p.NewDeletions())
		if capped {
			verdict := "within"
			if p.NewDeletions() > limit {
				verdict = "ABOVE"
			}
			fmt.Fprintf(&b, " (%s the safety cap of %d)", verdict, limit)
		}
		b.WriteString("\n")
		switch {
		case len(p.Changes) == 0:
			b.WriteString("nothing to change\n")
		case applied:
			b.WriteString("applied\n")
		default:
			b.WriteString("not applied\n")
		}
	} else if capped {
		fmt.Fprintf(&b, "safety cap: %d sessions\n", limit)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writePlanJSON writes the plan as one JSON document with its totals, the safety cap when one
// applies (limit, capped) and whether it was applied.
func writePlanJSON(w io.Writer, p *policyplan.Plan, limit int64, capped, applied bool) error {
	doc := struct {
		*policyplan.Plan
		DueNow       int64  `json:"due_now"`
		NewDeletions int64  `json:"new_deletions"`
		Cap          *int64 `json:"safety_cap,omitempty"`
		Applied      bool   `json:"applied"`
	}{Plan: p, DueNow: p.DueNow(), NewDeletions: p.NewDeletions(), Applied: applied}
	if capped {
		doc.Cap = &limit
	}
	return writeJSON(w, doc)
}

// writeChangesText lists the changes to retention.policies, one a line.
func writeChangesText(b *strings.Builder, changes []policyplan.Change) {
	fmt.Fprintf(b, "plan: %d change(s) to retention.policies\n", len(changes))
	for _, c := range changes {
		who := "default policy"
		if c.CharacterID != "" {
			who = fmt.Sprintf("character %q", c.CharacterID)
		}
		switch c.Op {
		case "insert":
			fmt.Fprintf(b, "  + %s: %s\n", who, entryText(c.New))
		case "update":
			fmt.Fprintf(b, "  ~ %s: %s -> %s\n", who, entryText(c.Old), entryText(c.New))
		case "delete":
			fmt.Fprintf(b, "  - %s: %s\n", who, entryText(c.Old))
		}
		if from, to, changed := c.MemoryChange(); changed {
			fmt.Fprintf(b, "      memory_max_age: %s -> %s", orNone(from), orNone(to))
			switch {
			case to == "" && c.New != nil:
				b.WriteString(" (not in the file: cleared, long-term memory kept as long as Convai keeps it)")
			case to == "":
				b.WriteString(" (the policy is removed)")
			}
			b.WriteString("\n")
		}
	}
}

// orNone is s, or "none" when s is empty.
func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// writeMemoryPlan writes the memory retention of the planned policies: each policy that sets
// memory_max_age, then per character whose policy in force sets it, its threshold and end
// users; one line when no policy sets memory_max_age.
func writeMemoryPlan(w io.Writer, p *policyplan.Plan) error {
	if len(p.MemoryPolicies) == 0 {
		_, err := fmt.Fprintln(w, "memory retention: no policy sets memory_max_age; long-term memory is kept as long as Convai keeps it")
		return err
	}
	var b strings.Builder
	b.WriteString("memory retention: a run deletes the long-term memories of each end user of these characters last updated at or before the threshold:\n")
	for _, e := range p.MemoryPolicies {
		who := "default policy"
		if e.CharacterID != "" {
			who = fmt.Sprintf("character %q", e.CharacterID)
		}
		fmt.Fprintf(&b, "  %s: memory_max_age %s", who, e.MemoryMaxAge)
		if !e.Enabled {
			b.WriteString(" (disabled: not applied)")
		}
		b.WriteString("\n")
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	if len(p.Memory) == 0 {
		_, err := fmt.Fprintln(w, "  no end user was seen with a character under these policies: no memory to list")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CHARACTER\tMEMORY MAX AGE\tTHRESHOLD\tEND USERS\tHELD")
	for _, m := range p.Memory {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\n", printable(m.CharacterID), m.MemoryMaxAge, m.Threshold.UTC().Format(time.RFC3339), m.EndUsers, m.Held)
	}
	return tw.Flush()
}

// writeImpactTable writes the impact per character and its total: due now and within 7 days,
// with the planned figures beside the current ones when withChanges.
func writeImpactTable(w io.Writer, impact []policyplan.Impact, withChanges bool) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if withChanges {
		fmt.Fprintln(tw, "CHARACTER\tDUE NOW\tDUE NOW (PLANNED)\tWITHIN 7D\tWITHIN 7D (PLANNED)")
	} else {
		fmt.Fprintln(tw, "CHARACTER\tDUE NOW\tWITHIN 7D")
	}
	var now, nowP, week, weekP int64
	for _, i := range impact {
		if withChanges {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\n", printable(i.CharacterID), i.NowCurrent, i.NowPlanned, i.WeekCurrent, i.WeekPlanned)
		} else {
			fmt.Fprintf(tw, "%s\t%d\t%d\n", printable(i.CharacterID), i.NowCurrent, i.WeekCurrent)
		}
		now, nowP, week, weekP = now+i.NowCurrent, nowP+i.NowPlanned, week+i.WeekCurrent, weekP+i.WeekPlanned
	}
	if withChanges {
		fmt.Fprintf(tw, "(total)\t%d\t%d\t%d\t%d\n", now, nowP, week, weekP)
	} else {
		fmt.Fprintf(tw, "(total)\t%d\t%d\n", now, week)
	}
	return tw.Flush()
}

func entryText(e *policyfile.Entry) string {
	s := "max_age " + e.MaxAge
	if e.MemoryMaxAge != "" {
		s += ", memory_max_age " + e.MemoryMaxAge
	}
	if !e.Enabled {
		s += ", disabled"
	}
	if e.Note != "" {
		s += fmt.Sprintf(", note %q", e.Note)
	}
	return s
}
