package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/convai-retention/retention/audit"
	"github.com/convai-retention/retention/cmd/retention/exitcode"
	"github.com/convai-retention/retention/internal/cli"
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

// files is a repeatable flag naming files.
type files []string

func (f *files) String() string     { return strings.Join(*f, ",") }
func (f *files) Set(v string) error { *f = append(*f, v); return nil }

const auditUsage = `usage: retention audit verify [--checkpoint SEQ:HASH]... [--checkpoint-file FILE]... [--key VKEY_FILE]... [--format text|json]
       retention audit prove --character C --session S [--out FILE]
       retention audit prove --end-user U [--character C] [--out FILE]
       retention audit check --proof FILE --key VKEY_FILE...
       retention audit keygen --out SKEY_FILE

prove --end-user proves the end user's last memory erasure with character C (without
--character: of their record); it refuses one that does not say erased, that a verification has
found memory again after, or that waits for the next seal.

check proves a deletion (or a memory erasure) only against a checkpoint whose signature --key
verifies: exit 0 proven, 1 not proven (the leaf is not in the tree, the signature does not
verify, the leaf does not record the session deleted or the memory erased), 2 for bad usage or
UNVERIFIED (no --key: a proof without a checked signature proves nothing, whatever it holds).
`

// audit runs the subcommands of "retention audit": verify checks the results trail (the v1
// chain and the v2 log) and exits 1 when something was edited, removed or inserted; prove prints
// the inclusion proof of one session's deletion or of an end user's memory erasure; check verifies such a proof with no database;
// keygen makes a checkpoint signing key.
func (a *app) audit(ctx context.Context, args []string) error {
	return dispatch(ctx, "audit", auditUsage, []subcommand{
		{"verify", a.auditVerify},
		{"prove", a.auditProve},
		{"check", func(_ context.Context, args []string) error { return a.auditCheck(args) }},
		{"keygen", func(_ context.Context, args []string) error { return a.auditKeygen(args) }},
	}, args)
}

// auditHelp prints the usage of "retention audit" and the flags of every subcommand.
func auditHelp(w io.Writer) {
	fmt.Fprint(w, auditUsage)
	for _, fs := range []*flagSet{
		(&auditVerifyOptions{}).table().flagSet("audit verify"),
		(&auditProveOptions{}).table().flagSet("audit prove"),
		(&auditCheckOptions{}).table().flagSet("audit check"),
		(&auditKeygenOptions{}).table().flagSet("audit keygen"),
	} {
		fmt.Fprintf(w, "\nflags of %s:\n", fs.Name())
		fs.usage(w)
	}
}

// parseAudit parses an audit subcommand's flags; done is true when help was printed: the usage,
// the subcommand's flags, the environment and the exit codes.
func (a *app) parseAudit(fs *flagSet, args []string) (done bool, err error) {
	if err := fs.parse(args, a.getenv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(a.stdout, "%s\nflags of %s:\n", auditUsage, fs.Name())
			fs.usage(a.stdout)
			fmt.Fprint(a.stdout, "\n"+helpFooter)
			return true, nil
		}
		return false, err
	}
	return false, nil
}

// auditPool connects, with one connection, to the database of DATABASE_URL, which must be at
// the current schema.
func (a *app) auditPool(ctx context.Context) (*pgxpool.Pool, error) {
	dsn, err := a.databaseURL()
	if err != nil {
		return nil, err
	}
	return connectCurrent(ctx, dsn, 1)
}

// readKeys reads verifier key files.
func readKeys(paths []string) ([]string, error) {
	var keys []string
	for _, p := range paths {
		k, err := readKeyFile("--key", p)
		if err != nil {
			return nil, err
		}
		keys = append(keys, strings.TrimSpace(k))
	}
	return keys, nil
}

// auditVerifyOptions is the parsed command line of "retention audit verify".
type auditVerifyOptions struct {
	cps               checkpoints
	cpFiles, keyFiles files
	format            string
}

// table is the flag table of audit verify. Its --format is text or json, read from no
// variable, with no former name.
func (o *auditVerifyOptions) table() options {
	return options{
		{name: "checkpoint", env: []string{"RETENTION_AUDIT_CHECKPOINT"}, value: &o.cps,
			help: "a v1 chain head noted from an earlier verify, SEQ:HASH, that must still be in the chain (repeatable)"},
		{name: "checkpoint-file", env: noEnv, value: &o.cpFiles,
			help: "a signed checkpoint of the log kept outside the database (a run's RETENTION_CHECKPOINT_DIR/latest.note): the log must extend it (repeatable)"},
		{name: "key", env: noEnv, value: &o.keyFiles,
			help: "a file holding a verifier key of the checkpoints (retention audit keygen prints it) (repeatable)"},
		{name: "format", env: noEnv, value: &o.format, def: "text", choices: textFormats, help: "text or json"},
	}
}

func (a *app) auditVerify(ctx context.Context, args []string) error {
	var o auditVerifyOptions
	if done, err := a.parseAudit(o.table().flagSet("audit verify"), args); done || err != nil {
		return err
	}
	keys, err := readKeys(o.keyFiles)
	if err != nil {
		return err
	}
	var signed [][]byte
	for _, f := range o.cpFiles {
		b, err := readKeyFile("--checkpoint-file", f)
		if err != nil {
			return err
		}
		signed = append(signed, []byte(b))
	}
	if len(signed) > 0 && len(keys) == 0 {
		return usagef("--checkpoint-file needs --key: a signed checkpoint is only worth its signature")
	}
	pool, err := a.auditPool(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	res, err := audit.Verify(ctx, pool, audit.Options{Checkpoints: o.cps, SignedCheckpoints: signed, VerifierKeys: keys})
	if err != nil {
		return err
	}
	if o.format == "json" {
		if err := writeJSON(a.stdout, res); err != nil {
			return err
		}
	} else if err := writeVerify(a.stdout, res); err != nil {
		return err
	}
	return res.Err()
}

// auditProveOptions is the parsed command line of "retention audit prove".
type auditProveOptions struct{ character, session, endUser, out string }

func (o *auditProveOptions) table() options {
	return options{
		{name: "character", env: noEnv, value: &o.character, def: "",
			help: "the session's character ID; with --end-user, the character whose memory erasure to prove"},
		{name: "session", env: noEnv, value: &o.session, def: "", help: "the session ID"},
		{name: "end-user", env: noEnv, value: &o.endUser, def: "",
			help: "prove the end user's last memory erasure with --character, or of their record (without); it must say erased and stand"},
		{name: "out", env: noEnv, value: &o.out, def: "", help: "write the proof to this file instead of stdout"},
	}
}

func (a *app) auditProve(ctx context.Context, args []string) error {
	var o auditProveOptions
	if done, err := a.parseAudit(o.table().flagSet("audit prove"), args); done || err != nil {
		return err
	}
	char, sess, endUser, out := o.character, o.session, o.endUser, o.out
	switch {
	case endUser != "" && sess != "":
		return usagef("audit prove: give --session (a session's deletion) or --end-user (a memory erasure), not both")
	case endUser == "" && (char == "" || sess == ""):
		return usagef("audit prove: --character and --session are required (or --end-user for a memory erasure)")
	}
	pool, err := a.auditPool(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	var p *audit.Proof
	if endUser != "" {
		p, err = audit.ProveMemoryErasure(ctx, pool, endUser, char)
	} else {
		p, err = audit.Prove(ctx, pool, char, sess)
	}
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if out != "" {
		return writeFileAtomic(out, b)
	}
	_, err = a.stdout.Write(b)
	return err
}

// auditCheckOptions is the parsed command line of "retention audit check".
type auditCheckOptions struct {
	proof string
	keys  files
}

func (o *auditCheckOptions) table() options {
	return options{
		{name: "proof", env: noEnv, value: &o.proof, def: "", help: "the proof, as retention audit prove wrote it"},
		{name: "key", env: noEnv, value: &o.keys,
			help: "a file holding the checkpoints' verifier key (repeatable); without it the answer is UNVERIFIED, exit 2"},
	}
}

func (a *app) auditCheck(args []string) error {
	var o auditCheckOptions
	if done, err := a.parseAudit(o.table().flagSet("audit check"), args); done || err != nil {
		return err
	}
	proofFile, keyFiles := o.proof, o.keys
	if proofFile == "" {
		return usagef("audit check: --proof is required")
	}
	keys, err := readKeys(keyFiles)
	if err != nil {
		return err
	}
	raw, err := readFile("--proof", proofFile, maxProofFile)
	if err != nil {
		return err
	}
	var p audit.Proof
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return usagef("--proof %s: not a proof: %v", proofFile, err)
	}
	if p.EndUserID != "" {
		return a.auditCheckMemory(&p, keys)
	}
	if len(keys) == 0 {
		// Without a verifier key the tree is the proof's own word: anyone can make a log of one
		// leaf whose root is that leaf. Check that the proof holds together, and prove nothing.
		unsigned := p
		unsigned.Checkpoint = ""
		s, err := audit.Check(&unsigned)
		if err != nil {
			return fmt.Errorf("%w: %v", audit.ErrChainBroken, err)
		}
		fmt.Fprintf(a.stdout, "UNVERIFIED: session %q of character %q is recorded %s in the tree this proof names (leaf %d of %d), "+
			"but no checkpoint signature was checked, so it proves nothing; give --key with the verifier key (retention audit keygen printed it)\n",
			s.SessionID, s.CharacterID, s.Status, p.LeafIndex, p.TreeSize)
		return cli.Exit(exitcode.Usage, nil)
	}
	s, err := audit.Check(&p, keys...)
	if err != nil {
		return fmt.Errorf("%w: %v", audit.ErrChainBroken, err)
	}
	fmt.Fprintf(a.stdout, "proven: session %q of character %q is recorded %s (run %s, claim %s, completed at %s µs since 1970 UTC), leaf %d of a log of %d\n",
		s.SessionID, s.CharacterID, s.Status, s.RunID, s.ClaimID, s.CompletedAtMicros, p.LeafIndex, p.TreeSize)
	return nil
}

// auditCheckMemory checks the proof of a memory erasure, as auditCheck does a session's.
func (a *app) auditCheckMemory(p *audit.Proof, keys []string) error {
	what := func(m audit.LeafMemoryErasure) string {
		if m.CharacterID == "" {
			return fmt.Sprintf("the record of end user %q", m.EndUserID)
		}
		return fmt.Sprintf("the memory of end user %q with character %q", m.EndUserID, m.CharacterID)
	}
	if len(keys) == 0 {
		unsigned := *p
		unsigned.Checkpoint = ""
		m, err := audit.CheckMemoryErasure(&unsigned)
		if err != nil {
			return fmt.Errorf("%w: %v", audit.ErrChainBroken, err)
		}
		fmt.Fprintf(a.stdout, "UNVERIFIED: %s is recorded %s in the tree this proof names (leaf %d of %d), "+
			"but no checkpoint signature was checked, so it proves nothing; give --key with the verifier key (retention audit keygen printed it)\n",
			what(m), m.Status, p.LeafIndex, p.TreeSize)
		return cli.Exit(exitcode.Usage, nil)
	}
	m, err := audit.CheckMemoryErasure(p, keys...)
	if err != nil {
		return fmt.Errorf("%w: %v", audit.ErrChainBroken, err)
	}
	fmt.Fprintf(a.stdout, "proven: %s is recorded %s (run %s, end user request %s, memory erasure %s, completed at %s µs since 1970 UTC), leaf %d of a log of %d\n",
		what(m), m.Status, m.RunID, m.RequestID, m.ID, m.CompletedAtMicros, p.LeafIndex, p.TreeSize)
	return nil
}

// auditKeygenOptions is the parsed command line of "retention audit keygen".
type auditKeygenOptions struct{ out string }

func (o *auditKeygenOptions) table() options {
	return options{
		{name: "out", env: noEnv, value: &o.out, def: "",
			help: "write the signing key to this new file (mode 0600); the verifier key goes to stdout"},
	}
}

func (a *app) auditKeygen(args []string) error {
	var o auditKeygenOptions
	if done, err := a.parseAudit(o.table().flagSet("audit keygen"), args); done || err != nil {
		return err
	}
	out := o.out
	if out == "" {
		return usagef("audit keygen: --out is required (the signing key is a secret: it never goes to stdout)")
	}
	skey, vkey, err := audit.GenerateKey()
	if err != nil {
		return err
	}
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return usagef("--out: %v", err)
	}
	if _, err := f.WriteString(skey + "\n"); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintln(a.stdout, vkey)
	return nil
}

func writeVerify(w io.Writer, res *audit.Result) error {
	var b strings.Builder
	if res.Intact() {
		fmt.Fprintf(&b, "intact: %d sealed v1 outcome(s), %d log leaves and %d verification batch(es), none edited, removed or inserted\n",
			res.Sealed, res.Log.Leaves, res.Verifications.Batches)
	} else {
		fmt.Fprintf(&b, "BROKEN: %d problem(s) in %d sealed outcome(s)\n", res.ProblemCount, res.Sealed)
		for _, p := range res.Problems {
			fmt.Fprintf(&b, "  %s: %s\n", p.Kind, p)
		}
		if n := res.ProblemCount - int64(len(res.Problems)); n > 0 {
			fmt.Fprintf(&b, "  ... and %d more\n", n)
		}
	}
	fmt.Fprintf(&b, "log  %d leaves, root %s; %d checkpoint(s) checked; %d record(s) waiting for the next seal; %d of the leaves record memory erasures and deletions\n",
		res.Log.Leaves, res.Log.Root, res.Log.Checkpoints, res.Log.Queued, res.Log.MemoryLeaves)
	fmt.Fprintf(&b, "head %s (v1 chain)\n", res.Head)
	fmt.Fprintf(&b, "verifications %d in %d batch(es), chain head %d:%s\n", res.Verifications.Verifications,
		res.Verifications.Batches, res.Verifications.HeadSeq, res.Verifications.HeadHash)
	if res.Intact() && res.Head.Seq > 0 {
		fmt.Fprintf(&b, "note the head down: a later \"retention audit verify --checkpoint %s\" proves nothing up to it changed\n", res.Head)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
