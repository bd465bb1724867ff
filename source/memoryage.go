package source

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/convai-retention/retention/job"
)

var (
	_ job.MemoryPolicyReader  = (*Store)(nil)
	_ job.MemoryDeletionStore = (*Run)(nil)
)

// MemoryPolicies returns the characters whose policy in force at cutoff sets memory_max_age
// (retention.memory_policies), each with its threshold and the end users it was seen with
// (retention.end_users), and the holds that block each of them with it. It reads nothing more
// when no policy sets memory_max_age.
func (s *Store) MemoryPolicies(ctx context.Context, cutoff time.Time) ([]job.MemoryPolicy, error) {
	rows, err := s.q.Query(ctx, `
		SELECT m.character_id, m.policy_id, m.memory_max_age::text, m.threshold, u.end_user_id,
		       coalesce(retention.end_user_holds(u.end_user_id, m.character_id), '{}')
		FROM retention.memory_policies($1) m
		JOIN retention.end_users u ON u.character_id = m.character_id
		ORDER BY m.character_id, u.end_user_id`, cutoff)
	if err != nil {
		return nil, fmt.Errorf("read memory policies: %w", err)
	}
	var out []job.MemoryPolicy
	var char, user, maxAge string
	var id int64
	var threshold time.Time
	var holds []int64
	_, err = pgx.ForEachRow(rows, []any{&char, &id, &maxAge, &threshold, &user, &holds}, func() error {
		if n := len(out); n == 0 || out[n-1].CharacterID != char {
			out = append(out, job.MemoryPolicy{CharacterID: char, PolicyID: id, MemoryMaxAge: maxAge, Threshold: threshold})
		}
		p := &out[len(out)-1]
		p.EndUsers = append(p.EndUsers, job.MemoryEndUser{EndUserID: user, Holds: holds})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read memory policies: %w", err)
	}
	return out, nil
}

// RecordMemoryDeletion records one memory deletion (retention.record_memory_deletion, which
// refuses one the policy in force did not make due).
func (r *Run) RecordMemoryDeletion(ctx context.Context, d job.MemoryDeletion) error {
	var httpStatus *int
	if d.HTTPStatus != 0 {
		httpStatus = &d.HTTPStatus
	}
	err := r.s.retrying(ctx, func(ctx context.Context) error {
		_, err := r.s.q.Exec(ctx, `SELECT retention.record_memory_deletion($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			r.id, r.token, d.CharacterID, d.EndUserID, d.MemoryID, d.UpdatedAt, d.Status, d.Attempts, httpStatus, nullable(d.Error))
		return err
	})
	if err != nil {
		return fmt.Errorf("record the deletion of a memory of %s: %w", d.CharacterID, err)
	}
	return nil
}
