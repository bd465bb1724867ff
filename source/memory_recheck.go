package source

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/convai-retention/retention/job"
)

var _ job.MemoryRecheckStore = (*Verify)(nil)

// ErasedMemories returns each end user and character in scope whose last memory erasure of
// some request says erased (retention.end_user_memory: erased, or found_again, which a
// re-check refuted and no run has erased since), with those erasures: what a verification
// lists again. The scope's character limits it; its since keeps the erasures completed at or
// after it; its sample does not apply.
func (v *Verify) ErasedMemories(ctx context.Context, scope job.VerifyScope) ([]job.ErasedMemory, error) {
	char, since := scopeArgs(scope)
	rows, err := v.s.q.Query(ctx, `
		SELECT m.end_user_id, m.character_id, array_agg(m.memory_erasure_id ORDER BY m.memory_erasure_id)
		FROM retention.end_user_memory m
		WHERE m.memory_status IN ('erased', 'found_again')
		  AND ($1 = '' OR m.character_id = $1) AND ($2::timestamptz IS NULL OR m.memory_checked_at >= $2)
		GROUP BY m.character_id, m.end_user_id
		ORDER BY m.character_id, m.end_user_id`, char, since)
	if err != nil {
		return nil, fmt.Errorf("read erased memories: %w", err)
	}
	var out []job.ErasedMemory
	var m job.ErasedMemory
	_, err = pgx.ForEachRow(rows, []any{&m.EndUserID, &m.CharacterID, &m.ErasureIDs}, func() error {
		out = append(out, m)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read erased memories: %w", err)
	}
	return out, nil
}

// RecordMemoryRecheck records one re-check (retention.record_memory_recheck).
func (v *Verify) RecordMemoryRecheck(ctx context.Context, r job.MemoryRecheck) error {
	var listed, total *int64
	var failure *string
	if r.Result == job.RecheckNotChecked {
		failure = &r.Failure
	} else {
		listed, total = &r.Count.Listed, &r.Count.TotalCount
	}
	err := v.s.retrying(ctx, func(ctx context.Context) error {
		_, err := v.s.q.Exec(ctx, `SELECT retention.record_memory_recheck($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			v.id, v.token, r.ErasureIDs, r.ListedAt, string(r.Result), listed, total, failure, r.HTTPStatus, r.Attempts)
		return err
	})
	if err != nil {
		return fmt.Errorf("record memory re-check: %w", err)
	}
	return nil
}
