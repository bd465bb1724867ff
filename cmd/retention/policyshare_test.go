package main

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/cmd/retention/exitcode"
)

// TestPolicyApplyShareCap: with no cap flag at all, a change that makes more than 10% of the
// source's sessions newly due is refused (exit 6, nothing changed) unless --confirm gives the
// plan's count of newly due sessions; a wrong count is refused too. --max-due-share moves the
// line.
func TestPolicyApplyShareCap(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seedWorld(t) // 16 sessions
	before := b.policies(t)

	// One default of 1 day: c-def's 2 new, c-own's 1 new and c-off's 2 become due: 5 of 16.
	wide := writeFile(t, "default:\n  max_age: 1 day\n")
	r := b.run(t, "policy", "apply", "-f", wide)
	require.Equal(t, exitcode.Aborted, r.code, "%s", r)
	require.Contains(t, r.stdout, "new deletions due now: 5 (ABOVE the safety cap of 1)")
	require.Contains(t, r.stderr, "5 more sessions due now (31% of the source's 16)")
	require.Contains(t, r.stderr, "give --confirm 5 to apply")
	require.Equal(t, before, b.policies(t))

	r = b.run(t, "policy", "apply", "-f", wide, "--confirm", "4")
	require.Equal(t, exitcode.Aborted, r.code, "%s", r)
	require.Contains(t, r.stderr, "--confirm 4 does not match the plan: the changes make 5 sessions newly due")
	require.Equal(t, before, b.policies(t))

	r = b.run(t, "policy", "apply", "-f", wide, "--max-due-share", "40", "--dry-run")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Contains(t, r.stdout, "new deletions due now: 5 (within the safety cap of 6)")

	// c-own 2 days: its 3-day-old session becomes due, 1 of 16: within 10%, no flag needed.
	narrow := writeFile(t, "default:\n  max_age: 30 days\ncharacters:\n  c-own:\n    max_age: 2 days\n  c-off:\n    max_age: 1 day\n    enabled: false\n")
	r = b.run(t, "policy", "apply", "-f", narrow)
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Contains(t, r.stdout, "applied")

	// The workflow: read the count from a dry-run, apply with it.
	r = b.run(t, "policy", "apply", "-f", wide, "--dry-run", "--output", "json")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	var plan struct {
		NewDeletions int64 `json:"new_deletions"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &plan))
	require.EqualValues(t, 4, plan.NewDeletions)
	r = b.run(t, "policy", "apply", "-f", wide, "--confirm", fmt.Sprint(plan.NewDeletions))
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Equal(t, []string{"(default)=1 day"}, b.policies(t))

	for _, args := range [][]string{{"--max-due-share", "101"}, {"--max-due-share", "-1"}, {"--max-due-share", "NaN"},
		{"--confirm"}, {"--confirm", "-2"}, {"--confirm", "--dry-run"}} {
		r = b.run(t, append([]string{"policy", "apply", "-f", wide}, args...)...)
		require.Equal(t, exitcode.Usage, r.code, "%v: %s", args, r)
	}

	r = b.run(t, "policy", "--help")
	require.Equal(t, exitcode.OK, r.code, "%s", r)
	require.Contains(t, r.stdout, "--max-due-share")
	require.Contains(t, r.stdout, "--confirm N")
}
