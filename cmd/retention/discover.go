package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/convai-retention/retention/cmd/retention/exitcode"
	"github.com/convai-retention/retention/internal/cli"
	"github.com/convai-retention/retention/internal/sender"
	"github.com/convai-retention/retention/job"
	"github.com/convai-retention/retention/source"
)

// discoverOptions is the parsed command line of "retention discover".
type discoverOptions struct {
	characters string
	dryRun     bool
	source     string
	apiFlags
}

func discoverFlags(o *discoverOptions) *flagSet { return o.table().flagSet("discover") }

// table is the flag table of discover: what it looks at, then the rows it shares with the other
// commands that call the API, with --concurrency among them.
func (o *discoverOptions) table() options {
	return o.apiFlags.table(options{
		{name: "character", env: noEnv, value: &o.characters, def: "",
			help: "comma-separated characters to discover (default: every character the database knows whose policy lets the job delete)"},
		{name: "dry-run", env: noEnv, value: &o.dryRun, def: false,
			help: "count per character the sessions Convai has that the app does not, and how many are expired; add nothing"},
		{name: "source", value: &o.source, def: source.DefaultRelation,
			help: "SCHEMA.RELATION the app's sessions are in; any but retention.sessions is synced into it first (not in a dry-run), and discover adds to it"},
	}, concurrencyOption(&o.cfg))
}

func discoverHelp(w io.Writer) {
	fmt.Fprint(w, `usage: retention discover [--character C,...] [--dry-run] [flags]

Lists each character's sessions at Convai and finds those the app never stored. For each one
whose list date is past the character's threshold it reads the details: the latest interaction
is its last activity. Those are added to retention.sessions (recorded in retention.discoveries),
and the next run deletes the expired ones. With a view as --source nothing is added: the counts
are printed and the view's owner must add the sessions. Exit 0, 4 when the API rejected the key,
5 when a character's list could not be read.

`)
	usageOf(w, discoverFlags)
}

// discover is "retention discover".
func (a *app) discover(ctx context.Context, args []string) error {
	o, err := parseOptions(args, a.getenv, discoverFlags)
	if err != nil {
		return err
	}
	if err := o.table().check(); err != nil {
		return err
	}
	rel, err := source.ParseRelation(o.source)
	if err != nil {
		return err
	}
	named := rel
	if syncs(rel) {
		// An app's source is synced into the job's own set first, as a run does: discover
		// compares Convai's lists with the set, and adds what the app never stored to it.
		rel, _ = source.ParseRelation(source.DefaultRelation)
	}
	env, err := a.openAPIStore(ctx, &o.apiFlags, rel)
	if err != nil {
		return err
	}
	defer env.close()
	log := env.log
	if syncs(named) && !o.dryRun {
		y, err := a.newSyncer(ctx, log, env.pool, named, syncFlags{})
		if err != nil {
			return err
		}
		rep, err := y.Sync(ctx, env.pool)
		y.close()
		if err != nil {
			return err
		}
		logSync(log, &rep)
	}
	client, store := env.client, env.store
	var chars []string
	for c := range strings.SplitSeq(o.characters, ",") {
		if c = strings.TrimSpace(c); c != "" {
			chars = append(chars, c)
		}
	}
	s := sender.Convai{Client: client}
	sum, err := job.Discover(ctx, store, s, s, o.cfg, job.DiscoverOptions{Characters: chars, DryRun: o.dryRun, CanAdd: store.IsBuiltin()})
	if sum != nil {
		if werr := writeDiscoverSummary(a.stdout, o.output, rel.String(), store.IsBuiltin(), sum); werr != nil {
			log.Error("write summary", "err", werr)
		}
	}
	if err != nil {
		return err
	}
	unlisted := 0
	for _, c := range sum.Characters {
		if strings.HasPrefix(c.Error, "could not list") {
			unlisted++
		}
	}
	if unlisted > 0 {
		return cli.Exit(exitcode.Fatal, fmt.Errorf("the lists of %d characters could not be read", unlisted))
	}
	return nil
}

// writeDiscoverSummary prints what discover found.
func writeDiscoverSummary(w io.Writer, format, rel string, builtin bool, s *job.DiscoverSummary) error {
	if format == "json" {
		return writeJSON(w, s)
	}
	var b strings.Builder
	switch {
	case s.DryRun:
		b.WriteString("dry-run: nothing was added.\n")
	case !builtin:
		fmt.Fprintf(&b, "nothing was added: %s is a relation of the app's; its owner must add the sessions below (discover adds only to retention.sessions).\n", rel)
	}
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CHARACTER\tLISTED\tNOT STORED\tEXPIRED\tNOT YET EXPIRED (LIST DATE)\tNO TIMESTAMP\tMALFORMED\tADDED\tNOTE")
	for _, c := range s.Characters {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", c.CharacterID, c.Listed, c.Missing, c.Expired, c.Recent, c.Undated,
			c.Malformed, c.Added, c.Error)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := io.WriteString(w, b.String())
	return err
}
