package source

import (
	"context"
	"fmt"
	"time"

	"github.com/convai-retention/retention/internal/pgrows"
	"github.com/convai-retention/retention/job"
)

var _ job.DiscoverStore = (*Store)(nil)

// IsBuiltin reports whether the store reads the built-in source, retention.sessions, the only
// one discover may add to.
func (s *Store) IsBuiltin() bool { return s.src.rel.String() == DefaultRelation }

// KnownCharacters returns the characters with a policy of their own, a session in the source or
// a recorded deletion.
func (s *Store) KnownCharacters(ctx context.Context) ([]string, error) {
	return pgrows.Strings(ctx, s.q, "read characters", fmt.Sprintf(`
		SELECT character_id FROM retention.policies WHERE character_id IS NOT NULL
		UNION SELECT character_id::text FROM %s WHERE character_id IS NOT NULL
		UNION SELECT character_id FROM retention.outcomes WHERE status = 'deleted'
		UNION SELECT character_id FROM retention.deletions_v1 WHERE status = 'deleted'
		ORDER BY 1`, s.src.rel.quoted()))
}

// Missing returns those of ids that the source has no row of, for characterID, and that have
// no deleted row.
func (s *Store) Missing(ctx context.Context, characterID string, ids []string) ([]string, error) {
	return pgrows.Strings(ctx, s.q, fmt.Sprintf("find sessions of %s missing from %s", characterID, s.src.rel), fmt.Sprintf(`
		SELECT u.id FROM unnest($2::text[]) WITH ORDINALITY AS u(id, ord)
		WHERE NOT EXISTS (SELECT 1 FROM %s s WHERE s.character_id::text = $1 AND s.session_id::text = u.id)
		  AND NOT retention.is_deleted($1, u.id)
		ORDER BY u.ord`, s.src.rel.quoted()), characterID, ids)
}

// AddDiscovered adds sessions to retention.sessions through retention.add_discovered, which
// records each one added in retention.discoveries with what the list said of its
// is_added_to_memory.
func (s *Store) AddDiscovered(ctx context.Context, characterID string, found []job.Discovered) (int64, error) {
	ids := make([]string, len(found))
	ats := make([]time.Time, len(found))
	memory := make([]string, len(found))
	for i, f := range found {
		ids[i], ats[i], memory[i] = f.SessionID, f.LastActive, memoryWord(f.Memory)
	}
	var n int64
	err := s.retrying(ctx, func(ctx context.Context) error {
		return s.q.QueryRow(ctx, `SELECT retention.add_discovered($1, $2, $3, $4)`, characterID, ids, ats, memory).Scan(&n)
	})
	if err != nil {
		return 0, fmt.Errorf("add discovered sessions of %s: %w", characterID, err)
	}
	return n, nil
}
