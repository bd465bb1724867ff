package source

import (
	"context"
	"fmt"
	"time"

	"github.com/convai-retention/retention/job"
)

// memoryWord is how the schema writes a job.MemoryFlag: added, not_added or unstated.
func memoryWord(m job.MemoryFlag) string { return m.String() }

// memoryArrays splits listed into the IDs and the answers the record functions take.
func memoryArrays(listed []job.MemoryListed) (ids, said []string) {
	ids = make([]string, len(listed))
	said = make([]string, len(listed))
	for i, l := range listed {
		ids[i], said[i] = l.SessionID, memoryWord(l.Memory)
	}
	return ids, said
}

// RecordMemory records what the list of characterID read at listedAt said of each listed
// session's is_added_to_memory (retention.record_memory_flags, with the verification's
// credentials): added into retention.memory_sightings, with the end user the set names for the
// session now; not added and unstated into retention.memory_listings. It implements
// job.MemoryRecorder for a verification.
func (v *Verify) RecordMemory(ctx context.Context, characterID string, listedAt time.Time, listed []job.MemoryListed) error {
	ids, said := memoryArrays(listed)
	err := v.s.retrying(ctx, func(ctx context.Context) error {
		_, err := v.s.q.Exec(ctx, `SELECT retention.record_memory_flags($1, $2, $3, $4, $5, $6)`,
			v.id, v.token, characterID, listedAt, ids, said)
		return err
	})
	if err != nil {
		return fmt.Errorf("record what the list of %s said of long-term memory: %w", characterID, err)
	}
	return nil
}

// RecordMemory records what a list of characterID the run read at listedAt (to settle a refused
// session, or for a character's erasure request) said of each listed session's
// is_added_to_memory, as Verify.RecordMemory does but under the run's ID and credentials
// (retention.record_run_memory_flags, which refuses a list time outside the run). It implements
// job.MemoryRecorder for a run.
func (r *Run) RecordMemory(ctx context.Context, characterID string, listedAt time.Time, listed []job.MemoryListed) error {
	ids, said := memoryArrays(listed)
	err := r.s.retrying(ctx, func(ctx context.Context) error {
		_, err := r.s.q.Exec(ctx, `SELECT retention.record_run_memory_flags($1, $2, $3, $4, $5, $6)`,
			r.id, r.token, characterID, listedAt, ids, said)
		return err
	})
	if err != nil {
		return fmt.Errorf("record what the run's list of %s said of long-term memory: %w", characterID, err)
	}
	return nil
}

// MemoryLeft reads what deletions left in long-term memory, over all time: the deleted sessions
// of retention.deleted_in_memory with no memory erasure since, and the completed erasure
// requests of retention.erasure_memory_left that name an end user whose memory an erasure by end
// user can still reach (a request whose sessions' end users are all unknown is counted in
// EndUserUnknown's sessions instead: no erasure from here can clear it), and the end user
// requests' characters of retention.end_user_memory whose memory a re-check found again with no
// erasure standing since (memory_reopened). It implements part of job.VerifyRunStore.
func (v *Verify) MemoryLeft(ctx context.Context) (job.MemoryLeft, error) {
	var left job.MemoryLeft
	err := v.s.retrying(ctx, func(ctx context.Context) error {
		return v.s.q.QueryRow(ctx, `
			SELECT (SELECT count(*) FROM retention.deleted_in_memory WHERE memory_erased_at IS NULL),
			       (SELECT count(*) FROM retention.deleted_in_memory WHERE memory_erased_at IS NULL AND end_user_id IS NULL),
			       (SELECT count(*) FROM retention.erasure_memory_left WHERE end_user_ids IS NOT NULL),
			       (SELECT count(*) FROM retention.end_user_memory WHERE memory_reopened)`).
			Scan(&left.Sessions, &left.EndUserUnknown, &left.ErasureRequests, &left.MemoriesFoundAgain)
	})
	if err != nil {
		return job.MemoryLeft{}, fmt.Errorf("read retention.deleted_in_memory and end_user_memory: %w", err)
	}
	return left, nil
}
