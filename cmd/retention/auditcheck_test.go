package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/convai-retention/retention/audit"
	"github.com/convai-retention/retention/cmd/retention/exitcode"
)

// TestAuditCheckWithoutKeyIsUnverified: a proof is proven only against a checkpoint whose
// signature was checked. Without --key, audit check says UNVERIFIED and exits 2, even for a
// proof that is consistent in itself, such as a made-up one-leaf log whose root is its own leaf.
func TestAuditCheckWithoutKeyIsUnverified(t *testing.T) {
	t.Parallel()
	b, _ := reportAfterRun(t)
	dir := t.TempDir()
	skey := filepath.Join(dir, "checkpoint.key")
	r := b.run(t, "audit", "keygen", "--out", skey)
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	vkey := filepath.Join(dir, "checkpoint.vkey")
	require.NoError(t, os.WriteFile(vkey, []byte(r.stdout), 0o644))
	r = run(t, with(b.env, "RETENTION_CHECKPOINT_KEY_FILE", skey), "run")
	require.Equal(t, exitcode.OK, r.code, "%s", r)

	var char, sess string
	require.NoError(t, b.db.Pool.QueryRow(context.Background(),
		`SELECT character_id, session_id FROM retention.outcomes WHERE status = 'deleted' LIMIT 1`).Scan(&char, &sess))
	proof := filepath.Join(dir, "proof.json")
	r = b.run(t, "audit", "prove", "--character", char, "--session", sess, "--out", proof)
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	r = run(t, nil, "audit", "check", "--proof", proof, "--key", vkey)
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Contains(t, r.stdout, "proven: ")

	// The real proof without the key: consistent, but nothing checked its checkpoint.
	r = run(t, nil, "audit", "check", "--proof", proof)
	require.Equal(t, exitcode.Usage, r.code, "%s", r)
	require.Contains(t, r.stdout, "UNVERIFIED: ")
	require.NotContains(t, r.stdout, "proven:")

	// A made-up log of one leaf: the leaf is its own root, no checkpoint.
	raw, err := os.ReadFile(proof)
	require.NoError(t, err)
	var p audit.Proof
	require.NoError(t, json.Unmarshal(raw, &p))
	p.LeafIndex, p.TreeSize, p.Hashes, p.Checkpoint = 0, 1, nil, ""
	p.TreeRoot = tlog.RecordHash(p.Leaf)
	fake := filepath.Join(dir, "fake.json")
	raw, err = json.Marshal(p)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(fake, raw, 0o644))

	r = run(t, nil, "audit", "check", "--proof", fake)
	require.Equal(t, exitcode.Usage, r.code, "%s", r)
	require.Contains(t, r.stdout, "UNVERIFIED: ")
	require.NotContains(t, r.stdout, "proven:")
	r = run(t, nil, "audit", "check", "--proof", fake, "--key", vkey)
	require.Equal(t, exitcode.Partial, r.code, "no signed checkpoint to check the key against: %s", r)
	require.NotContains(t, r.stdout, "proven:")

	// A proof that is not even consistent without the key is not proven either, and says why.
	p.TreeRoot = tlog.Hash{1}
	raw, err = json.Marshal(p)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(fake, raw, 0o644))
	r = run(t, nil, "audit", "check", "--proof", fake)
	require.Equal(t, exitcode.Partial, r.code, "%s", r)
	require.Contains(t, r.stderr, "not in the tree")
}
