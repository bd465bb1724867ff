package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/cmd/retention/exitcode"
	"github.com/convai-retention/retention/job"
)

// A run that stopped before its end selected less than estimated because it stopped: its text
// summary does not explain the difference as a count made while the run was deleting.
func TestEstimateLineOnlyForRunsThatWentToTheirEnd(t *testing.T) {
	t.Parallel()
	est := int64(240)
	for _, c := range []struct {
		status job.Status
		line   bool
	}{
		{job.StatusSucceeded, true},
		{job.StatusPartial, true},
		{job.StatusFailed, false},
		{job.StatusInterrupted, false},
		{job.StatusAborted, false},
	} {
		var b strings.Builder
		require.NoError(t, writeSummary(&b, "text", &job.Summary{RunID: 5, Status: c.status, Selected: 100, Deleted: 90, Failed: 10,
			NotSent: 0, EstimatedTotal: &est}))
		require.Equal(t, c.line, strings.Contains(b.String(), "where the progress estimated"), "%s:\n%s", c.status, b.String())
	}
}

// A capped run's estimate is the cap's count with the sessions erasure requests ask for, which
// the cap leaves out and the run sends all the same: a run with an erasure request selects
// what it estimated, and says nothing about a difference.
func TestSafetyCapEstimateCountsErasureRequests(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seedWorld(t)
	// c-off's policy is disabled: only the request selects its two sessions.
	r := b.run(t, "erase", "--character", "c-off", "--reason", "ticket 51")
	require.Equal(t, exitcode.OK, r.code, r)

	env := with(b.env, "RETENTION_ABORT_ABOVE", "100")
	r = run(t, env, "run", "--format", "json")
	require.Equal(t, exitcode.OK, r.code, r)
	var sum struct {
		Selected       int64 `json:"selected"`
		EstimatedTotal int64 `json:"estimated_total"`
		Cap            struct {
			WouldSend       int64 `json:"would_send"`
			ErasureSessions int64 `json:"erasure_sessions"`
		} `json:"safety_cap"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &sum), r.stdout)
	require.Equal(t, int64(2), sum.Cap.ErasureSessions, r.stdout)
	require.Equal(t, int64(10), sum.Selected, r.stdout)
	require.Equal(t, sum.Selected, sum.EstimatedTotal, r.stdout)
	require.Contains(t, r.stderr, `"msg":"estimated the sessions this run will send","total":10,"from":"safety cap count"`)
}
