package job

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"github.com/sethvargo/go-retry"
	"golang.org/x/time/rate"
)

// ListedSession is one session of a character's list at the API.
type ListedSession struct {
	SessionID string
	// Start is the list's date and time of the session (when it started, not when it was last
	// active); zero when the list gave none.
	Start time.Time
	// Memory is what the list said of is_added_to_memory.
	Memory MemoryFlag
}

// Lister lists a character's sessions at the API, handing each to fn as it is read. It sends
// one request and does not retry. Its Answer is Confirmed only when the whole list was read;
// after any other answer fn may have seen part of it.
type Lister interface {
	List(ctx context.Context, characterID string, fn func(ListedSession) error) Answer
}

// listAll lists characterID through l with the job's retry rules (see try). begin is called
// before each try, so the caller can forget what a failed try showed. It returns the last
// answer, and nil, ErrKeyRejected, errPermanent or why no try gave a whole list.
func listAll(ctx context.Context, l Lister, cfg Config, limiter *rate.Limiter, characterID string,
	begin func(), fn func(ListedSession) error) (Answer, error) {
	last, attempts, err := try(ctx, cfg, limiter, func(ctx context.Context) Answer {
		begin()
		return l.List(ctx, characterID, fn)
	})
	if err != nil && !errors.Is(err, ErrKeyRejected) && !errors.Is(err, errPermanent) && ctx.Err() == nil {
		err = fmt.Errorf("no complete list after %d attempts: %s", attempts, answerText(last))
	}
	return last, err
}

// try sends one request through call until it is Confirmed, with the rules of a delete: a rate
// token before each try, each try bounded by RequestTimeout, retryable answers retried with the
// same backoff, Retry-After and attempt budget. It returns the last answer, the number of tries,
// and nil, ErrKeyRejected, errPermanent or the last retryable error.
func try(ctx context.Context, cfg Config, limiter *rate.Limiter, call func(ctx context.Context) Answer) (Answer, int, error) {
	var last Answer
	var retryAfter time.Duration
	attempts := 0
	err := retry.Do(ctx, newBackoff(cfg, &retryAfter), func(ctx context.Context) error {
		if err := limiter.Wait(ctx); err != nil {
			return err
		}
		attempts++
		tctx, cancel := context.WithTimeout(ctx, cfg.RequestTimeout)
		start := time.Now()
		last = call(tctx)
		cancel()
		cfg.Observer.Requested(last, time.Since(start))
		switch last.Class {
		case Confirmed:
			return nil
		case AuthRejected:
			return ErrKeyRejected
		case Permanent:
			return errPermanent
		}
		retryAfter = min(last.RetryAfter, cfg.MaxRetryAfter)
		if attempts < cfg.MaxAttempts {
			cfg.Observer.Retrying(last)
		}
		return retry.RetryableError(answerError(last))
	})
	return last, attempts, err
}

// newBackoff returns a fresh backoff for one request: exponential from BackoffBase with ±20%
// jitter, capped at BackoffMax, at most MaxAttempts tries, and never shorter than a Retry-After
// the last answer asked for.
func newBackoff(cfg Config, retryAfter *time.Duration) retry.Backoff {
	b := retry.NewExponential(cfg.BackoffBase)
	b = retry.WithJitterPercent(20, b)
	b = retry.WithCappedDuration(cfg.BackoffMax, b)
	b = retry.WithMaxRetries(uint64(cfg.MaxAttempts-1), b)
	return retry.BackoffFunc(func() (time.Duration, bool) {
		next, stop := b.Next()
		if stop {
			return 0, true
		}
		next = max(next, *retryAfter)
		*retryAfter = 0
		return next, false
	})
}

// settler decides, for a single session the API refused to delete, whether the session is gone
// anyway: it lists the character once per run (the first time one of its sessions needs it) and
// keeps the list as a set of 64-bit FNV-1a hashes of the IDs, with what the list said of each one's
// is_added_to_memory: 9 bytes and a map slot per session.
// Two IDs sharing a hash can only make an absent session look present (it then fails, as without
// a list), never the reverse. A list is evidence only when it is credible: it shows at least one
// session of the character that the store knows is live (see witness); an empty list, or one
// that shows only sessions already deleted, settles nothing.
// What each list says of every session's is_added_to_memory is also recorded through memory (nil:
// not recorded), batched as it comes, so the settler keeps no more per session than before.
type settler struct {
	lister  Lister
	live    LiveChecker
	cfg     Config
	limiter *rate.Limiter
	memory  *runMemory

	mu    sync.Mutex
	lists map[string]*listing
}

// listing is one character's list: ready is closed once ids or err is set.
type listing struct {
	ready chan struct{}
	ids   map[uint64]MemoryFlag
	ans   Answer
	err   error
}

func newSettler(l Lister, live LiveChecker, cfg Config, limiter *rate.Limiter, memory *runMemory) *settler {
	return &settler{lister: l, live: live, cfg: cfg, limiter: limiter, memory: memory, lists: make(map[string]*listing)}
}

// absent reports whether sessionID is missing from characterID's list and, when it is listed,
// what the list said of its is_added_to_memory. An error means the list could not be read or is
// no evidence (it is not tried again in this run); it wraps ErrKeyRejected when the API refused
// the key.
func (s *settler) absent(ctx context.Context, characterID, sessionID string) (bool, MemoryFlag, error) {
	s.mu.Lock()
	l, ok := s.lists[characterID]
	if !ok {
		l = &listing{ready: make(chan struct{})}
		s.lists[characterID] = l
	}
	s.mu.Unlock()
	if !ok {
		s.fetch(ctx, characterID, l)
	}
	select {
	case <-l.ready:
	case <-ctx.Done():
		return false, MemoryUnstated, ctx.Err()
	}
	if l.err != nil {
		return false, MemoryUnstated, l.err
	}
	memory, present := l.ids[idHash(sessionID)]
	return !present, memory, nil
}

func (s *settler) fetch(ctx context.Context, characterID string, l *listing) {
	defer close(l.ready)
	var ids map[uint64]MemoryFlag
	var w *witness
	memory := s.memory.begin(characterID)
	l.ans, l.err = listAll(ctx, s.lister, s.cfg, s.limiter, characterID,
		func() { ids, w = make(map[uint64]MemoryFlag), &witness{}; memory.reset() },
		func(s ListedSession) error {
			ids[idHash(s.SessionID)] = s.Memory
			w.add(s.SessionID)
			memory.add(s)
			return nil
		})
	memory.finish(l.err == nil)
	if l.err != nil {
		l.err = fmt.Errorf("list the sessions of %s: %w", characterID, l.err)
		return
	}
	if l.err = w.credible(ctx, s.live, characterID); l.err == nil {
		l.ids = ids
	}
}

func idHash(id string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(id))
	return h.Sum64()
}
