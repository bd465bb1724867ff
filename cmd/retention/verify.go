package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/convai-retention/retention/cmd/retention/exitcode"
	"github.com/convai-retention/retention/internal/cli"
	"github.com/convai-retention/retention/internal/sender"
	"github.com/convai-retention/retention/job"
	"github.com/convai-retention/retention/metrics"
	"github.com/convai-retention/retention/source"
)

// verifyOptions is the parsed command line of "retention verify".
type verifyOptions struct {
	character string
	since     string
	sample    int
	pushURL   string
	apiFlags
}

func verifyFlags(o *verifyOptions) *flagSet { return o.table().flagSet("verify") }

// table is the flag table of verify: its scope, then the rows it shares with the other commands
// that call the API, with --pushgateway-url among them.
func (o *verifyOptions) table() options {
	return o.apiFlags.table(options{
		{name: "character", env: noEnv, value: &o.character, def: "",
			help: "verify this character only (default: every character with a recorded deletion)"},
		{name: "since", env: noEnv, value: &o.since, def: "",
			help: "only deletions completed at or after this: YYYY-MM-DD (UTC) or RFC 3339 (default: all)"},
		{name: "sample", env: noEnv, value: &o.sample, def: 0,
			help: "check at most N deletions per character, chosen at random; 0 checks all"},
	}, option{name: "pushgateway-url", value: &o.pushURL, def: "",
		help: "push the verification's metrics to this Prometheus Pushgateway when it ends"})
}

func verifyHelp(w io.Writer) {
	fmt.Fprint(w, `usage: retention verify [--character C] [--since T] [--sample N] [flags]

Lists each character's sessions at Convai and checks every recorded deletion in scope: absent
is verified, present is a verification failure (the next run sends the session again). Every
check is recorded, chained by SHA-256. Then, only if an end user's memory erasure in scope says
erased, lists that end user's long-term memories with the character again: none stayed gone,
some found again refutes the erasure (the next run erases again), an error or a 404 or 403 is
not checked (retention.memory_rechecks). Exit 0 when nothing was found present or again, 1
when something was, 4 when the API rejected the key, 5 when a character's list could not be
read.

`)
	usageOf(w, verifyFlags)
}

// verify is "retention verify".
func (a *app) verify(ctx context.Context, args []string) error {
	o, err := parseOptions(args, a.getenv, verifyFlags)
	if err != nil {
		return err
	}
	if err := o.table().check(); err != nil {
		return err
	}
	if o.sample < 0 {
		return usagef("invalid --sample %d: want 0 (all) or more", o.sample)
	}
	scope := job.VerifyScope{CharacterID: strings.TrimSpace(o.character), Sample: o.sample}
	if o.since != "" {
		t, err := parseInstant("since", o.since, false)
		if err != nil {
			return err
		}
		scope.Since = t
	}
	rel, err := source.ParseRelation(source.DefaultRelation)
	if err != nil {
		return err
	}
	env, err := a.openAPIStore(ctx, &o.apiFlags, rel)
	if err != nil {
		return err
	}
	defer env.close()
	log := env.log
	client, store := env.client, env.store
	m := metrics.NewVerify(metrics.Config{})
	host, _ := os.Hostname()
	sum, err := job.Verify(ctx, store, sender.Convai{Client: client}, o.cfg, m,
		job.VerifyStart{Scope: scope, Host: host, Version: buildVersion()})
	if sum != nil {
		m.Finished()
		if o.pushURL != "" {
			if perr := m.Push(context.WithoutCancel(ctx), o.pushURL); perr != nil {
				log.Error("could not push the metrics; the exit code does not change", "pushgateway", safeURL(o.pushURL),
					"err", redact(perr.Error(), urlSecrets(o.pushURL)...))
			}
		}
		if werr := writeVerifySummary(a.stdout, o.output, sum); werr != nil {
			log.Error("write summary", "err", werr)
		}
	}
	switch {
	case err != nil:
		return err
	case sum.Present > 0 || (sum.MemoryRechecks != nil && sum.MemoryRechecks.FoundAgain > 0):
		return cli.Exit(exitcode.Partial, nil)
	case sum.Unlisted > 0:
		return cli.Exit(exitcode.Fatal, fmt.Errorf("the lists of %d characters could not be read: their deletions are not verified", sum.Unlisted))
	}
	return nil
}

// writeVerifySummary prints what a verification did.
func writeVerifySummary(w io.Writer, format string, s *job.VerifySummary) error {
	if format == "json" {
		return writeJSON(w, s)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "verify %d %s: checked %d deleted sessions, %d absent (verified), %d present (verification failures), %d characters not listed\n",
		s.VerifyID, s.Status, s.Checked, s.Absent, s.Present, s.Unlisted)
	if len(s.Characters) > 0 {
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "CHARACTER\tCHECKED\tABSENT\tPRESENT\tNOTE")
		for _, c := range s.Characters {
			note := c.Error
			if len(c.PresentIDs) > 0 {
				note = "present: " + strings.Join(c.PresentIDs, ", ")
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\n", c.CharacterID, c.Checked, c.Absent, c.Present, note)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if m := s.MemoryRechecks; m != nil {
		fmt.Fprintf(&b, "erased memories re-checked: %d stayed gone, %d found again (the next run erases them again), %d not checked\n",
			m.StayedGone, m.FoundAgain, m.NotChecked)
		if len(m.Found) > 0 {
			fmt.Fprintf(&b, "found again: %s\n", strings.Join(m.Found, ", "))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
