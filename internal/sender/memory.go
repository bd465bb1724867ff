package sender

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/convai-retention/retention/convai"
	"github.com/convai-retention/retention/job"
)

var _ job.MemoryAPI = Convai{}

// DeleteAllMemories asks for the deletion of every memory of endUserID with characterID, one
// request, and classifies the answer for the job (see memoryAnswer).
func (s Convai) DeleteAllMemories(ctx context.Context, characterID, endUserID string) job.Answer {
	return memoryAnswer(s.Client.DeleteAllMemories(ctx, characterID, endUserID))
}

// CountMemories lists the memories of endUserID with characterID, whole, and counts them: the
// larger of those listed and the list's total_count.
func (s Convai) CountMemories(ctx context.Context, characterID, endUserID string) (int64, job.Answer) {
	l, r := s.Client.ListMemories(ctx, convai.MemoryQuery{CharacterID: characterID, EndUserID: endUserID},
		func(convai.Memory) error { return nil })
	return max(int64(l.Listed), l.TotalCount), memoryAnswer(r)
}

var _ job.MemoryCounter = Convai{}

// ListMemoryCount lists the memories of endUserID with characterID, whole, and returns how many
// the pages held and the list's total_count, apart.
func (s Convai) ListMemoryCount(ctx context.Context, characterID, endUserID string) (job.MemoryCount, job.Answer) {
	l, r := s.Client.ListMemories(ctx, convai.MemoryQuery{CharacterID: characterID, EndUserID: endUserID},
		func(convai.Memory) error { return nil })
	return job.MemoryCount{Listed: int64(l.Listed), TotalCount: l.TotalCount}, memoryAnswer(r)
}

// DeleteEndUser asks for the deletion of the end user's record, one request.
func (s Convai) DeleteEndUser(ctx context.Context, endUserID string) job.Answer {
	return memoryAnswer(s.Client.DeleteEndUser(ctx, endUserID))
}

// memoryAnswer is answer for a memory endpoint: a 403 there says the key may not touch the
// character (Permanent, ErrMemoryForbidden), not that the key is rejected; a 404 wraps
// ErrMemoryUnavailable or ErrMemoryNotFound as the client read it.
func memoryAnswer(r convai.Result) job.Answer {
	a := answer(r)
	switch {
	case r.StatusCode == http.StatusForbidden:
		a.Class, a.Err = job.Permanent, fmt.Errorf("%w: %w", job.ErrMemoryForbidden, r.Err)
	case errors.Is(r.Err, convai.ErrMemoryUnavailable):
		a.Err = fmt.Errorf("%w: %w", job.ErrMemoryUnavailable, r.Err)
	case errors.Is(r.Err, convai.ErrMemoryNotFound):
		a.Err = fmt.Errorf("%w: %w", job.ErrMemoryNotFound, r.Err)
	}
	return a
}

var _ job.MemoryRetentionAPI = Convai{}

// ListMemories lists the memories of endUserID with characterID, whole, handing each to fn with
// its ID and updated_at.
func (s Convai) ListMemories(ctx context.Context, characterID, endUserID string, fn func(job.MemoryItem) error) job.Answer {
	_, r := s.Client.ListMemories(ctx, convai.MemoryQuery{CharacterID: characterID, EndUserID: endUserID},
		func(m convai.Memory) error {
			return fn(job.MemoryItem{ID: m.ID, Overlong: m.Overlong, UpdatedAt: m.UpdatedAt})
		})
	return memoryAnswer(r)
}

// DeleteMemory deletes one memory, one request.
func (s Convai) DeleteMemory(ctx context.Context, characterID, endUserID, memoryID string) job.Answer {
	return memoryAnswer(s.Client.DeleteMemory(ctx, characterID, endUserID, memoryID))
}
