package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/job"
)

// The text summary says when the run selected another number than the progress estimated, and
// an aborted run says what its policies would have sent, not "0 selected".
func TestSummaryTextIsTruthful(t *testing.T) {
	t.Parallel()
	est := int64(192)
	var b strings.Builder
	require.NoError(t, writeSummary(&b, "text", &job.Summary{RunID: 3, Status: job.StatusSucceeded, Selected: 240, Deleted: 240,
		EstimatedTotal: &est}))
	require.Contains(t, b.String(), "selected 240 sessions where the progress estimated 192")

	same := int64(240)
	b.Reset()
	require.NoError(t, writeSummary(&b, "text", &job.Summary{RunID: 3, Status: job.StatusSucceeded, Selected: 240, Deleted: 240,
		EstimatedTotal: &same}))
	require.NotContains(t, b.String(), "estimated")

	b.Reset()
	require.NoError(t, writeSummary(&b, "text", &job.Summary{RunID: 4, Status: job.StatusAborted, EstimatedTotal: &est,
		Cap: &job.CapCheck{WouldSend: 1000, Limit: 500, AbortAbove: 500, Aborted: true}}))
	require.Contains(t, b.String(), "run 4 aborted: its policies would send 1000 sessions, above the safety cap of 500, so none of them was sent")
	require.NotContains(t, b.String(), "0 selected")
	require.NotContains(t, b.String(), "estimated")
	require.NotContains(t, b.String(), "0001-01-01", "no cut-off taken: none printed")
}
