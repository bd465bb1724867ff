package job

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/convai-retention/retention/policy"
)

// DiscoverBatch is how many listed sessions discover checks against the store at once.
const DiscoverBatch = 5_000

// MaxClockSkew is how far ahead of the database's clock the API's may be: a latest interaction
// up to this much in the future is taken as now; one further ahead is no session's, and the
// session is skipped as malformed.
const MaxClockSkew = 24 * time.Hour

// Detailer reads one session's interactions at the API and returns the latest one's time (zero
// when none carried a readable time). It sends one request and does not retry.
type Detailer interface {
	Details(ctx context.Context, characterID, sessionID string) (time.Time, Answer)
}

// DiscoverStore is what discover needs of the store.
type DiscoverStore interface {
	// Now returns the database's clock.
	Now(ctx context.Context) (time.Time, error)
	// Rules returns the policies with their thresholds for cutoff, and the active holds.
	Rules(ctx context.Context, cutoff time.Time) ([]policy.Policy, []policy.Hold, error)
	// KnownCharacters returns the characters the database knows: those with a policy of their
	// own, a session in the source or a recorded deletion; sorted.
	KnownCharacters(ctx context.Context) ([]string, error)
	MissingFinder
	// AddDiscovered adds sessions found at the API to the built-in source and records that they
	// were discovered; sessions the source has by then are left as they are. It returns how many
	// it added.
	AddDiscovered(ctx context.Context, characterID string, found []Discovered) (int64, error)
}

// Discovered is a session found at the API that the app had not stored.
type Discovered struct {
	SessionID string
	// LastActive is its latest interaction, from the details endpoint.
	LastActive time.Time
	// Memory is what the list said of its is_added_to_memory; the store records it.
	Memory MemoryFlag
}

// DiscoverOptions says what discover does.
type DiscoverOptions struct {
	// Characters limits discover to these; empty for every character the database knows that a
	// policy lets the job delete.
	Characters []string
	// DryRun counts and adds nothing.
	DryRun bool
	// CanAdd is false when the source is not the built-in one: discover then counts only.
	CanAdd bool
}

// DiscoverSummary is what discover found.
type DiscoverSummary struct {
	DryRun     bool                  `json:"dry_run"`
	Added      bool                  `json:"added"`
	Characters []DiscoveredCharacter `json:"characters"`
}

// DiscoveredCharacter is one character's part of a DiscoverSummary.
type DiscoveredCharacter struct {
	CharacterID string `json:"character_id"`
	// Listed counts the sessions in the character's list at the API.
	Listed int64 `json:"listed"`
	// Missing counts those the app had not stored (and never deleted).
	Missing int64 `json:"missing"`
	// Expired counts the missing sessions whose latest interaction is past the threshold.
	Expired int64 `json:"expired"`
	// Recent counts the missing sessions whose list date is after the threshold: not expired,
	// so their details were not read and they are not added yet.
	Recent int64 `json:"recent"`
	// Undated counts the missing sessions whose details gave no interaction time: never added.
	Undated int64 `json:"undated"`
	// InMemory counts the missing sessions the list showed with is_added_to_memory true: the app
	// never stored them, and Convai drew long-term memory from them.
	InMemory int64 `json:"in_memory,omitempty"`
	// Malformed counts the listed sessions that cannot be added: an ID that is not well-formed
	// (policy.ValidIDs; one too long is not even read), or details whose latest interaction is
	// more than MaxClockSkew in the future or outside the years 1 to 9999
	// (policy.ValidLastActive). They are skipped; the rest of the character is discovered.
	Malformed int64 `json:"malformed"`
	// Added counts the sessions added to the source.
	Added int64 `json:"added"`
	// Error says why the character could not be discovered, or was skipped.
	Error string `json:"error,omitempty"`
}

// Discover lists the sessions of each character (Options.Characters, or every character the
// database knows whose policy lets the job delete) and finds those the app never stored. For a
// missing session whose list date is already past the character's threshold it reads the
// details: its latest interaction is its last activity (the list's date is when the session
// started, and a session may have gone on since). Expired or not, every session whose details
// were read is added to the built-in source with that time, unless DryRun or !CanAdd; a run
// then deletes the expired ones under the usual rules and holds. Lists and details are retried
// like deletes. Errors wrap ErrKeyRejected when the API refused the key.
func Discover(ctx context.Context, store DiscoverStore, l Lister, det Detailer, cfg Config, o DiscoverOptions) (*DiscoverSummary, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	now, err := store.Now(ctx)
	if err != nil {
		return nil, err
	}
	policies, holds, err := store.Rules(ctx, now)
	if err != nil {
		return nil, err
	}
	rules, err := policy.NewSet(policies, holds)
	if err != nil {
		return nil, err
	}
	chars := o.Characters
	if len(chars) == 0 {
		if chars, err = store.KnownCharacters(ctx); err != nil {
			return nil, err
		}
	}
	limit := rate.Inf
	if cfg.Rate > 0 {
		limit = rate.Limit(cfg.Rate)
	}
	d := &discoverer{cfg: cfg, log: cfg.Logger, store: store, lister: l, det: det, o: o, limiter: rate.NewLimiter(limit, 1)}
	sum := &DiscoverSummary{DryRun: o.DryRun, Added: o.CanAdd && !o.DryRun, Characters: []DiscoveredCharacter{}}
	for _, c := range chars {
		dec := rules.InForce(c)
		dc := DiscoveredCharacter{CharacterID: c}
		if !dec.Delete {
			if len(o.Characters) > 0 {
				dc.Error = fmt.Sprintf("not discovered: no policy lets the job delete its sessions (%s)", dec.Reason)
				sum.Characters = append(sum.Characters, dc)
			}
			continue
		}
		err := d.character(ctx, dec.Policy.Threshold, &dc)
		sum.Characters = append(sum.Characters, dc)
		if err != nil {
			return sum, err
		}
	}
	return sum, nil
}

type discoverer struct {
	cfg     Config
	log     *slog.Logger
	store   DiscoverStore
	lister  Lister
	det     Detailer
	o       DiscoverOptions
	limiter *rate.Limiter
}

// character discovers one character's sessions into dc. It returns an error only for what
// stops discover altogether: a rejected key, the database, a cancelled context.
func (d *discoverer) character(ctx context.Context, threshold time.Time, dc *DiscoveredCharacter) error {
	candidates, listed, err := d.listCandidates(ctx, threshold, dc)
	if err != nil || !listed {
		return err
	}
	found, err := d.dateCandidates(ctx, threshold, dc, candidates)
	if err != nil {
		return err
	}
	if d.o.DryRun || !d.o.CanAdd {
		return nil
	}
	for start := 0; start < len(found); start += DiscoverBatch {
		n, err := d.store.AddDiscovered(ctx, dc.CharacterID, found[start:min(start+DiscoverBatch, len(found))])
		if err != nil {
			return err
		}
		dc.Added += n
	}
	d.log.Info("character discovered", "character_id", dc.CharacterID, "listed", dc.Listed, "missing", dc.Missing,
		"expired", dc.Expired, "added", dc.Added, "in_memory", dc.InMemory)
	return nil
}

// listCandidates lists the character's sessions and returns those missing from the source that
// started at or before the threshold (or have no list date), counting what the list showed in
// dc. listed is false when the list could not be read: dc.Error says why, and the character is
// done.
func (d *discoverer) listCandidates(ctx context.Context, threshold time.Time, dc *DiscoveredCharacter) (candidates []ListedSession, listed bool, err error) {
	m := &missingSessions{store: d.store, threshold: threshold, dc: dc}
	var batchErr error
	_, err = listAll(ctx, d.lister, d.cfg, d.limiter, dc.CharacterID,
		func() {
			m.candidates, m.batch, batchErr = nil, nil, nil
			dc.Listed, dc.Missing, dc.Recent, dc.Malformed, dc.InMemory = 0, 0, 0, 0, 0
		},
		func(s ListedSession) error {
			dc.Listed++
			if !policy.ValidIDs(dc.CharacterID, s.SessionID) {
				dc.Malformed++ // an over-long ID comes empty: it was never read
				return nil
			}
			m.batch = append(m.batch, s)
			if len(m.batch) == DiscoverBatch {
				if err := m.flush(ctx); err != nil {
					batchErr = err
					return err
				}
			}
			return nil
		})
	if err == nil {
		err = m.flush(ctx)
		batchErr = err
	}
	switch {
	case batchErr != nil:
		return nil, false, batchErr
	case errors.Is(err, ErrKeyRejected):
		return nil, false, fmt.Errorf("list the sessions of %s: %w", dc.CharacterID, err)
	case ctx.Err() != nil:
		return nil, false, ctx.Err()
	case err != nil:
		dc.Error = "could not list: " + err.Error()
		d.log.Warn("could not list a character's sessions", "character_id", dc.CharacterID, "err", err)
		return nil, false, nil
	}
	return m.candidates, true, nil
}

// missingSessions asks the store, a batch of listed sessions at a time, which are missing from
// the source, and keeps those that may have expired as candidates.
type missingSessions struct {
	store      DiscoverStore
	threshold  time.Time
	dc         *DiscoveredCharacter
	batch      []ListedSession
	candidates []ListedSession // missing, and started at or before the threshold
}

// flush asks the store about the batch and empties it.
func (m *missingSessions) flush(ctx context.Context) error {
	if len(m.batch) == 0 {
		return nil
	}
	ids := make([]string, len(m.batch))
	listed := make(map[string]ListedSession, len(m.batch))
	for i, s := range m.batch {
		ids[i] = s.SessionID
		listed[s.SessionID] = s
	}
	m.batch = m.batch[:0]
	missing, err := m.store.Missing(ctx, m.dc.CharacterID, ids)
	if err != nil {
		return err
	}
	for _, id := range missing {
		m.dc.Missing++
		s := listed[id]
		if s.Memory == MemoryAdded {
			m.dc.InMemory++
		}
		// A session without a list date may be old: its details decide.
		if !s.Start.IsZero() && s.Start.After(m.threshold) {
			m.dc.Recent++
			continue
		}
		m.candidates = append(m.candidates, s)
	}
	return nil
}

// dateCandidates reads the details of the candidates and returns those with a usable latest
// interaction, counting in dc the undated, the out-of-range and the expired.
func (d *discoverer) dateCandidates(ctx context.Context, threshold time.Time, dc *DiscoveredCharacter, candidates []ListedSession) ([]Discovered, error) {
	var found []Discovered
	ids := make([]string, len(candidates))
	for i, c := range candidates {
		ids[i] = c.SessionID
	}
	details := d.allDetails(ctx, dc.CharacterID, ids)
	now, err := d.store.Now(ctx)
	if err != nil {
		return nil, err
	}
	for i, r := range details {
		id, latest, err := ids[i], r.latest, r.err
		switch {
		case errors.Is(err, ErrKeyRejected):
			return nil, fmt.Errorf("read the details of a session of %s: %w", dc.CharacterID, err)
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case err != nil:
			dc.Undated++
			d.log.Warn("could not read a session's details: not added", "character_id", dc.CharacterID, "err", err)
			continue
		case latest.IsZero():
			dc.Undated++
			continue
		case !policy.ValidLastActive(latest) || latest.After(now.Add(MaxClockSkew)):
			dc.Malformed++
			d.log.Warn("a session's latest interaction is out of range: not added", "character_id", dc.CharacterID,
				"session_id", id, "latest", latest.Format(time.RFC3339Nano), "now", now.Format(time.RFC3339Nano))
			continue
		case latest.After(now):
			latest = now // the API's clock is ahead: the session is active now
		}
		if !latest.After(threshold) {
			dc.Expired++
		}
		found = append(found, Discovered{SessionID: id, LastActive: latest, Memory: candidates[i].Memory})
	}
	return found, nil
}

// detailResult is what the details of one session said.
type detailResult struct {
	latest time.Time
	err    error
}

// allDetails reads the details of every candidate, at most Concurrency at a time under the
// run's rate limiter, and returns them in the candidates' order. A rejected key stops the rest:
// those not read carry the key's error too.
func (d *discoverer) allDetails(ctx context.Context, characterID string, candidates []string) []detailResult {
	out := make([]detailResult, len(candidates))
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(max(d.cfg.Concurrency, 1), len(candidates)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(candidates) {
					return
				}
				if err := context.Cause(ctx); err != nil {
					out[i].err = err
					continue
				}
				out[i].latest, out[i].err = d.details(ctx, characterID, candidates[i])
				if errors.Is(out[i].err, ErrKeyRejected) {
					cancel(out[i].err)
				}
			}
		})
	}
	wg.Wait()
	return out
}

// details reads one session's latest interaction with the job's retry rules.
func (d *discoverer) details(ctx context.Context, characterID, sessionID string) (time.Time, error) {
	var latest time.Time
	last, attempts, err := try(ctx, d.cfg, d.limiter, func(ctx context.Context) Answer {
		var a Answer
		latest, a = d.det.Details(ctx, characterID, sessionID)
		return a
	})
	if err != nil && !errors.Is(err, ErrKeyRejected) && ctx.Err() == nil {
		return time.Time{}, fmt.Errorf("no details after %d attempts: %s", attempts, answerText(last))
	}
	return latest, err
}
