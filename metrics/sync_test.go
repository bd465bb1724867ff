package metrics_test

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/job"
	"github.com/convai-retention/retention/metrics"
)

func TestSyncedFillsTheSyncGauges(t *testing.T) {
	t.Parallel()
	m := metrics.New(metrics.Config{})
	n, err := testutil.GatherAndCount(m.Gatherer(), "convai_retention_last_sync_timestamp_seconds", "convai_retention_last_sync_sessions")
	require.NoError(t, err)
	require.Zero(t, n, "absent until a sync")

	at := time.Unix(1_800_000_000, 0)
	m.Synced(&job.SyncReport{StartedAt: at.Add(-2 * time.Second), FinishedAt: at, RowsRead: 10, Added: 3, Changed: 1,
		Unchanged: 5, Malformed: 1, Forgotten: 2, SetSize: 9, ForgottenInSet: 4})
	want := `
# HELP convai_retention_last_sync_duration_seconds How long the last sync took.
# TYPE convai_retention_last_sync_duration_seconds gauge
convai_retention_last_sync_duration_seconds 2
# HELP convai_retention_last_sync_rows_read Source rows the last sync read.
# TYPE convai_retention_last_sync_rows_read gauge
convai_retention_last_sync_rows_read 10
# HELP convai_retention_set_forgotten_sessions Sessions of the set that the source no longer has (the app forgot them): deleted when they expire.
# TYPE convai_retention_set_forgotten_sessions gauge
convai_retention_set_forgotten_sessions 4
# HELP convai_retention_set_sessions Sessions in the job's own set (retention.sessions) after the last sync.
# TYPE convai_retention_set_sessions gauge
convai_retention_set_sessions 9
`
	require.NoError(t, testutil.GatherAndCompare(m.Gatherer(), strings.NewReader(want),
		"convai_retention_last_sync_duration_seconds", "convai_retention_last_sync_rows_read",
		"convai_retention_set_forgotten_sessions", "convai_retention_set_sessions"))
	n, err = testutil.GatherAndCount(m.Gatherer(), "convai_retention_last_sync_timestamp_seconds", "convai_retention_last_sync_sessions")
	require.NoError(t, err)
	require.Equal(t, 1+8, n, "the timestamp, and one series per outcome")
}
