package job

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"github.com/convai-retention/retention/internal/natural"
	"github.com/convai-retention/retention/policy"
)

// Status is the final state of a run, as stored in retention.runs.status.
type Status string

// The statuses of a run.
const (
	StatusRunning     Status = "running"
	StatusSucceeded   Status = "succeeded"
	StatusPartial     Status = "partial"
	StatusFailed      Status = "failed"
	StatusInterrupted Status = "interrupted"
	// StatusAborted: the safety cap found the run's policies would send more than allowed; it
	// sent none of that (erasure requests' sessions are never capped).
	StatusAborted Status = "aborted"
	// StatusDryRun is the reported status of a dry-run that did not fail (see Reported): it
	// selected what a run would send, and sent and wrote nothing. No row of retention.runs
	// has it.
	StatusDryRun Status = "dry_run"
)

// Summary is what a run did. It is printed at the end of every run, dry or real.
type Summary struct {
	RunID           int64            `json:"run_id,omitempty"`
	Status          Status           `json:"status"`
	DryRun          bool             `json:"dry_run"`
	Cutoff          time.Time        `json:"cutoff,omitzero"` // absent when the run stopped before taking it
	Source          string           `json:"source"`
	Shard           Shard            `json:"shard"`
	Selected        int64            `json:"selected"`
	Deleted         int64            `json:"deleted"`
	Failed          int64            `json:"failed"`
	Skipped         int64            `json:"skipped"`
	SkippedByReason map[string]int64 `json:"skipped_by_reason"`
	BudgetReached   bool             `json:"budget_reached"`
	// NotSent counts sessions selected but never sent because the run stopped first (a
	// signal, a rejected key, a fatal error); they wait for the next run.
	NotSent   int64   `json:"not_sent"`
	Recovered []int64 `json:"recovered_runs,omitempty"`
	// UnmatchedHolds names the active holds that match no session of the source: they protect
	// nothing now, and a typo ("char-0 ", "CHAR-1") is the likely cause. As CHARACTER or
	// CHARACTER/SESSION.
	UnmatchedHolds []string `json:"unmatched_holds,omitempty"`
	// Checkpoint is the results log's size and root when the run finished (real runs).
	Checkpoint *Checkpoint `json:"checkpoint,omitempty"`
	// Cap is what the safety cap measured, when one was set (a real run only).
	Cap *CapCheck `json:"safety_cap,omitempty"`
	// EstimatedTotal is what the progress estimated the run would send, when it estimated (a
	// count beside the run, or the safety cap's): the summary says when the run selected
	// another number.
	EstimatedTotal *int64 `json:"estimated_total,omitempty"`
	// Sync is what the sync of the deployment's source into retention.sessions did before the
	// run read it; nil when the run read its source directly.
	Sync *SyncReport `json:"sync,omitempty"`
	// Erasure is what the run did (a dry-run: would do) about the erasure requests of its shard;
	// nil when the run stopped before reading them.
	Erasure         *ErasureSummary    `json:"erasure_requests,omitempty"`
	Error           string             `json:"error,omitempty"`
	Duration        time.Duration      `json:"-"`
	DurationSeconds float64            `json:"duration_seconds"`
	Characters      []CharacterSummary `json:"characters"`
	// MemoryRetention is what the run did (a dry-run: would look at) under the policies'
	// memory_max_age; nil when no policy of its shard sets one.
	MemoryRetention *MemoryRetentionSummary `json:"memory_retention,omitempty"`
	// ListedMemory is what the run's own lists (to settle refused sessions, for its characters'
	// erasure requests) said of long-term memory, recorded per session; nil when the run read
	// no list or its store cannot record it.
	ListedMemory *RunMemorySummary `json:"listed_memory,omitempty"`
}

// Reported returns the summary as it is printed, in every format, so that each field says what
// happened: a dry-run that did not fail has StatusDryRun, not succeeded; BudgetReached holds
// only for a run that went through its selection and sent it (succeeded, partial, or a dry-run):
// a run stopped first (a rejected key, a signal, an error) or aborted by the safety cap did not
// end because of the budget, whatever its selection had buffered when it stopped. s is not
// changed.
func (s *Summary) Reported() *Summary {
	r := *s
	if r.DryRun && r.Status == StatusSucceeded {
		r.Status = StatusDryRun
	}
	switch r.Status {
	case StatusSucceeded, StatusPartial, StatusDryRun:
	default:
		r.BudgetReached = false
	}
	return &r
}

// CharacterSummary is one character's part of a run.
type CharacterSummary struct {
	CharacterID string        `json:"character_id"`
	Policy      policy.Reason `json:"policy"`
	PolicyID    int64         `json:"policy_id"`
	MaxAge      string        `json:"max_age"`
	Selected    int64         `json:"selected"`
	Deleted     int64         `json:"deleted"`
	Failed      int64         `json:"failed"`
	Held        int64         `json:"held"`
	Oldest      time.Time     `json:"oldest_last_active_at,omitzero"` // absent when nothing was selected
	// SessionIDs is filled by a dry-run only when asked for.
	SessionIDs []string `json:"session_ids,omitempty"`
}

// tally collects a run's counts from several goroutines.
type tally struct {
	mu       sync.Mutex
	selected int64
	deleted  int64
	failed   int64
	skipped  map[string]int64
	chars    map[string]*CharacterSummary
	withIDs  bool
	obs      Observer
	// claimHeld counts selected sessions a hold protected by the time their chunk was claimed.
	claimHeld int64
}

func newTally(withIDs bool, obs Observer) *tally {
	return &tally{skipped: map[string]int64{}, chars: map[string]*CharacterSummary{}, withIDs: withIDs, obs: obs}
}

func (t *tally) char(id string, d policy.Decision) *CharacterSummary {
	c, ok := t.chars[id]
	switch {
	case !ok:
		c = &CharacterSummary{CharacterID: id, Policy: d.Reason, PolicyID: d.Policy.ID, MaxAge: d.Policy.MaxAge}
		t.chars[id] = c
	case c.Policy == policy.ReasonErasureRequest && d.Reason != "" && d.Reason != policy.ReasonErasureRequest:
		// Met first through an erasure request: the policies' decision names the character.
		c.Policy, c.PolicyID, c.MaxAge = d.Reason, d.Policy.ID, d.Policy.MaxAge
	}
	return c
}

func (t *tally) select_(r policy.Record, d policy.Decision) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.selected++
	c := t.char(r.CharacterID, d)
	c.Selected++
	if c.Oldest.IsZero() || r.LastActive.Before(c.Oldest) {
		c.Oldest = r.LastActive
	}
	if t.withIDs {
		c.SessionIDs = append(c.SessionIDs, r.SessionID)
	}
	t.obs.Selected(r.CharacterID)
}

func (t *tally) skip(reason policy.Skip, r policy.Record, d policy.Decision, n int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.skipped[string(reason)] += n
	if reason == policy.SkipHeld {
		t.char(r.CharacterID, d).Held += n
	}
	t.obs.Skipped(string(reason), n)
}

func (t *tally) outcomes(characterID string, os []Outcome) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.chars[characterID]
	var deleted, failed int
	for _, o := range os {
		if o.Deleted {
			deleted++
		} else {
			failed++
		}
	}
	t.deleted += int64(deleted)
	t.failed += int64(failed)
	c.Deleted += int64(deleted)
	c.Failed += int64(failed)
	t.obs.Recorded(deleted, failed)
}

// heldAtClaim counts n selected sessions of r's character that a hold protected by the time
// their chunk was claimed: skipped as held, and not "not sent".
func (t *tally) heldAtClaim(r policy.Record, d policy.Decision, n int64) {
	t.skip(policy.SkipHeld, r, d, n)
	t.mu.Lock()
	t.claimHeld += n
	t.mu.Unlock()
}

// progress returns the counts so far.
func (t *tally) progress() (selected, deleted, failed int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.selected, t.deleted, t.failed
}

// fill copies the counts into s, characters sorted by ID.
func (t *tally) fill(s *Summary) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s.Selected, s.Deleted, s.Failed = t.selected, t.deleted, t.failed
	s.NotSent = max(t.selected-t.deleted-t.failed-t.claimHeld, 0)
	s.SkippedByReason = make(map[string]int64, len(t.skipped))
	s.Skipped = 0
	for k, v := range t.skipped {
		s.SkippedByReason[k] = v
		s.Skipped += v
	}
	s.Characters = make([]CharacterSummary, 0, len(t.chars))
	for _, c := range t.chars {
		s.Characters = append(s.Characters, *c)
	}
	slices.SortFunc(s.Characters, compareCharacters)
}

// compareCharacters orders a summary's characters as its tables show them: the exceptions
// first (sessions failed, then sessions held), then by ID in natural order (big-2 before
// big-10).
func compareCharacters(a, b CharacterSummary) int {
	rank := func(c CharacterSummary) int {
		switch {
		case c.Failed > 0:
			return 0
		case c.Held > 0:
			return 1
		}
		return 2
	}
	if c := cmp.Compare(rank(a), rank(b)); c != 0 {
		return c
	}
	return natural.Compare(a.CharacterID, b.CharacterID)
}
