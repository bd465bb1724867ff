package source

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/convai-retention/retention/internal/pgrows"
	"github.com/convai-retention/retention/job"
	"github.com/convai-retention/retention/migrations"
)

// Verify is one verification's handle: its id and credentials. It implements job.VerifyRunStore;
// it writes only through retention.record_verifications and finish_verify, which check the
// credentials.
type Verify struct {
	s     *Store
	id    int64
	token string
}

var (
	_ job.VerifyStore    = (*Store)(nil)
	_ job.VerifyRunStore = (*Verify)(nil)
)

// StartVerify writes the verification's row (retention.start_verify) and returns its handle.
func (s *Store) StartVerify(ctx context.Context, start job.VerifyStart) (job.VerifyRunStore, job.VerifyInfo, error) {
	scope, err := json.Marshal(start.Scope)
	if err != nil {
		return nil, job.VerifyInfo{}, fmt.Errorf("encode scope: %w", err)
	}
	v := &Verify{s: s}
	var info job.VerifyInfo
	err = s.retrying(ctx, func(ctx context.Context) error {
		return s.q.QueryRow(ctx, `SELECT verify_id, started_at, token FROM retention.start_verify($1, $2, $3)`,
			scope, start.Host, start.Version).Scan(&info.ID, &info.Started, &v.token)
	})
	if err != nil {
		return nil, job.VerifyInfo{}, fmt.Errorf("start verify: %w", err)
	}
	v.id = info.ID
	return v, info, nil
}

// scopeArgs are the parameters $1 character (” for all), $2 since (NULL for all).
func scopeArgs(scope job.VerifyScope) (string, *time.Time) {
	if scope.Since.IsZero() {
		return scope.CharacterID, nil
	}
	return scope.CharacterID, &scope.Since
}

// Live counts those of ids the job knows are live (Store.Live).
func (v *Verify) Live(ctx context.Context, characterID string, ids []string) (int, error) {
	return v.s.Live(ctx, characterID, ids)
}

// Characters returns the characters with deleted rows in scope.
func (v *Verify) Characters(ctx context.Context, scope job.VerifyScope) ([]string, error) {
	char, since := scopeArgs(scope)
	return pgrows.Strings(ctx, v.s.q, "read characters to verify", `
		SELECT DISTINCT character_id FROM (
		    SELECT o.character_id FROM retention.outcomes o
		    WHERE o.status = 'deleted' AND ($1 = '' OR o.character_id = $1)
		      AND ($2::timestamptz IS NULL OR o.completed_at >= $2)
		    UNION ALL
		    SELECT d.character_id FROM retention.deletions_v1 d
		    WHERE d.status = 'deleted' AND ($1 = '' OR d.character_id = $1)
		      AND ($2::timestamptz IS NULL OR d.completed_at >= $2)) c
		ORDER BY 1`, char, since)
}

// deletedToVerifySQL reads the deleted rows of character $1 completed at or after $2 (NULL: all)
// that no verification refuted, with their deletion IDs: "this session is deleted" as
// retention.is_deleted has it, per row. TestDeletedRuleIsOne holds it to the other copies.
var deletedToVerifySQL = fmt.Sprintf(`
		SELECT id, session_id FROM (
		    SELECT o.claim_id * %d + o.ord AS id, o.session_id, o.completed_at FROM retention.outcomes o
		    WHERE o.status = 'deleted' AND o.character_id = $1
		    UNION ALL
		    SELECT d.id, d.session_id, d.completed_at FROM retention.deletions_v1 d
		    WHERE d.status = 'deleted' AND d.character_id = $1) d
		WHERE ($2::timestamptz IS NULL OR d.completed_at >= $2)
		  AND NOT EXISTS (SELECT 1 FROM retention.verifications x WHERE x.deletion_id = d.id AND x.result = 'present')
		`, migrations.DeletionIDStride)

// Deleted hands fn the deleted rows of characterID in scope that no verification refuted, in
// random order when sampling.
func (v *Verify) Deleted(ctx context.Context, characterID string, scope job.VerifyScope, fn func(job.DeletedSession) error) error {
	_, since := scopeArgs(scope)
	order := ""
	if scope.Sample > 0 {
		order = fmt.Sprintf("ORDER BY random() LIMIT %d", scope.Sample)
	}
	rows, err := v.s.q.Query(ctx, deletedToVerifySQL+order, characterID, since)
	if err != nil {
		return fmt.Errorf("read deletions of %s: %w", characterID, err)
	}
	var d job.DeletedSession
	if _, err := pgx.ForEachRow(rows, []any{&d.DeletionID, &d.SessionID}, func() error { return fn(d) }); err != nil {
		return fmt.Errorf("read deletions of %s: %w", characterID, err)
	}
	return nil
}

// Now returns the database's clock.
func (v *Verify) Now(ctx context.Context) (time.Time, error) { return v.s.Now(ctx) }

// Record writes one batch of verifications (retention.record_verifications).
func (v *Verify) Record(ctx context.Context, characterID string, listedAt time.Time, vs []job.Verification) error {
	ids := make([]int64, len(vs))
	present := make([]bool, len(vs))
	for i, x := range vs {
		ids[i], present[i] = x.DeletionID, x.Present
	}
	err := v.s.retrying(ctx, func(ctx context.Context) error {
		_, err := v.s.q.Exec(ctx, `SELECT retention.record_verifications($1, $2, $3, $4, $5, $6)`,
			v.id, v.token, characterID, listedAt, ids, present)
		return err
	})
	if err != nil {
		return fmt.Errorf("record verifications of %s: %w", characterID, err)
	}
	return nil
}

// Finish writes the verification's final row (retention.finish_verify).
func (v *Verify) Finish(ctx context.Context, end job.VerifyEnd) error {
	err := v.s.retrying(ctx, func(ctx context.Context) error {
		_, err := v.s.q.Exec(ctx, `SELECT retention.finish_verify($1, $2, $3, $4, $5)`,
			v.id, v.token, string(end.Status), end.Unlisted, end.Error)
		return err
	})
	if err != nil {
		return fmt.Errorf("finish verify: %w", err)
	}
	return nil
}
