package job

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/sethvargo/go-retry"
	"golang.org/x/time/rate"
)

// Class says what an answer from the API means for the job.
type Class int

// The classes of an Answer.
const (
	// Confirmed: the API confirmed the deletion of every ID in the request.
	Confirmed Class = iota + 1
	// Retryable: a network error, a timeout, 408, 429, 5xx, or a 2xx that did not confirm.
	Retryable
	// AuthRejected: 401 or 403. The run stops sending.
	AuthRejected
	// Permanent: any other 4xx. The request is split to find the IDs it is about.
	Permanent
)

// Answer is the result of one request.
type Answer struct {
	Class      Class
	StatusCode int           // 0 when no HTTP response arrived
	RetryAfter time.Duration // a 429's Retry-After, 0 when none
	Detail     string        // a short excerpt of the error or body, free of secrets
	Err        error
}

// Sender sends one delete request. It does not retry: the job owns retries, backoff, rate
// limiting and bisection.
type Sender interface {
	Delete(ctx context.Context, characterID string, sessionIDs []string) Answer
}

var (
	errPermanent = errors.New("the API refused the request")
	errAborted   = errors.New("the run stopped sending")
)

// maxErrorText is the longest error text recorded on a deletion row.
const maxErrorText = 300

// holdChecker is the part of the run's store a delivery needs.
type holdChecker interface {
	Held(ctx context.Context, characterID string, ids []string) ([]string, error)
}

// deliverer sends one chunk's claimed IDs until each is confirmed or has failed.
type deliverer struct {
	cfg     Config
	sender  Sender
	store   holdChecker
	limiter *rate.Limiter
	log     *slog.Logger
	// stopped reports whether the run stopped sending (key rejected, fatal error).
	stopped func() bool
	// keyRejected is called once an answer says the key was rejected.
	keyRejected func(Answer)
	// dbCtx bounds the store calls a delivery makes.
	dbCtx func() (context.Context, context.CancelFunc)
	// settle, if set, looks a refused single session up in its character's list.
	settle *settler
	// refusals counts chunks the API refused whole and stops the run at RefusalLimit in a row
	// (refusals.go). Nil: nothing is counted.
	refusals *refusalGuard
	// interrupted is closed when the run is told to stop (a signal). A delivery that is only
	// waiting (for a retry, a Retry-After or a rate token) has nothing in flight: it ends at
	// once, sending nothing more. A request in flight is not cancelled by it. Nil: never.
	interrupted <-chan struct{}
}

// settleRefused is the outcome of a single session the API refused (a 4xx other than 401, 403
// and 429): deleted, and said to be settled, when the character's list does not have it (a
// repeated delete of a session already gone may be answered so) and the list is credible (it
// shows a session the job knows is live); failed when the list has it, cannot be read, is no
// evidence, or there is no list to ask.
func (d *deliverer) settleRefused(ctx context.Context, characterID, id string, attempts int, last Answer) Outcome {
	refused := fmt.Sprintf("rejected with HTTP %d: %s", last.StatusCode, last.Detail)
	o := Outcome{SessionID: id, Attempts: attempts, HTTPStatus: last.StatusCode, Error: truncate(refused)}
	if d.settle == nil {
		return o
	}
	absent, memory, err := d.settle.absent(ctx, characterID, id)
	switch {
	case errors.Is(err, ErrKeyRejected):
		d.keyRejected(Answer{Class: AuthRejected, StatusCode: http.StatusUnauthorized})
		o.Error = truncate(refused + "; not settled: the API rejected the key")
	case err != nil:
		o.Error = truncate(refused + "; not settled: " + err.Error())
	case absent:
		d.log.Info("refused session settled: absent from the list", "character_id", characterID, "status", last.StatusCode)
		o.Deleted, o.Settled = true, true
		o.Error = truncate(fmt.Sprintf("settled: absent from the list after HTTP %d: %s", last.StatusCode, last.Detail))
	case memory == MemoryAdded:
		o.Error = truncate(refused + "; present in the list, and added to long-term memory")
	default:
		o.Error = truncate(refused + "; present in the list")
	}
	return o
}

// errInterrupted ends a wait for a retry when the run is told to stop.
var errInterrupted = errors.New("the run was told to stop while waiting to retry")

// deliver sends ids of one character and returns exactly one outcome per ID. prior is the
// number of requests that already carried these IDs (when bisecting); fresh says the IDs were
// claimed just now, after taking a rate token. A fresh call is a whole chunk: its refusals are
// counted by d.refusals.
func (d *deliverer) deliver(ctx context.Context, characterID string, ids []string, prior int, fresh bool) []Outcome {
	if !fresh || prior != 0 {
		return d.deliverPart(ctx, characterID, ids, prior, fresh, &chunkRefusals{})
	}
	chunk := &chunkRefusals{ids: len(ids)}
	out := d.deliverPart(ctx, characterID, ids, prior, fresh, chunk)
	for _, o := range out {
		if o.Deleted && !o.Settled {
			chunk.confirmed++
		}
	}
	d.refusals.chunkDone(chunk)
	return out
}

// deliverPart is deliver for a chunk or a part of it, noting single IDs refused in chunk.
func (d *deliverer) deliverPart(ctx context.Context, characterID string, ids []string, prior int, fresh bool, chunk *chunkRefusals) []Outcome {
	// wait bounds the waits between requests: they end when the run is told to stop, as
	// nothing is in flight then. Requests themselves run on ctx.
	//
	// A fresh chunk's claim is written: its first request goes out even when the run was told
	// to stop after the claim, like a request already in flight (it has the shutdown grace to
	// finish). Otherwise a signal between the claim and the request would leave the chunk
	// recorded failed without ever being sent. Only the waits after that request end early.
	wait, stopWaiting := context.WithCancelCause(ctx)
	defer stopWaiting(nil)
	var watching bool
	watchInterrupt := func() {
		if d.interrupted == nil || watching {
			return
		}
		watching = true
		go func() {
			select {
			case <-d.interrupted:
				stopWaiting(errInterrupted)
			case <-wait.Done():
			}
		}()
	}
	if !fresh || prior != 0 {
		watchInterrupt()
	}
	out := make([]Outcome, 0, len(ids))
	fail := func(ids []string, attempts, status int, text string) {
		for _, id := range ids {
			out = append(out, Outcome{SessionID: id, Attempts: attempts, HTTPStatus: status, Error: truncate(text)})
		}
	}

	attempts := 0
	var last Answer
	var retryAfter time.Duration
	var holdErr error
	checkHolds := func() error {
		dctx, cancel := d.dbCtx()
		defer cancel()
		held, err := d.store.Held(dctx, characterID, ids)
		if err != nil {
			holdErr = fmt.Errorf("check holds: %w", err)
			return holdErr
		}
		if len(held) > 0 {
			d.log.Warn("hold placed during the run: not sending these sessions again",
				"character_id", characterID, "sessions", len(held))
			fail(held, prior+attempts, last.StatusCode, "a hold was placed during the run; not sent again")
			ids = without(ids, held)
		}
		return nil
	}

	err := retry.Do(wait, d.backoff(&retryAfter), func(wait context.Context) error {
		if d.stopped() || d.refusals.stopped() {
			return errAborted
		}
		// A fresh chunk's first request goes out right after its claim, which took a rate
		// token and checked the holds. Every other request waits for a token first, then checks
		// the holds again, so a hold committed before the request is honoured.
		if !(fresh && attempts == 0) {
			if err := d.limiter.Wait(wait); err != nil {
				return waitCause(wait, err)
			}
			if err := checkHolds(); err != nil {
				return err
			}
			if len(ids) == 0 {
				return nil
			}
			if d.stopped() || d.refusals.stopped() {
				return errAborted
			}
		}
		attempts++
		tctx, cancel := context.WithTimeout(ctx, d.cfg.RequestTimeout)
		start := time.Now()
		last = d.sender.Delete(tctx, characterID, ids)
		cancel()
		watchInterrupt()
		d.cfg.Observer.Requested(last, time.Since(start))
		switch last.Class {
		case Confirmed:
			return nil
		case AuthRejected:
			d.keyRejected(last)
			return ErrKeyRejected
		case Permanent:
			return errPermanent
		default:
			retryAfter = min(last.RetryAfter, d.cfg.MaxRetryAfter)
			if attempts < d.cfg.MaxAttempts {
				d.cfg.Observer.Retrying(last)
			}
			d.log.Debug("retrying request", "character_id", characterID, "ids", len(ids),
				"attempt", attempts, "status", last.StatusCode, "detail", last.Detail, "retry_after", retryAfter)
			return retry.RetryableError(answerError(last))
		}
	})
	total := prior + attempts
	switch {
	case len(ids) == 0:
	case err == nil:
		for _, id := range ids {
			out = append(out, Outcome{SessionID: id, Deleted: true, Attempts: total, HTTPStatus: last.StatusCode})
		}
	case holdErr != nil:
		fail(ids, total, last.StatusCode, "not sent again: could not "+holdErr.Error())
	case errors.Is(err, errPermanent) && len(ids) > 1:
		// One bad ID must not fail the others: split and send each half on its own.
		half := len(ids) / 2
		left, right := ids[:half], ids[half:]
		out = append(out, d.deliverPart(ctx, characterID, left, total, false, chunk)...)
		out = append(out, d.deliverPart(ctx, characterID, right, total, false, chunk)...)
	case errors.Is(err, errPermanent):
		// A refusal counts whether or not the session was settled: a chunk refused at every ID
		// is a refused request, whatever the list says.
		chunk.refusedSingle(last.StatusCode, last.Detail)
		out = append(out, d.settleRefused(ctx, characterID, ids[0], total, last))
	case errors.Is(err, ErrKeyRejected):
		fail(ids, total, last.StatusCode, fmt.Sprintf("the API rejected the key (HTTP %d)", last.StatusCode))
	case errors.Is(err, errAborted):
		fail(ids, total, last.StatusCode, "not sent: the run stopped sending")
	case errors.Is(err, errInterrupted) && total == 0:
		fail(ids, total, 0, "not sent: the run was told to stop")
	case ctx.Err() != nil:
		// The request in flight was cancelled (the shutdown grace ran out): that is what
		// happened to these sessions, whatever the retry wait saw after it.
		fail(ids, total, last.StatusCode, "no confirmation before the run was cancelled")
	case errors.Is(err, errInterrupted):
		fail(ids, total, last.StatusCode, "not sent again: the run was told to stop while waiting to retry")
	case attempts == 0:
		fail(ids, total, 0, "not sent: "+err.Error())
	default:
		fail(ids, total, last.StatusCode, fmt.Sprintf("no confirmation after %d attempts: %s", attempts, answerText(last)))
	}
	return out
}

// waitCause returns the cause of ctx's end if err came from it, else err.
func waitCause(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); cause != nil {
		return cause
	}
	return err
}

// backoff returns a fresh backoff for one request (see newBackoff).
func (d *deliverer) backoff(retryAfter *time.Duration) retry.Backoff {
	return newBackoff(d.cfg, retryAfter)
}

func answerError(a Answer) error {
	if a.Err != nil {
		return a.Err
	}
	return errors.New(answerText(a))
}

func answerText(a Answer) string {
	switch {
	case a.StatusCode != 0 && a.Detail != "":
		return fmt.Sprintf("HTTP %d: %s", a.StatusCode, a.Detail)
	case a.StatusCode != 0:
		return fmt.Sprintf("HTTP %d", a.StatusCode)
	case a.Detail != "":
		return a.Detail
	case a.Err != nil:
		return a.Err.Error()
	}
	return "no answer"
}

// without returns ids minus drop, keeping order.
func without(ids, drop []string) []string {
	skip := make(map[string]bool, len(drop))
	for _, id := range drop {
		skip[id] = true
	}
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if !skip[id] {
			out = append(out, id)
		}
	}
	return out
}

// truncate shortens s to maxErrorText bytes without splitting a character.
func truncate(s string) string {
	if len(s) <= maxErrorText {
		return s
	}
	s = s[:maxErrorText]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}
