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

// deliverPart is deliver for a chunk or a part of it, noting single IDs refused in chunk: it
// sends the IDs with retries (part.attempt) and turns how that ended into outcomes
// (part.outcomes), splitting a refused request in two.
func (d *deliverer) deliverPart(ctx context.Context, characterID string, ids []string, prior int, fresh bool, chunk *chunkRefusals) []Outcome {
	p := &part{d: d, ctx: ctx, characterID: characterID, ids: ids, prior: prior, fresh: fresh, chunk: chunk,
		out: make([]Outcome, 0, len(ids))}
	// wait bounds the waits between requests: they end when the run is told to stop, as
	// nothing is in flight then. Requests themselves run on ctx.
	//
	// A fresh chunk's claim is written: its first request goes out even when the run was told
	// to stop after the claim, like a request already in flight (it has the shutdown grace to
	// finish). Otherwise a signal between the claim and the request would leave the chunk
	// recorded failed without ever being sent. Only the waits after that request end early.
	p.wait, p.stopWaiting = context.WithCancelCause(ctx)
	defer p.stopWaiting(nil)
	if !fresh || prior != 0 {
		p.watchInterrupt()
	}
	err := retry.Do(p.wait, d.backoff(&p.retryAfter), p.attempt)
	return p.outcomes(err)
}

// part is one deliverPart: the IDs still to send, the requests made for them and the last
// answer, and the outcomes so far.
type part struct {
	d           *deliverer
	ctx         context.Context
	characterID string
	ids         []string
	prior       int
	fresh       bool
	chunk       *chunkRefusals

	// wait is ctx, also ended (errInterrupted) once the run is told to stop and watching.
	wait        context.Context
	stopWaiting context.CancelCauseFunc
	watching    bool

	out        []Outcome
	attempts   int
	last       Answer
	retryAfter time.Duration
	// holdErr is set when the holds could not be checked before a request: the IDs were not
	// sent again.
	holdErr error
}

// watchInterrupt ends p.wait when the run is told to stop; once, and only if it can be.
func (p *part) watchInterrupt() {
	if p.d.interrupted == nil || p.watching {
		return
	}
	p.watching = true
	go func() {
		select {
		case <-p.d.interrupted:
			p.stopWaiting(errInterrupted)
		case <-p.wait.Done():
		}
	}()
}

// fail adds a failed outcome for each of ids.
func (p *part) fail(ids []string, attempts, status int, text string) {
	for _, id := range ids {
		p.out = append(p.out, Outcome{SessionID: id, Attempts: attempts, HTTPStatus: status, Error: truncate(text)})
	}
}

// checkHolds fails the IDs a hold placed during the run now protects, and sends the rest.
func (p *part) checkHolds() error {
	dctx, cancel := p.d.dbCtx()
	defer cancel()
	held, err := p.d.store.Held(dctx, p.characterID, p.ids)
	if err != nil {
		p.holdErr = fmt.Errorf("check holds: %w", err)
		return p.holdErr
	}
	if len(held) > 0 {
		p.d.log.Warn("hold placed during the run: not sending these sessions again",
			"character_id", p.characterID, "sessions", len(held))
		p.fail(held, p.prior+p.attempts, p.last.StatusCode, "a hold was placed during the run; not sent again")
		p.ids = without(p.ids, held)
	}
	return nil
}

// attempt is one try of retry.Do: unless it is a fresh chunk's first request, it waits for a
// rate token and checks the holds again; then it sends the request (send).
func (p *part) attempt(wait context.Context) error {
	d := p.d
	if d.stopped() || d.refusals.stopped() {
		return errAborted
	}
	// A fresh chunk's first request goes out right after its claim, which took a rate
	// token and checked the holds. Every other request waits for a token first, then checks
	// the holds again, so a hold committed before the request is honoured.
	if !(p.fresh && p.attempts == 0) {
		if err := d.limiter.Wait(wait); err != nil {
			return waitCause(wait, err)
		}
		if err := p.checkHolds(); err != nil {
			return err
		}
		if len(p.ids) == 0 {
			return nil
		}
		if d.stopped() || d.refusals.stopped() {
			return errAborted
		}
	}
	return p.send()
}

// send makes one request and says what its answer means for retry.Do: nil when confirmed, a
// retryable error for a retryable answer, a final error otherwise.
func (p *part) send() error {
	d := p.d
	p.attempts++
	tctx, cancel := context.WithTimeout(p.ctx, d.cfg.RequestTimeout)
	start := time.Now()
	p.last = d.sender.Delete(tctx, p.characterID, p.ids)
	cancel()
	p.watchInterrupt()
	d.cfg.Observer.Requested(p.last, time.Since(start))
	switch p.last.Class {
	case Confirmed:
		return nil
	case AuthRejected:
		d.keyRejected(p.last)
		return ErrKeyRejected
	case Permanent:
		return errPermanent
	default:
		p.retryAfter = min(p.last.RetryAfter, d.cfg.MaxRetryAfter)
		if p.attempts < d.cfg.MaxAttempts {
			d.cfg.Observer.Retrying(p.last)
		}
		d.log.Debug("retrying request", "character_id", p.characterID, "ids", len(p.ids),
			"attempt", p.attempts, "status", p.last.StatusCode, "detail", p.last.Detail, "retry_after", p.retryAfter)
		return retry.RetryableError(answerError(p.last))
	}
}

// outcomes adds the outcomes of the IDs left after retry.Do ended with err, and returns every
// outcome of the part. A refused request of several IDs is split in two, each half delivered on
// its own; a refused single ID is settled (settleRefused).
func (p *part) outcomes(err error) []Outcome {
	ids, last, ctx := p.ids, p.last, p.ctx
	total := p.prior + p.attempts
	switch {
	case len(ids) == 0:
	case err == nil:
		for _, id := range ids {
			p.out = append(p.out, Outcome{SessionID: id, Deleted: true, Attempts: total, HTTPStatus: last.StatusCode})
		}
	case p.holdErr != nil:
		p.fail(ids, total, last.StatusCode, "not sent again: could not "+p.holdErr.Error())
	case errors.Is(err, errPermanent) && len(ids) > 1:
		// One bad ID must not fail the others: split and send each half on its own.
		half := len(ids) / 2
		left, right := ids[:half], ids[half:]
		p.out = append(p.out, p.d.deliverPart(ctx, p.characterID, left, total, false, p.chunk)...)
		p.out = append(p.out, p.d.deliverPart(ctx, p.characterID, right, total, false, p.chunk)...)
	case errors.Is(err, errPermanent):
		// A refusal counts whether or not the session was settled: a chunk refused at every ID
		// is a refused request, whatever the list says.
		p.chunk.refusedSingle(last.StatusCode, last.Detail)
		p.out = append(p.out, p.d.settleRefused(ctx, p.characterID, ids[0], total, last))
	case errors.Is(err, ErrKeyRejected):
		p.fail(ids, total, last.StatusCode, fmt.Sprintf("the API rejected the key (HTTP %d)", last.StatusCode))
	case errors.Is(err, errAborted):
		p.fail(ids, total, last.StatusCode, "not sent: the run stopped sending")
	case errors.Is(err, errInterrupted) && total == 0:
		p.fail(ids, total, 0, "not sent: the run was told to stop")
	case ctx.Err() != nil:
		// The request in flight was cancelled (the shutdown grace ran out): that is what
		// happened to these sessions, whatever the retry wait saw after it.
		p.fail(ids, total, last.StatusCode, "no confirmation before the run was cancelled")
	case errors.Is(err, errInterrupted):
		p.fail(ids, total, last.StatusCode, "not sent again: the run was told to stop while waiting to retry")
	case p.attempts == 0:
		p.fail(ids, total, 0, "not sent: "+err.Error())
	default:
		p.fail(ids, total, last.StatusCode, fmt.Sprintf("no confirmation after %d attempts: %s", p.attempts, answerText(last)))
	}
	return p.out
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
