package main

import (
	"flag"
	"maps"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestAuditAndPolicyKeepTheirFlags: moving audit verify, plan and policy apply onto the option
// table changed no flag's name, default or variable.
func TestAuditAndPolicyKeepTheirFlags(t *testing.T) {
	t.Parallel()
	caps := map[string]string{"source": "retention.sessions RETENTION_SOURCE", "format": "text", "output": "text",
		"abort-above": "0 RETENTION_ABORT_ABOVE", "abort-above-percent": "0 RETENTION_ABORT_ABOVE_PERCENT"}
	apply, plan := maps.Clone(caps), maps.Clone(caps)
	maps.Copy(apply, map[string]string{"f": "", "dry-run": "false", "confirm": "", "actor": "RETENTION_ACTOR", "reason": "",
		"max-due-share": "10 RETENTION_MAX_DUE_SHARE"})
	plan["max-deletions"] = "0 RETENTION_MAX_DELETIONS"
	var ao applyOptions
	var po planOptions
	var budget int64
	var vo auditVerifyOptions
	for name, tt := range map[string]struct {
		fs   *flagSet
		want map[string]string // flag -> "default variables"
	}{
		"policy apply": {applyFlags(&ao), apply},
		"plan":         {planFlags(&po, &budget), plan},
		"audit verify": {vo.table().flagSet("audit verify"),
			map[string]string{"checkpoint": "RETENTION_AUDIT_CHECKPOINT", "checkpoint-file": "", "key": "", "format": "text"}},
	} {
		got := map[string]string{}
		tt.fs.VisitAll(func(f *flag.Flag) { got[f.Name] = strings.TrimSpace(f.DefValue + " " + tt.fs.env[f.Name]) })
		require.Equal(t, tt.want, got, name)
	}
}
