package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/convai-retention/retention/job"
)

// syncMetrics are the gauges of the last sync of an app's source into the job's own set.
type syncMetrics struct {
	last      *gauge
	seconds   *gauge
	rows      *gauge
	setSize   *gauge
	forgotten *gauge
	sessions  *prometheus.GaugeVec
}

func newSyncMetrics() syncMetrics {
	return syncMetrics{
		last:    newGauge("last_sync_timestamp_seconds", "When the last sync of the source into the job's own set finished, in Unix seconds. Absent until one has."),
		seconds: newGauge("last_sync_duration_seconds", "How long the last sync took."),
		rows:    newGauge("last_sync_rows_read", "Source rows the last sync read."),
		setSize: newGauge("set_sessions", "Sessions in the job's own set (retention.sessions) after the last sync."),
		forgotten: newGauge("set_forgotten_sessions",
			"Sessions of the set that the source no longer has (the app forgot them): deleted when they expire."),
		sessions: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: "last_sync_sessions",
			Help: "What the last sync did with the sessions it read, by outcome: added, changed, unchanged, already_deleted, " +
				"undated, malformed (rows), forgotten (newly, full passes only), returned."}, []string{"outcome"}),
	}
}

func (s syncMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{s.last, s.seconds, s.rows, s.setSize, s.forgotten, s.sessions}
}

// Synced records what a sync did.
func (m *Metrics) Synced(r *job.SyncReport) {
	s := m.sync
	s.last.set(unixSeconds(r.FinishedAt))
	s.seconds.set(r.FinishedAt.Sub(r.StartedAt).Seconds())
	s.rows.set(float64(r.RowsRead))
	s.setSize.set(float64(r.SetSize))
	s.forgotten.set(float64(r.ForgottenInSet))
	for outcome, n := range map[string]int64{"added": r.Added, "changed": r.Changed, "unchanged": r.Unchanged,
		"already_deleted": r.AlreadyDeleted, "undated": r.Undated, "malformed": r.Malformed,
		"forgotten": r.Forgotten, "returned": r.Returned} {
		s.sessions.WithLabelValues(outcome).Set(float64(n))
	}
}
