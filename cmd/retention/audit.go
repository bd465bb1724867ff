package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/convai-retention/retention/audit"
)

// checkpoints is a repeatable --checkpoint SEQ:HASH flag.
type checkpoints []audit.Checkpoint

func (c *checkpoints) String() string {
	s := make([]string, len(*c))
	for i, x := range *c {
		s[i] = x.String()
	}
	return strings.Join(s, ",")
}

func (c *checkpoints) Set(v string) error {
	for _, part := range strings.Split(v, ",") {
		cp, err := audit.ParseCheckpoint(part)
		if err != nil {
			return err
		}
		*c = append(*c, cp)
	}
	return nil
}

// auditUsage is the usage line of "retention audit".
const auditUsage = "usage: retention audit verify [--checkpoint SEQ:HASH]... [--format text|json]\n"

func auditVerifyFlags(cps *checkpoints, format *string) *flagSet {
	fs := newFlagSet("audit verify")
	fs.Var(cps, "checkpoint", "a head noted from an earlier verify, SEQ:HASH, that must still be in the chain (repeatable)")
	fs.StringVar(format, "format", "text", "text or json")
	fs.envName("checkpoint", "RETENTION_AUDIT_CHECKPOINT")
	return fs
}

func auditHelp(w io.Writer) {
	fmt.Fprint(w, auditUsage+"\n")
	var cps checkpoints
	var format string
	auditVerifyFlags(&cps, &format).usage(w)
}

// audit is "retention audit verify": it checks the seal chain of the recorded outcomes and
// exits 1 when something was edited, removed or inserted.
func (a *app) audit(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "verify" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			fmt.Fprint(a.stdout, auditUsage)
			return nil
		}
		return usagef("audit: want the subcommand verify (%s)", strings.TrimSuffix(auditUsage, "\n"))
	}
	var cps checkpoints
	var format string
	if err := auditVerifyFlags(&cps, &format).parse(args[1:], a.getenv); err != nil {
		return err
	}
	if format != "text" && format != "json" {
		return usagef("invalid --format %q: want text or json", format)
	}
	dsn, err := a.databaseURL()
	if err != nil {
		return err
	}
	pool, err := connectCurrent(ctx, dsn, 1)
	if err != nil {
		return err
	}
	defer pool.Close()
	res, err := audit.Verify(ctx, pool, audit.Options{Checkpoints: cps})
	if err != nil {
		return err
	}
	if format == "json" {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return err
		}
	} else if err := writeVerify(a.stdout, res); err != nil {
		return err
	}
	return res.Err()
}

func writeVerify(w io.Writer, res *audit.Result) error {
	var b strings.Builder
	if res.Intact() {
		fmt.Fprintf(&b, "intact: %d sealed outcome(s), none edited, removed or inserted\n", res.Sealed)
	} else {
		fmt.Fprintf(&b, "BROKEN: %d problem(s) in %d sealed outcome(s)\n", res.ProblemCount, res.Sealed)
		for _, p := range res.Problems {
			fmt.Fprintf(&b, "  %s: %s\n", p.Kind, p)
		}
		if n := res.ProblemCount - int64(len(res.Problems)); n > 0 {
			fmt.Fprintf(&b, "  ... and %d more\n", n)
		}
	}
	fmt.Fprintf(&b, "head %s\n", res.Head)
	if res.Intact() && res.Head.Seq > 0 {
		fmt.Fprintf(&b, "note the head down: a later \"retention audit verify --checkpoint %s\" proves nothing up to it changed\n", res.Head)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
