package job_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/job"
)

func TestSummaryReported(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name       string
		in         job.Summary
		status     job.Status
		budgetSaid bool
	}{
		{"a dry-run says so", job.Summary{DryRun: true, Status: job.StatusSucceeded, BudgetReached: true}, job.StatusDryRun, true},
		{"a failed dry-run failed", job.Summary{DryRun: true, Status: job.StatusFailed, BudgetReached: true}, job.StatusFailed, false},
		{"a run that sent its selection", job.Summary{Status: job.StatusSucceeded, BudgetReached: true}, job.StatusSucceeded, true},
		{"a partial run", job.Summary{Status: job.StatusPartial, BudgetReached: true}, job.StatusPartial, true},
		{"a key refused: the run stopped, not the budget", job.Summary{Status: job.StatusFailed, BudgetReached: true}, job.StatusFailed, false},
		{"a signal", job.Summary{Status: job.StatusInterrupted, BudgetReached: true}, job.StatusInterrupted, false},
		{"the safety cap", job.Summary{Status: job.StatusAborted, BudgetReached: true}, job.StatusAborted, false},
		{"an unfinished row", job.Summary{Status: job.StatusRunning, BudgetReached: true}, job.StatusRunning, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			in := c.in
			got := in.Reported()
			require.Equal(t, c.status, got.Status)
			require.Equal(t, c.budgetSaid, got.BudgetReached)
			require.Equal(t, c.in, in, "the summary itself is not changed")
		})
	}
}
