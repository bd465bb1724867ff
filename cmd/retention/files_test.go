package main

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/audit"
	"github.com/convai-retention/retention/cmd/retention/exitcode"
)

// TestInputFilesReadWithLimits: every file the job reads besides the secret files (the
// checkpoint signing key, audit's verifier keys, signed checkpoints and proofs, policy files) is
// refused at once with exit 2 and a message naming the file and the reason when it is a FIFO
// (whose open would wait for a writer for ever), a device such as /dev/zero (endless), a
// directory, or bigger than its bound.
func TestInputFilesReadWithLimits(t *testing.T) {
	t.Parallel()
	b := setup(t)
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	_, vkey, err := audit.GenerateKey()
	require.NoError(t, err)
	vkeyFile := filepath.Join(dir, "vkey")
	require.NoError(t, os.WriteFile(vkeyFile, []byte(vkey+"\n"), 0o600))
	proof := filepath.Join(dir, "proof.json")
	require.NoError(t, os.WriteFile(proof, []byte(`{}`), 0o600))
	bigPolicy := filepath.Join(dir, "big.yaml") // sparse: costs nothing on disk
	require.NoError(t, os.WriteFile(bigPolicy, nil, 0o600))
	require.NoError(t, os.Truncate(bigPolicy, maxPolicyFile+1))
	bigKey := filepath.Join(dir, "big.key")
	require.NoError(t, os.WriteFile(bigKey, nil, 0o600))
	require.NoError(t, os.Truncate(bigKey, 1<<30))

	type bad struct{ path, reason string }
	bads := []bad{{fifo, "not a regular file (a FIFO)"}, {"/dev/zero", "not a regular file (a character device)"},
		{dir, "not a regular file (a directory)"}}
	for _, tt := range []struct {
		name  string
		env   map[string]string
		args  func(path string) []string
		where string // the message's start, before the path
		extra []bad
	}{
		{"RETENTION_CHECKPOINT_KEY_FILE", nil, nil, "RETENTION_CHECKPOINT_KEY_FILE: ",
			[]bad{{bigKey, "larger than 4096 bytes"}}},
		{"audit verify --key", nil, func(p string) []string { return []string{"audit", "verify", "--key", p} }, "--key: ",
			[]bad{{bigKey, "larger than 4096 bytes"}}},
		{"audit verify --checkpoint-file", nil, func(p string) []string {
			return []string{"audit", "verify", "--key", vkeyFile, "--checkpoint-file", p}
		}, "--checkpoint-file: ", []bad{{bigKey, "larger than 4096 bytes"}}},
		{"audit check --key", nil, func(p string) []string {
			return []string{"audit", "check", "--proof", proof, "--key", p}
		}, "--key: ", nil},
		{"audit check --proof", nil, func(p string) []string {
			return []string{"audit", "check", "--proof", p, "--key", vkeyFile}
		}, "--proof: ", []bad{{bigKey, "larger than 16777216 bytes"}}},
		{"policy apply -f", nil, func(p string) []string { return []string{"policy", "apply", "-f", p} }, "policy apply -f: ",
			[]bad{{bigPolicy, "larger than 4194304 bytes"}}},
	} {
		for _, f := range append(bads, tt.extra...) {
			t.Run(tt.name+"/"+filepath.Base(f.path), func(t *testing.T) {
				t.Parallel()
				env, args := b.env, []string{"run"}
				if tt.args != nil {
					args = tt.args(f.path)
				} else {
					env = with(b.env, "RETENTION_CHECKPOINT_KEY_FILE", f.path)
				}
				r := runWithin(t, time.Minute, env, args...) // a hang guard: the read must not wait at all
				require.Equal(t, exitcode.Usage, r.code, "%s", r)
				require.Contains(t, r.stderr, tt.where+f.path+": "+f.reason, "%s", r)
			})
		}
	}
}
