package report

import (
	"context"
	"fmt"
	"time"

	"github.com/convai-retention/retention/internal/pgrows"
)

// HoldRow is an active hold that matches no row of the source.
type HoldRow struct {
	ID          int64  `json:"id"`
	CharacterID string `json:"character_id"`
	// SessionID is nil for a hold on every session of the character.
	SessionID *string   `json:"session_id"`
	Reason    string    `json:"reason"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
}

// Name is the hold's target as a run's warning names it: CHARACTER or CHARACTER/SESSION.
func (h HoldRow) Name() string {
	if h.SessionID == nil {
		return h.CharacterID
	}
	return h.CharacterID + "/" + *h.SessionID
}

// Scope says what the hold covers, for people.
func (h HoldRow) Scope() string {
	if h.SessionID == nil {
		return "every session"
	}
	return printable(*h.SessionID)
}

// unmatchedHoldsSQL lists the active holds that no row of the source matches: the same rule as
// the run's warning (source.Store.UnmatchedHolds), which cmd/retention's tests tie to this one.
// %s is the source relation, sanitized; $1 the character (” for all).
const unmatchedHoldsSQL = `
	SELECT h.id, h.character_id, h.session_id, h.reason, h.created_by, h.created_at
	FROM retention.holds h
	WHERE h.released_at IS NULL AND ($1::text = '' OR h.character_id = $1::text)
	  AND NOT EXISTS (SELECT 1 FROM %s s WHERE s.character_id::text = h.character_id
	                    AND (h.session_id IS NULL OR s.session_id::text = h.session_id))
	ORDER BY h.id`

func (q query) unmatchedHolds(ctx context.Context, r *Report) error {
	r.UnmatchedHolds = []HoldRow{}
	var h HoldRow
	return pgrows.Each(ctx, q.tx, "check holds against the source", fmt.Sprintf(unmatchedHoldsSQL, q.o.Source.Sanitize()),
		[]any{q.o.Character}, []any{&h.ID, &h.CharacterID, &h.SessionID, &h.Reason, &h.CreatedBy, &h.CreatedAt}, func() {
			row := h
			row.CreatedAt = row.CreatedAt.UTC()
			r.UnmatchedHolds = append(r.UnmatchedHolds, row)
		})
}
