package source

import (
	"context"
	"fmt"
)

// liveSQL counts those of $2 that the source has for character $1 and that retention.is_deleted
// does not call deleted. A strict source is probed through its (character_id, session_id) key.
func (s *Source) liveSQL() string {
	match := "s.character_id::text = $1 AND s.session_id::text = u.session_id"
	if s.strict {
		match = "s.character_id = $1 AND s.session_id = u.session_id"
	}
	return fmt.Sprintf(`
		SELECT count(*) FROM unnest($2::text[]) AS u(session_id)
		WHERE EXISTS (SELECT 1 FROM %s s WHERE %s)
		  AND NOT retention.is_deleted($1, u.session_id)`, s.rel.quoted(), match)
}

// Live counts those of ids that the source has for characterID and that are not recorded
// deleted: the sessions the job knows are live.
func (s *Store) Live(ctx context.Context, characterID string, ids []string) (int, error) {
	var n int
	if err := s.q.QueryRow(ctx, s.src.liveSQL(), characterID, ids).Scan(&n); err != nil {
		return 0, fmt.Errorf("look listed sessions up in %s: %w", s.src.rel, err)
	}
	return n, nil
}

// Live counts those of ids the job knows are live (Store.Live).
func (r *Run) Live(ctx context.Context, characterID string, ids []string) (int, error) {
	return r.s.Live(ctx, characterID, ids)
}
