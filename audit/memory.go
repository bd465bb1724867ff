package audit

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/convai-retention/retention/internal/pgrows"
)

// MemoryErasureTag is the first field of a memory erasure's leaf.
const MemoryErasureTag = "retention.memory_erasure/v1"

// MemoryDeletionTag is the first field of a memory deletion's leaf.
const MemoryDeletionTag = "retention.memory_deletion/v1"

// MemoryErasure is one row of retention.memory_erasures with the terms of its end user
// request: one leaf of the log.
type MemoryErasure struct {
	ID, RunID int64
	Request   EndUserTerms
	// CharacterID is nil for the erasure of the end user's record.
	CharacterID             *string
	Status                  string
	Attempts                int32
	HTTPStatus              *int32
	Remaining, ListedBefore *int64
	Error                   *string
	StartedAt, CompletedAt  pgtype.Timestamptz
}

// EndUserTerms are the terms of an end user's erasure request a memory erasure's leaf seals
// (its reason is left out, as in a claim's leaf: it must stay redactable).
type EndUserTerms struct {
	ID            int64
	EndUserID     string
	CharacterID   *string
	EndUserRecord bool
	RequestedBy   string
	RequestedAt   pgtype.Timestamptz
	DueAt         pgtype.Timestamptz
}

// MemoryDeletion is one row of retention.memory_deletions: one leaf of the log.
type MemoryDeletion struct {
	ID, RunID                        int64
	CharacterID, EndUserID, MemoryID string
	UpdatedAt                        pgtype.Timestamptz
	PolicyID                         int64
	MemoryMaxAge                     pgtype.Interval
	Threshold                        pgtype.Timestamptz
	Status                           string
	Attempts                         int32
	HTTPStatus                       *int32
	Error                            *string
	CompletedAt                      pgtype.Timestamptz
}

// MemoryErasureContent is the canonical encoding of a memory erasure, the data of its leaf, in
// the netstrings of ClaimContent:
//
//	MemoryErasureTag, id, run_id, the request's id, end_user_id, character_id,
//	end_user_record, requested_by, requested_at, due_at, then the erasure's character_id,
//	status, attempts, http_status, remaining, listed_before, error, started_at, completed_at
//
// retention.memory_erasure_content computes the same bytes in the database.
func MemoryErasureContent(m MemoryErasure) []byte {
	e := &encoder{b: make([]byte, 0, 256)}
	e.field(MemoryErasureTag)
	e.integer(m.ID)
	e.integer(m.RunID)
	q := m.Request
	e.integer(q.ID)
	e.field(q.EndUserID)
	e.optText(q.CharacterID)
	e.field(strconv.FormatBool(q.EndUserRecord))
	e.field(q.RequestedBy)
	e.instant(q.RequestedAt)
	e.instant(q.DueAt)
	e.optText(m.CharacterID)
	e.field(m.Status)
	e.integer(int64(m.Attempts))
	e.optInt32(m.HTTPStatus)
	e.optInt(m.Remaining)
	e.optInt(m.ListedBefore)
	e.optText(m.Error)
	e.instant(m.StartedAt)
	e.instant(m.CompletedAt)
	return e.b
}

// MemoryDeletionContent is the canonical encoding of a memory deletion, the data of its leaf:
//
//	MemoryDeletionTag, id, run_id, character_id, end_user_id, memory_id, updated_at,
//	policy_id, memory_max_age months, days, microseconds, threshold, status, attempts,
//	http_status, error, completed_at
//
// retention.memory_deletion_content computes the same bytes in the database.
func MemoryDeletionContent(d MemoryDeletion) []byte {
	e := &encoder{b: make([]byte, 0, 256)}
	e.field(MemoryDeletionTag)
	e.integer(d.ID)
	e.integer(d.RunID)
	e.field(d.CharacterID)
	e.field(d.EndUserID)
	e.field(d.MemoryID)
	e.instant(d.UpdatedAt)
	e.integer(d.PolicyID)
	e.interval(d.MemoryMaxAge)
	e.instant(d.Threshold)
	e.field(d.Status)
	e.integer(int64(d.Attempts))
	e.optInt32(d.HTTPStatus)
	e.optText(d.Error)
	e.instant(d.CompletedAt)
	return e.b
}

// readLeafMemoryErasures adds to each memory erasure leaf of batch its row and its request's
// terms; a leaf whose row is gone keeps found false.
func readLeafMemoryErasures(ctx context.Context, tx pgx.Tx, batch []logLeaf) error {
	ids, at := keyedSome(batch, func(l logLeaf) *int64 { return l.memoryErasureID })
	if len(ids) == 0 {
		return nil
	}
	var m MemoryErasure
	return pgrows.Each(ctx, tx, "read memory erasures", `
		SELECT m.id, m.run_id, q.id, q.end_user_id, q.character_id, q.end_user_record, q.requested_by, q.requested_at,
		       q.due_at, m.character_id, m.status, m.attempts, m.http_status, m.remaining, m.listed_before, m.error,
		       m.started_at, m.completed_at
		FROM retention.memory_erasures m JOIN retention.end_user_requests q ON q.id = m.request_id
		WHERE m.id = ANY($1)`, []any{ids},
		[]any{&m.ID, &m.RunID, &m.Request.ID, &m.Request.EndUserID, &m.Request.CharacterID, &m.Request.EndUserRecord,
			&m.Request.RequestedBy, &m.Request.RequestedAt, &m.Request.DueAt, &m.CharacterID, &m.Status, &m.Attempts,
			&m.HTTPStatus, &m.Remaining, &m.ListedBefore, &m.Error, &m.StartedAt, &m.CompletedAt}, func() {
			l := &batch[at[m.ID]]
			l.found, l.me = true, m
		})
}

// readLeafMemoryDeletions adds to each memory deletion leaf of batch its row; a leaf whose row
// is gone keeps found false.
func readLeafMemoryDeletions(ctx context.Context, tx pgx.Tx, batch []logLeaf) error {
	ids, at := keyedSome(batch, func(l logLeaf) *int64 { return l.memoryDeletionID })
	if len(ids) == 0 {
		return nil
	}
	var d MemoryDeletion
	return pgrows.Each(ctx, tx, "read memory deletions", `
		SELECT id, run_id, character_id, end_user_id, memory_id, updated_at, policy_id, memory_max_age, threshold,
		       status, attempts, http_status, error, completed_at
		FROM retention.memory_deletions WHERE id = ANY($1)`, []any{ids},
		[]any{&d.ID, &d.RunID, &d.CharacterID, &d.EndUserID, &d.MemoryID, &d.UpdatedAt, &d.PolicyID, &d.MemoryMaxAge,
			&d.Threshold, &d.Status, &d.Attempts, &d.HTTPStatus, &d.Error, &d.CompletedAt}, func() {
			l := &batch[at[d.ID]]
			l.found, l.md = true, d
		})
}

// LeafMemoryErasure is a memory erasure as its leaf's content states it.
type LeafMemoryErasure struct {
	ID        string `json:"memory_erasure_id"`
	RunID     string `json:"run_id"`
	RequestID string `json:"end_user_request_id"`
	EndUserID string `json:"end_user_id"`
	// CharacterID is "" for the erasure of the end user's record.
	CharacterID string `json:"character_id"`
	Status      string `json:"status"`
	// Remaining and ListedBefore are as encoded ("" for NULL).
	Remaining    string `json:"remaining"`
	ListedBefore string `json:"listed_before"`
	// CompletedAtMicros is completed_at as microseconds since 1970-01-01 UTC, as encoded.
	CompletedAtMicros string `json:"completed_at_unix_micros"`
}

// memoryErasureFields is how many fields MemoryErasureContent writes.
const memoryErasureFields = 19

// ParseMemoryErasureContent reads a memory erasure's leaf content, checking that it is well
// formed. It is what an offline check uses to see what a proven leaf says.
func ParseMemoryErasureContent(b []byte) (LeafMemoryErasure, error) {
	fields, err := netstrings(b)
	if err != nil {
		return LeafMemoryErasure{}, err
	}
	if len(fields) == 0 || fields[0] == nil || *fields[0] != MemoryErasureTag {
		return LeafMemoryErasure{}, fmt.Errorf("not a %s leaf", MemoryErasureTag)
	}
	if len(fields) != memoryErasureFields {
		return LeafMemoryErasure{}, fmt.Errorf("malformed leaf: %d fields, want %d", len(fields), memoryErasureFields)
	}
	for _, i := range []int{1, 2, 3, 4, 11} {
		if fields[i] == nil {
			return LeafMemoryErasure{}, errors.New("malformed leaf: a required field is NULL")
		}
	}
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	return LeafMemoryErasure{ID: str(fields[1]), RunID: str(fields[2]), RequestID: str(fields[3]), EndUserID: str(fields[4]),
		CharacterID: str(fields[10]), Status: str(fields[11]), Remaining: str(fields[14]), ListedBefore: str(fields[15]),
		CompletedAtMicros: str(fields[18])}, nil
}
