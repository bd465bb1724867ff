package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/audit"
	"github.com/convai-retention/retention/cmd/retention/exitcode"
)

func TestAuditVerifyCommand(t *testing.T) {
	t.Parallel()
	b, eligible := reportAfterRun(t)
	dir := t.TempDir()

	// A signing key: the secret half to a 0600 file, the verifier key on stdout.
	skey := filepath.Join(dir, "checkpoint.key")
	r := b.run(t, "audit", "keygen", "--out", skey)
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	vkey := filepath.Join(dir, "checkpoint.vkey")
	require.NoError(t, os.WriteFile(vkey, []byte(r.stdout), 0o644))
	st, err := os.Stat(skey)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	secret, err := os.ReadFile(skey)
	require.NoError(t, err)
	require.NotContains(t, r.stdout, strings.TrimSpace(string(secret)))

	// A run with the key signs its checkpoint and writes it outside the database.
	cps := filepath.Join(dir, "checkpoints")
	require.NoError(t, os.Mkdir(cps, 0o755))
	env := with(with(b.env, "RETENTION_CHECKPOINT_KEY_FILE", skey), "RETENTION_CHECKPOINT_DIR", cps)
	r = run(t, env, "run")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Regexp(t, `(?m)^results log: \d+ leaves, root [0-9a-f]{64} \(signed\)$`, r.stdout)
	latest := filepath.Join(cps, "latest.note")
	note, err := os.ReadFile(latest)
	require.NoError(t, err)
	require.Contains(t, string(note), "\n— "+audit.KeyName+" ")
	require.NotContains(t, r.stderr+r.stdout, strings.TrimSpace(string(secret)))

	r = b.run(t, "audit", "verify", "--checkpoint-file", latest, "--key", vkey)
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Regexp(t, `(?m)^intact: 0 sealed v1 outcome\(s\), \d+ log leaves and \d+ verification batch\(es\), none edited, removed or inserted$`, r.stdout)
	require.Regexp(t, `(?m)^log  \d+ leaves, root [0-9a-f]{64}; 3 checkpoint\(s\) checked; 0 record\(s\) waiting for the next seal; 0 of the leaves record memory`, r.stdout,
		"both runs' checkpoints and the file")
	r = b.run(t, "audit", "verify", "--format", "json")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	var res struct {
		Sealed   int   `json:"sealed"`
		Problems []any `json:"problems"`
		Log      struct {
			Leaves int `json:"leaves"`
		} `json:"log"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &res))
	require.Zero(t, res.Sealed)
	require.Positive(t, res.Log.Leaves)
	require.Empty(t, res.Problems)

	// One session's deletion, proven and checked offline against the signed checkpoint.
	var char, sess string
	require.NoError(t, b.db.Pool.QueryRow(context.Background(),
		`SELECT character_id, session_id FROM retention.outcomes WHERE status = 'deleted' LIMIT 1`).Scan(&char, &sess))
	proof := filepath.Join(dir, "proof.json")
	r = b.run(t, "audit", "prove", "--character", char, "--session", sess, "--out", proof)
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	r = run(t, nil, "audit", "check", "--proof", proof, "--key", vkey)
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Contains(t, r.stdout, fmt.Sprintf("proven: session %q of character %q is recorded deleted", sess, char))
	other := filepath.Join(dir, "other.key")
	r = b.run(t, "audit", "keygen", "--out", other)
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	otherV := filepath.Join(dir, "other.vkey")
	require.NoError(t, os.WriteFile(otherV, []byte(r.stdout), 0o644))
	r = run(t, nil, "audit", "check", "--proof", proof, "--key", otherV)
	require.Equal(t, exitcode.Partial, r.code, "another key does not verify the checkpoint: %s", r)

	// Someone with superuser rights tidies up a record behind the guards' back, and rebuilds
	// the log's hashes and head to match: the rows and the signed checkpoint outside disagree.
	ctx := context.Background()
	require.NoError(t, pgx.BeginFunc(ctx, b.db.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL session_replication_role = replica`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE retention.outcomes SET status = 'failed' WHERE character_id = $1 AND session_id = $2`, char, sess)
		return err
	}))
	r = b.run(t, "audit", "verify")
	require.Equal(t, exitcode.Partial, r.code, "%s", r)
	require.Regexp(t, `(?m)^BROKEN: \d+ problem\(s\)`, r.stdout)
	require.Regexp(t, `(?m)^  leaf_edited: seal \d+ \(deletion \d+\): claim \d+ .* or its outcomes were edited`, r.stdout)
	r = run(t, nil, "audit", "check", "--proof", proof, "--key", vkey)
	require.Equal(t, exitcode.OK, r.code, "the proof taken before still checks: it is the evidence of what was recorded: %s", r)
	_ = eligible

	// Bad input is a usage error.
	for _, args := range [][]string{
		{"audit"}, {"audit", "check"}, {"audit", "nope"}, {"audit", "verify", "--checkpoint", "12"}, {"audit", "verify", "--format", "xml"},
		{"audit", "verify", "--checkpoint-file", latest}, {"audit", "verify", "--key", "/dev/zero"},
		{"audit", "prove", "--character", char}, {"audit", "keygen"}, {"audit", "keygen", "--out", skey},
		{"audit", "check", "--proof", vkey},
	} {
		r = b.run(t, args...)
		require.Equal(t, exitcode.Usage, r.code, "%v: %s", args, r)
	}
	r = b.run(t, "audit", "verify", "--help")
	require.Equal(t, exitcode.OK, r.code)
	require.Contains(t, r.stdout, "--checkpoint-file")
}
