package source

import (
	"context"
	"fmt"
	"time"
)

// RecordMemory records that the list of characterID read at listedAt showed sessionIDs as added
// to long-term memory (retention.record_memory_sightings, with the verification's credentials).
// It implements job.MemoryRecorder for a verification.
func (v *Verify) RecordMemory(ctx context.Context, characterID string, listedAt time.Time, sessionIDs []string) error {
	err := v.s.retrying(ctx, func(ctx context.Context) error {
		_, err := v.s.q.Exec(ctx, `SELECT retention.record_memory_sightings($1, $2, $3, $4, $5)`,
			v.id, v.token, characterID, listedAt, sessionIDs)
		return err
	})
	if err != nil {
		return fmt.Errorf("record the sessions of %s in long-term memory: %w", characterID, err)
	}
	return nil
}
