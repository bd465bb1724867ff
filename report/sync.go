package report

import (
	"context"
	"fmt"
	"time"
)

// SyncState is how current the job's own set (retention.sessions) is, when every run syncs it
// from an app's source: the last sync, the syncs of the period, and the sessions the source no
// longer has.
type SyncState struct {
	Source string `json:"source"`
	// LastSyncAt is when the last sync of Source finished; nil when none ever did.
	LastSyncAt *time.Time `json:"last_sync_at"`
	// LastFull says whether that sync read the whole source; LastFullAt when the last full pass
	// finished (nil: none).
	LastFull   bool       `json:"last_full_pass"`
	LastFullAt *time.Time `json:"last_full_pass_at"`
	// Syncs is the number of syncs in the period; the rest sums them.
	Syncs     int64 `json:"syncs"`
	RowsRead  int64 `json:"rows_read"`
	Added     int64 `json:"added"`
	Changed   int64 `json:"changed"`
	Unchanged int64 `json:"unchanged"`
	// Forgotten counts the sessions of the set that the source no longer has, now: they are
	// deleted when they expire.
	Forgotten int64 `json:"forgotten_in_set"`
}

func (q query) sync(ctx context.Context, r *Report) error {
	if q.o.SyncedFrom == "" {
		return nil
	}
	s := &SyncState{Source: q.o.SyncedFrom}
	err := q.tx.QueryRow(ctx, `
		SELECT (SELECT max(finished_at) FROM retention.syncs WHERE source = $1),
		       coalesce((SELECT full_pass FROM retention.syncs WHERE source = $1 ORDER BY id DESC LIMIT 1), false),
		       (SELECT max(finished_at) FROM retention.syncs WHERE source = $1 AND full_pass),
		       count(*), coalesce(sum(rows_read), 0), coalesce(sum(added), 0), coalesce(sum(changed), 0),
		       coalesce(sum(unchanged), 0),
		       (SELECT count(*) FROM retention.forgotten_in_set)
		FROM retention.syncs WHERE source = $1 AND finished_at >= $2 AND finished_at < $3`,
		q.o.SyncedFrom, q.o.Since, q.o.Until).Scan(&s.LastSyncAt, &s.LastFull, &s.LastFullAt, &s.Syncs, &s.RowsRead,
		&s.Added, &s.Changed, &s.Unchanged, &s.Forgotten)
	if err != nil {
		return fmt.Errorf("read the syncs of %s: %w", q.o.SyncedFrom, err)
	}
	for _, t := range []*time.Time{s.LastSyncAt, s.LastFullAt} {
		if t != nil {
			*t = t.UTC()
		}
	}
	r.Sync = s
	return nil
}

// statement is the sync's line of the heading; an alarm when the set was never synced.
func (s *SyncState) statement() Statement {
	st := Statement{Key: "sync", Label: "sync"}
	if s.LastSyncAt == nil {
		st.Alarm = true
		st.Text = fmt.Sprintf("%s has never been synced into retention.sessions: the live counts are of the set without it "+
			"(run retention sync --source %s)", printable(s.Source), printable(s.Source))
		return st
	}
	kind := "incremental"
	if s.LastFull {
		kind = "full"
	}
	st.Text = fmt.Sprintf("%s synced into retention.sessions, last at %s (%s); %d sync(s) in the period read %d row(s): "+
		"%d added, %d changed, %d unchanged; %d session(s) of the set the source no longer has, deleted when they expire",
		printable(s.Source), rfc3339(*s.LastSyncAt), kind, s.Syncs, s.RowsRead, s.Added, s.Changed, s.Unchanged, s.Forgotten)
	return st
}
