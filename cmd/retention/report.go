package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/convai-retention/retention/report"
	"github.com/convai-retention/retention/source"
)

// defaultPeriod is how far back a report looks without --since.
const defaultPeriod = 30 * 24 * time.Hour

// reportOptions is the parsed command line of "retention report".
type reportOptions struct {
	since, until string
	character    string
	session      string
	endUser      string
	format       string
	table        string
	out          string
	source       string
	sla          string
	policiesAsOf string
	set          map[string]bool // flags given on the command line
}

func reportFlags(o *reportOptions) *flagSet {
	return options{
		{name: "since", env: noEnv, value: &o.since, def: "",
			help: "start of the period: YYYY-MM-DD (UTC) or RFC 3339 (default: 30 days before --until)"},
		{name: "until", env: noEnv, value: &o.until, def: "",
			help: "end of the period: YYYY-MM-DD includes that day, an RFC 3339 time is excluded (default: now)"},
		{name: "character", env: noEnv, value: &o.character, def: "", help: "report on this character only"},
		{name: "session", env: noEnv, value: &o.session, def: "",
			help: "instead of the report, the evidence for this session ID: every attempt, or why it was never selected"},
		{name: "end-user", env: noEnv, value: &o.endUser, def: "",
			help: "instead of the report, the evidence for this end user's erasure requests: sessions deleted and each long-term memory erasure (table or json)"},
		{name: "format", env: noEnv, value: &o.format, def: "",
			help: "table, csv, json or html; text is table (default: table, or the extension of --out: .html, .json, .csv, .txt, said on stderr)"},
		{name: "table", env: noEnv, value: &o.table, def: string(report.CSVCharacters),
			help: "the table of a CSV report: " + report.CSVTableNames()},
		{name: "out", env: noEnv, value: &o.out, def: "", help: "write to FILE instead of stdout (replaced whole, or not at all)"},
		{name: "policies-as-of", env: noEnv, value: &o.policiesAsOf, def: "",
			help: "instead of the report, the policies in force at this instant, each with its version and who changed it, when and why: YYYY-MM-DD (midnight UTC) or RFC 3339 (table, csv or json)"},
		{name: "source", value: &o.source, def: source.DefaultRelation,
			help: "SCHEMA.RELATION with columns character_id, session_id, last_active_at, for the live counts"},
		{name: "sla", value: &o.sla, def: "7d",
			help: "how long a session may stay expired before it is overdue: days (7d) or a Go duration (168h)"},
	}.flagSet("report")
}

func reportHelp(w io.Writer) {
	fmt.Fprint(w, "usage: retention report [flags]\n       retention report --session ID [--character C] [flags]\n"+
		"       retention report --end-user U [--format table|json] [--out FILE]\n"+
		"       retention report --policies-as-of TIME [--format F] [--out FILE]\n\n")
	var o reportOptions
	reportFlags(&o).usage(w)
}

// report is "retention report": the compliance report of a period, or the evidence for one
// session, one end user, or the policies in force at an instant.
func (a *app) report(ctx context.Context, args []string) error {
	var o reportOptions
	fs := reportFlags(&o)
	if err := fs.parse(args, a.getenv); err != nil {
		return err
	}
	o.set = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { o.set[f.Name] = true })
	format, table, why, err := o.output()
	if err != nil {
		return err
	}
	if why != "" {
		fmt.Fprintf(a.stderr, "report: writing %s to %s (%s)\n", format, o.out, why)
	}
	rel, err := source.ParseRelation(o.source)
	if err != nil {
		return err
	}
	opts, asOf, err := o.mode(format)
	if err != nil {
		return err
	}
	dsn, err := a.databaseURL()
	if err != nil {
		return err
	}

	pool, err := connectCurrent(ctx, dsn, 2)
	if err != nil {
		return err
	}
	defer pool.Close()
	ident, syncedFrom, err := a.reportSource(ctx, pool, rel)
	if err != nil {
		return err
	}
	opts.Character, opts.Source, opts.SyncedFrom = o.character, ident, syncedFrom
	return a.writeOut(o.out, func(w io.Writer) error {
		return o.write(ctx, pool, w, format, table, opts, asOf)
	})
}

// mode checks the flags against what the report is asked for: the policies as of an instant
// (returned as asOf), an end user's evidence, a session's evidence, or the report of a period
// (returned as opts, its character and source left to the caller).
func (o *reportOptions) mode(format report.Format) (opts report.Options, asOf time.Time, err error) {
	switch {
	case o.policiesAsOf != "":
		if err := o.notWith("policies-as-of", "", "session", "since", "until", "sla", "table", "character"); err != nil {
			return opts, asOf, err
		}
		if asOf, err = parseInstant("policies-as-of", o.policiesAsOf, false); err != nil {
			return opts, asOf, err
		}
		if format == report.FormatHTML {
			return opts, asOf, usagef("--policies-as-of writes table, csv or json, not html")
		}
	case o.endUser != "":
		if err := o.notWith("end-user", ": the evidence covers every request of the end user",
			"session", "since", "until", "sla", "table", "character"); err != nil {
			return opts, asOf, err
		}
		if format != report.FormatTable && format != report.FormatJSON {
			return opts, asOf, usagef("--end-user writes table or json, not %s", format)
		}
	case o.session == "":
		opts, err = o.period(time.Now())
		return opts, asOf, err
	default:
		return opts, asOf, o.notWith("session", ": the evidence covers every attempt", "since", "until", "sla", "table")
	}
	return opts, asOf, nil
}

// notWith refuses the first of flags given on the command line: it does not apply to --mode
// (why says more, after a colon, or is "").
func (o *reportOptions) notWith(mode, why string, flags ...string) error {
	for _, name := range flags {
		if o.set[name] {
			return usagef("--%s does not apply to --%s%s", name, mode, why)
		}
	}
	return nil
}

// reportSource checks the source relation and returns the one the report reads: an app's
// source is synced into the job's own set, which every run reads, so the live counts and the
// evidence read the set too, and syncedFrom names the app's relation for the report to say
// how current the set is.
func (a *app) reportSource(ctx context.Context, pool *pgxpool.Pool, rel source.Relation) (ident pgx.Identifier, syncedFrom string, err error) {
	if syncs(rel) {
		if a.getenv("SOURCE_DATABASE_URL") == "" && a.getenv("SOURCE_DATABASE_URL_FILE") == "" {
			if _, err := source.Inspect(ctx, pool, rel); err != nil { // a typo is still caught
				return nil, "", err
			}
		}
		syncedFrom = rel.String()
		rel, _ = source.ParseRelation(source.DefaultRelation)
	}
	if _, err := source.Inspect(ctx, pool, rel); err != nil {
		return nil, "", err
	}
	return pgx.Identifier{rel.Schema, rel.Name}, syncedFrom, nil
}

// write reads what the report is asked for (see mode) from pool and writes it on w.
func (o *reportOptions) write(ctx context.Context, pool *pgxpool.Pool, w io.Writer, format report.Format, table report.CSVTable,
	opts report.Options, asOf time.Time) error {
	switch {
	case o.policiesAsOf != "":
		p, err := report.PoliciesAsOf(ctx, pool, asOf)
		if err != nil {
			return err
		}
		return p.Write(w, format)
	case o.endUser != "":
		ev, err := report.EndUser(ctx, pool, o.endUser)
		if err != nil {
			return err
		}
		return ev.Write(w, format)
	case o.session != "":
		ev, err := report.Session(ctx, pool, report.SessionOptions{SessionID: o.session, Character: o.character, Source: opts.Source})
		if err != nil {
			return err
		}
		return ev.Write(w, format)
	}
	r, err := report.Build(ctx, pool, opts)
	if err != nil {
		return err
	}
	return r.Write(w, format, table)
}

// output picks the format: --format, else the extension of --out, else table, wherever stdout
// goes (a report redirected to a file is the table it shows on a terminal). When the extension
// chose, why says so, for stderr; "" otherwise. --format text is table, the word the other
// commands use for their text.
func (o *reportOptions) output() (f report.Format, table report.CSVTable, why string, err error) {
	if table, err = report.ParseCSVTable(o.table); err != nil {
		return "", "", "", err
	}
	if o.format == "text" {
		return report.FormatTable, table, "", nil
	}
	if o.format != "" {
		f, err := report.ParseFormat(o.format)
		return f, table, "", err
	}
	if o.out != "" && o.out != "-" {
		ext := strings.ToLower(filepath.Ext(o.out))
		switch ext {
		case ".html", ".htm":
			f = report.FormatHTML
		case ".json":
			f = report.FormatJSON
		case ".csv":
			f = report.FormatCSV
		case ".txt":
			f = report.FormatTable
		}
		if f != "" {
			return f, table, fmt.Sprintf("chosen by its extension %s; --format picks another", ext), nil
		}
	}
	return report.FormatTable, table, "", nil
}

// period reads --since, --until and --sla. A date is a UTC day: --until DATE includes it.
func (o *reportOptions) period(now time.Time) (report.Options, error) {
	var r report.Options
	var err error
	r.Until = now.UTC()
	if o.until != "" {
		if r.Until, err = parseInstant("until", o.until, true); err != nil {
			return r, err
		}
	}
	r.Since = r.Until.Add(-defaultPeriod)
	if o.since != "" {
		if r.Since, err = parseInstant("since", o.since, false); err != nil {
			return r, err
		}
	}
	if !r.Until.After(r.Since) {
		return r, usagef("invalid period: --until %s is not after --since %s", r.Until.Format(time.RFC3339), r.Since.Format(time.RFC3339))
	}
	if r.SLA, err = parseSLA(o.sla); err != nil {
		return r, err
	}
	return r, nil
}

// parseInstant reads YYYY-MM-DD (midnight UTC; the next midnight when endOfDay) or RFC 3339.
func parseInstant(flagName, s string, endOfDay bool) (time.Time, error) {
	if d, err := time.ParseInLocation(time.DateOnly, s, time.UTC); err == nil {
		if endOfDay {
			d = d.AddDate(0, 0, 1)
		}
		return d, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, usagef("invalid --%s %q: want a date, 2025-03-31, or an RFC 3339 time, 2025-03-31T12:00:00Z", flagName, s)
	}
	return t.UTC(), nil
}

// parseSLA reads whole days ("7d") or a Go duration ("168h"), positive.
func parseSLA(s string) (time.Duration, error) {
	bad := usagef("invalid --sla %q: want a positive number of days, 7d, or a Go duration, 36h", s)
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 || n > 3650 {
			return 0, bad
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, bad
	}
	return d, nil
}

// writeOut runs write on stdout, or on a temporary file beside path that replaces path once
// complete, so a failed report never leaves half a file.
func (a *app) writeOut(path string, write func(io.Writer) error) (err error) {
	if path == "" || path == "-" {
		return write(a.stdout)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("create --out %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := write(f); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write --out %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write --out %s: %w", path, err)
	}
	return nil
}
