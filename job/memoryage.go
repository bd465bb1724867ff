package job

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/convai-retention/retention/policy"
)

// MemoryItem is one long-term memory as a list gave it: its ID and when it was last updated.
type MemoryItem struct {
	// ID is empty when Overlong: such a memory can be counted, never deleted.
	ID       string
	Overlong bool
	// UpdatedAt is zero when the list gave none that could be read.
	UpdatedAt time.Time
}

// MemoryRetentionAPI lists and deletes single memories. Each method sends what one call needs
// and does not retry.
type MemoryRetentionAPI interface {
	// ListMemories reads the memories of endUserID with characterID whole, handing each to fn.
	// Only a Confirmed answer is a whole list; fn may have seen part of one otherwise.
	ListMemories(ctx context.Context, characterID, endUserID string, fn func(MemoryItem) error) Answer
	// DeleteMemory deletes one memory; its Err wraps ErrMemoryNotFound when it is gone already.
	DeleteMemory(ctx context.Context, characterID, endUserID, memoryID string) Answer
}

// MemoryPolicy is a character whose policy in force sets memory_max_age, with the end users it
// was seen with.
type MemoryPolicy struct {
	CharacterID string
	PolicyID    int64
	// MemoryMaxAge is the policy's memory_max_age as PostgreSQL prints it ("90 days").
	MemoryMaxAge string
	// Threshold is the policy's at the run's cut-off: a memory updated at or before it is due.
	Threshold time.Time
	EndUsers  []MemoryEndUser
}

// MemoryEndUser is one end user of a MemoryPolicy's character, with the holds that block them
// with it (retention.end_user_holds).
type MemoryEndUser struct {
	EndUserID string
	Holds     []int64
}

// MemoryPolicyReader reads the memory policies as of a cut-off. source.Store implements it.
type MemoryPolicyReader interface {
	MemoryPolicies(ctx context.Context, cutoff time.Time) ([]MemoryPolicy, error)
}

// MemoryDeletionStore records memory deletions. source.Run implements it.
type MemoryDeletionStore interface {
	RecordMemoryDeletion(ctx context.Context, d MemoryDeletion) error
}

// MemoryDeletion is one memory a run tried to delete under memory_max_age.
type MemoryDeletion struct {
	CharacterID, EndUserID, MemoryID string
	UpdatedAt                        time.Time
	// Status is deleted, gone (no such memory), failed, unavailable (404) or forbidden (403).
	Status     string
	Attempts   int
	HTTPStatus int
	Error      string
}

// MemoryRetentionSummary is what a run did (a dry-run: would look at) under memory_max_age.
type MemoryRetentionSummary struct {
	// Characters and EndUsers count the run's shard's characters under a memory policy and
	// their end users; Held those a hold blocks (not listed).
	Characters int `json:"characters"`
	EndUsers   int `json:"end_users"`
	Held       int `json:"held"`
	// PerCharacter is each of those characters, in the order of their IDs.
	PerCharacter []MemoryRetentionCharacter `json:"per_character,omitempty"`
	// Listed counts the memories the lists showed, Due those updated at or before the
	// threshold, Undated those with no readable updated_at or an ID too long to send (kept).
	Listed  int64 `json:"listed"`
	Due     int64 `json:"due"`
	Undated int64 `json:"undated,omitempty"`
	// Deleted, Gone and Failed count the deletions by outcome (Failed: every status but
	// deleted and gone); Unlisted the end users whose list could not be read whole.
	Deleted  int64 `json:"deleted"`
	Gone     int64 `json:"gone,omitempty"`
	Failed   int64 `json:"failed"`
	Unlisted int   `json:"unlisted,omitempty"`
	// Capped is set when more were due than Config.AbortAbove: none was deleted. BudgetReached
	// when Config.MaxDeletions stopped the deletions.
	Capped        bool `json:"capped,omitempty"`
	BudgetReached bool `json:"budget_reached,omitempty"`
}

// MemoryRetentionCharacter is one character under a memory policy: its memory_max_age, its
// end users and those a hold blocks with it.
type MemoryRetentionCharacter struct {
	CharacterID  string `json:"character_id"`
	MemoryMaxAge string `json:"memory_max_age"`
	EndUsers     int    `json:"end_users"`
	Held         int    `json:"held"`
}

// memoryDue is one memory due for deletion.
type memoryDue struct {
	characterID, endUserID string
	item                   MemoryItem
}

// readMemoryPolicies reads the memory policies of the shard as of cutoff and counts them into a
// summary; nil when the reader has none or cannot say.
func readMemoryPolicies(ctx context.Context, rd Reader, cutoff time.Time, shard Shard) ([]MemoryPolicy, *MemoryRetentionSummary, error) {
	mr, ok := rd.(MemoryPolicyReader)
	if !ok {
		return nil, nil, nil
	}
	all, err := mr.MemoryPolicies(ctx, cutoff)
	if err != nil {
		return nil, nil, fmt.Errorf("read memory policies: %w", err)
	}
	var ps []MemoryPolicy
	sum := &MemoryRetentionSummary{}
	for _, p := range all {
		if policy.Shard(p.CharacterID, shard.Count) != shard.Index {
			continue
		}
		ps = append(ps, p)
		sum.Characters++
		c := MemoryRetentionCharacter{CharacterID: p.CharacterID, MemoryMaxAge: p.MemoryMaxAge}
		for _, u := range p.EndUsers {
			c.EndUsers++
			if len(u.Holds) > 0 {
				c.Held++
			}
		}
		sum.EndUsers, sum.Held = sum.EndUsers+c.EndUsers, sum.Held+c.Held
		sum.PerCharacter = append(sum.PerCharacter, c)
	}
	if len(ps) == 0 {
		return nil, nil, nil
	}
	return ps, sum, nil
}

// loadMemoryPolicies reads, with the rules, the memory policies the run applies after its
// sends; the summary counts them.
func (ru *run) loadMemoryPolicies(ctx context.Context) error {
	ps, sum, err := readMemoryPolicies(ctx, ru.rd, ru.info.Cutoff, ru.cfg.Shard)
	if err != nil {
		return err
	}
	ru.memoryPolicies, ru.sum.MemoryRetention = ps, sum
	return nil
}

// deleteOldMemories is the run's memory retention: for each end user of each character of its
// shard whose policy sets memory_max_age, a whole list, then the deletion, one by one, of the
// memories updated at or before the threshold, under the run's limiter and retries. A hold on
// the character or on one of the end user's sessions of it keeps that end user's memories. A
// run the safety cap stopped deletes none; more due than Config.AbortAbove deletes none either;
// Config.MaxDeletions bounds how many it deletes. Nothing here calls the API unless a policy
// sets memory_max_age.
func (ru *run) deleteOldMemories(ctx context.Context) error {
	ps, sum := ru.memoryPolicies, ru.sum.MemoryRetention
	if sum == nil || ctx.Err() != nil {
		return nil // no policy sets memory_max_age, or interrupted: the next run looks
	}
	store, okStore := ru.rs.(MemoryDeletionStore)
	api, okAPI := ru.sender.(MemoryRetentionAPI)
	if ru.capped != nil || !okStore || !okAPI {
		sum.Capped = ru.capped != nil
		return nil
	}
	var due []memoryDue
	for _, p := range ps {
		for _, u := range p.EndUsers {
			if len(u.Holds) > 0 || ctx.Err() != nil {
				continue
			}
			var mine []memoryDue
			var listed, undated int64
			_, _, err := try(ctx, ru.cfg, ru.limiter, func(ctx context.Context) Answer {
				mine, listed, undated = mine[:0], 0, 0
				return api.ListMemories(ctx, p.CharacterID, u.EndUserID, func(m MemoryItem) error {
					listed++
					switch {
					case m.Overlong || m.UpdatedAt.IsZero():
						undated++
					case !m.UpdatedAt.After(p.Threshold):
						mine = append(mine, memoryDue{p.CharacterID, u.EndUserID, m})
					}
					return nil
				})
			})
			if err != nil {
				sum.Unlisted++
				ru.log.Warn("memory retention: could not list an end user's memories; they wait for the next run",
					"character_id", p.CharacterID, "err", err)
				continue
			}
			sum.Listed += listed
			sum.Undated += undated
			due = append(due, mine...)
		}
	}
	sum.Due = int64(len(due))
	if ru.cfg.AbortAbove > 0 && sum.Due > ru.cfg.AbortAbove {
		sum.Capped = true
		ru.log.Error("memory retention: more memories due than the safety cap; none is deleted", "due", sum.Due,
			"limit", ru.cfg.AbortAbove)
		return nil
	}
	for _, d := range due {
		if ctx.Err() != nil {
			break
		}
		if ru.cfg.MaxDeletions > 0 && sum.Deleted+sum.Gone+sum.Failed >= ru.cfg.MaxDeletions {
			sum.BudgetReached = true
			break
		}
		rec := ru.deleteMemory(ctx, api, d)
		dctx, cancel := ru.dbCtx()
		err := store.RecordMemoryDeletion(dctx, rec)
		cancel()
		if err != nil {
			return fmt.Errorf("record a memory deletion: %w", err)
		}
		switch rec.Status {
		case "deleted":
			sum.Deleted++
		case "gone":
			sum.Gone++
		default:
			sum.Failed++
		}
	}
	return nil
}

// deleteMemory deletes one memory with the run's retries and says how it ended.
func (ru *run) deleteMemory(ctx context.Context, api MemoryRetentionAPI, d memoryDue) MemoryDeletion {
	last, attempts, err := try(ctx, ru.cfg, ru.limiter, func(ctx context.Context) Answer {
		return api.DeleteMemory(ctx, d.characterID, d.endUserID, d.item.ID)
	})
	rec := MemoryDeletion{CharacterID: d.characterID, EndUserID: d.endUserID, MemoryID: d.item.ID, UpdatedAt: d.item.UpdatedAt,
		Attempts: attempts, HTTPStatus: last.StatusCode, Status: "deleted"}
	switch {
	case err == nil:
	case errors.Is(last.Err, ErrMemoryNotFound):
		rec.Status = "gone"
	default:
		status, text := memoryFailure(last, err)
		rec.Status, rec.Error = string(status), text
	}
	return rec
}
