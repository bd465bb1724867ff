package job

import "time"

// SyncReport is what one sync of a source into the job's own set of sessions did: how many
// rows it read, and what became of the sessions in them.
type SyncReport struct {
	ID     int64  `json:"sync_id"`
	Source string `json:"source"`
	// Full: the whole source was read. Otherwise only the rows whose ChangedColumn is at or
	// after Since were.
	Full          bool       `json:"full_pass"`
	ChangedColumn string     `json:"changed_column,omitempty"`
	Since         *time.Time `json:"since,omitempty"`
	HighWater     *time.Time `json:"high_water,omitempty"`
	StartedAt     time.Time  `json:"started_at"`
	FinishedAt    time.Time  `json:"finished_at"`
	RowsRead      int64      `json:"rows_read"`
	// Sessions counts the distinct well-formed sessions read.
	Sessions int64 `json:"sessions"`
	// Added were new to the set; Changed got a later last activity; Unchanged had none.
	Added     int64 `json:"added"`
	Changed   int64 `json:"changed"`
	Unchanged int64 `json:"unchanged"`
	// AlreadyDeleted were deleted at Convai before: not added again.
	AlreadyDeleted int64 `json:"already_deleted"`
	// Undated sessions have a row without a last activity: never deleted, kept out of the set.
	Undated int64 `json:"undated"`
	// Malformed rows have an ID the rules refuse or a timestamp out of range: skipped.
	Malformed int64 `json:"malformed"`
	// Forgotten (full passes only) are sessions of the set the source no longer has, newly:
	// they stay in the set and are deleted when they expire. Returned came back.
	Forgotten int64 `json:"forgotten"`
	Returned  int64 `json:"returned"`
	// SetSize is the number of sessions in the set after the sync, ForgottenInSet those of
	// them the source no longer has.
	SetSize        int64 `json:"set_size"`
	ForgottenInSet int64 `json:"forgotten_in_set"`
}
