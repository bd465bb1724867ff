package main

import (
	"context"
	"encoding/json"
	"regexp"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/cmd/retention/exitcode"
)

var headLine = regexp.MustCompile(`(?m)^head (\d+:[0-9a-f]{64})$`)

func TestAuditVerifyCommand(t *testing.T) {
	t.Parallel()
	b, eligible := reportAfterRun(t)

	r := b.run(t, "audit", "verify")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Contains(t, r.stdout, "intact: "+strconv.Itoa(len(eligible))+" sealed outcome(s), none edited, removed or inserted")
	m := headLine.FindStringSubmatch(r.stdout)
	require.NotNil(t, m, r.stdout)
	head := m[1]

	// The head noted down is confirmed later, as a flag or from the environment.
	r = b.run(t, "audit", "verify", "--checkpoint", head)
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	r = run(t, with(b.env, "RETENTION_AUDIT_CHECKPOINT", head), "audit", "verify", "--format", "json")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	var res struct {
		Sealed   int    `json:"sealed"`
		HeadSeq  int    `json:"head_seq"`
		HeadHash string `json:"head_hash"`
		Problems []any  `json:"problems"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &res))
	require.Equal(t, len(eligible), res.Sealed)
	require.Equal(t, head, strconv.Itoa(res.HeadSeq)+":"+res.HeadHash)
	require.Empty(t, res.Problems)

	// Someone with superuser rights tidies up a record behind the guards' back.
	ctx := context.Background()
	require.NoError(t, pgx.BeginFunc(ctx, b.db.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL session_replication_role = replica`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE retention.deletions SET session_id = 'renamed'
			WHERE id = (SELECT deletion_id FROM retention.seals WHERE seq = 2)`)
		return err
	}))
	r = b.run(t, "audit", "verify")
	require.Equal(t, exitcode.Partial, r.code, "%s", r)
	require.Regexp(t, `(?m)^BROKEN: 1 problem\(s\) in \d+ sealed outcome\(s\)$`, r.stdout)
	require.Regexp(t, `(?m)^  edited: seal 2 \(deletion \d+\): the deletion row was edited`, r.stdout)
	require.Contains(t, r.stderr, "retention: the seal chain is broken: 1 problem(s), the first at seal 2")

	// Bad input is a usage error.
	for _, args := range [][]string{
		{"audit"}, {"audit", "check"}, {"audit", "verify", "--checkpoint", "12"}, {"audit", "verify", "--format", "xml"},
	} {
		r = b.run(t, args...)
		require.Equal(t, exitcode.Usage, r.code, "%v: %s", args, r)
	}
	r = b.run(t, "audit", "verify", "--help")
	require.Equal(t, exitcode.OK, r.code)
	require.Contains(t, r.stdout, "--checkpoint")
}
