package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/convai-retention/retention/cmd/retention/exitcode"
	"github.com/convai-retention/retention/internal/cli"
	"github.com/convai-retention/retention/policy/policyfile"
	"github.com/convai-retention/retention/policy/policyplan"
	"github.com/convai-retention/retention/source"
)

// maxDueShareDefault is the default of --max-due-share: the most of the source's sessions, in
// percent, that a policy change may make newly due without --confirm.
const maxDueShareDefault = 10.0

// applyOptions is the parsed command line of "retention policy apply".
type applyOptions struct {
	plan          planOptions
	file          string
	dryRun        bool
	confirm       confirmCount
	actor, reason string
}

func applyFlags(o *applyOptions) *flagSet {
	o.plan.shareCap = true
	return o.table().flagSet("policy apply")
}

// table is the flag table of policy apply: the file and who applies it, the rows it shares with
// plan, and --max-due-share, the cap that holds even when no other is given.
func (o *applyOptions) table() options {
	return slices.Concat(options{
		{name: "f", env: noEnv, value: &o.file, def: "", help: fmt.Sprintf("the policy file to apply (as policy export writes it): one YAML document, "+
			"a regular file of at most %d MiB", maxPolicyFile>>20)},
		{name: "dry-run", env: noEnv, value: &o.dryRun, def: false, help: "print the plan and change nothing"},
		{name: "confirm", env: noEnv, value: &o.confirm, help: "N: apply although the new deletions exceed a cap, N being the plan's count of sessions " +
			"newly due now (new deletions due now, from --dry-run); any other N refuses"},
		{name: "actor", value: &o.actor, def: "", help: "who applies the file, recorded in retention.policy_history"},
		{name: "reason", env: noEnv, value: &o.reason, def: "", help: "why, recorded in retention.policy_history (default: each policy's note)"},
	}, o.plan.table(), options{
		{name: "max-due-share", value: &o.plan.dueShare, def: maxDueShareDefault, help: "the safety cap in percent of the source's sessions " +
			"that a change may make newly due, whatever the other caps; 100 lets any change through"},
	})
}

// confirmCount is --confirm N: the count of newly due sessions the operator read in the plan.
type confirmCount struct {
	n   int64
	set bool
}

func (c *confirmCount) String() string {
	if c == nil || !c.set {
		return ""
	}
	return strconv.FormatInt(c.n, 10)
}

func (c *confirmCount) Set(s string) error {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("want the plan's count of sessions newly due now, e.g. --confirm 3 (policy apply --dry-run shows it)")
	}
	c.n, c.set = n, true
	return nil
}

// refusal says why the plan p must not be committed, or "" when it may: its new deletions are
// above a cap and --confirm does not give their count, or --confirm gives another count.
func (o *applyOptions) refusal(p *policyplan.Plan) string {
	n, total := p.NewDeletions(), p.SourceSessions
	limit, capped := o.plan.limit(total)
	switch {
	case o.confirm.set && o.confirm.n != n:
		return fmt.Sprintf("policy apply: --confirm %d does not match the plan: the changes make %d sessions newly due now; "+
			"nothing changed (check the plan, and give --confirm %d to apply it)", o.confirm.n, n, n)
	case !o.confirm.set && capped && n > limit:
		return fmt.Sprintf("policy apply: the changes make %d more sessions due now (%s of the source's %d), above the safety "+
			"cap of %d; nothing changed: check the plan, and give --confirm %d to apply anyway", n, sharePercent(n, total), total, limit, n)
	}
	return ""
}

// sharePercent is n of total as a percentage, to the nearest whole one (to two digits below 1%).
func sharePercent(n, total int64) string {
	if total <= 0 {
		return "0%"
	}
	p := 100 * float64(n) / float64(total)
	if p > 0 && p < 1 {
		return strconv.FormatFloat(p, 'g', 2, 64) + "%"
	}
	return strconv.FormatFloat(p, 'f', 0, 64) + "%"
}

func (a *app) policyApply(ctx context.Context, args []string) error {
	o, err := parseOptions(args, a.getenv, applyFlags)
	if err != nil {
		return err
	}
	if err := o.plan.check(); err != nil {
		return err
	}
	if o.file == "" {
		return usagef("policy apply: -f FILE is required")
	}
	raw, err := readFile("policy apply -f", o.file, maxPolicyFile)
	if err != nil {
		return err
	}
	// The file's shape is checked before connecting, so that its mistakes are reported even when
	// the database cannot be reached; when it can, the mistakes of both kinds go together.
	_, shapeErr := parsePolicyFile(o.file, raw)
	pool, store, ps, err := a.policyStore(ctx, o.plan.source)
	if err != nil {
		if shapeErr != nil {
			fmt.Fprintf(a.stderr, "policy apply: the max_age values were not read (%s); the file's other mistakes follow\n",
				a.redactor().Redact(err.Error()))
			return shapeErr
		}
		return err
	}
	defer pool.Close()
	defer ps.close()
	// The database reads the intervals: every mistake of the file, of its shape and of its
	// values, is reported at once.
	f, err := checkPolicyFile(ctx, pool, o.file, raw)
	if err != nil {
		return err
	}
	var refused string
	p, err := store.ApplyPolicies(ctx, f, ps.options(source.ApplyOptions{Actor: o.actor, Reason: o.reason, Due: due,
		Commit: func(p *policyplan.Plan) (bool, error) {
			if o.dryRun {
				return false, nil
			}
			refused = o.refusal(p)
			return refused == "", nil
		}}))
	if err != nil {
		var list policyfile.ErrorList
		if asErrorList(err, &list) {
			return fileError(o.file, list)
		}
		return err
	}
	applied := !o.dryRun && refused == "" && len(p.Changes) > 0
	if err := writePlan(a.stdout, o.plan, p, true, applied); err != nil {
		return err
	}
	if refused != "" {
		return cli.Exit(exitcode.Aborted, fmt.Errorf("%s", refused))
	}
	return nil
}
