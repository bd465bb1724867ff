package job

import (
	"fmt"
	"sync"
)

// RefusalLimit is how many chunks in a row the API may refuse whole before the run stops.
const RefusalLimit = 3

// RefusedError is what a run stops with when the API refused RefusalLimit chunks in a row
// whole: split down to single IDs, every one refused with the same status. The request itself
// is refused then, not the IDs (a wrong endpoint, a changed API, a proxy in the way), and
// splitting every other chunk would cost 2N-1 requests each for nothing.
type RefusedError struct {
	// Chunks is how many chunks in a row were refused whole.
	Chunks int
	// StatusCode is the status they were all refused with.
	StatusCode int
	// Detail is the last refusal's short excerpt of the answer, free of secrets.
	Detail string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("the API refuses the requests, not the session IDs: %d chunks in a row were refused "+
		"at every single ID with HTTP %d (%s); the run stops instead of splitting every chunk", e.Chunks, e.StatusCode, e.Detail)
}

// refusalGuard counts chunks the API refused whole, in a row, and stops the run at the limit.
// A chunk with a confirmed deletion starts the count again; a chunk of one ID, or one that
// failed for another reason, neither counts nor starts it again. A nil guard does nothing.
type refusalGuard struct {
	limit int
	stop  func(error) // called once, when the limit is reached

	mu      sync.Mutex
	inARow  int
	status  int
	tripped bool
}

// newRefusalGuard returns a guard that calls stop with a *RefusedError once limit chunks in a
// row were refused whole.
func newRefusalGuard(limit int, stop func(error)) *refusalGuard {
	return &refusalGuard{limit: limit, stop: stop}
}

// chunkRefusals is what one chunk's delivery saw: its IDs, the single IDs refused as
// Permanent and with which statuses, and how many were confirmed.
type chunkRefusals struct {
	ids       int
	refused   int
	statuses  map[int]bool
	detail    string // the last refusal's
	confirmed int
}

// refusedSingle notes one single ID refused with status.
func (c *chunkRefusals) refusedSingle(status int, detail string) {
	if c.statuses == nil {
		c.statuses = map[int]bool{}
	}
	c.refused++
	c.statuses[status] = true
	c.detail = detail
}

// refusedWhole reports whether the chunk was refused at every single ID with one status.
func (c *chunkRefusals) refusedWhole() bool {
	return c.ids > 1 && c.refused == c.ids && len(c.statuses) == 1
}

// chunkDone counts a chunk's delivery and stops the run when the limit is reached.
func (g *refusalGuard) chunkDone(c *chunkRefusals) {
	if g == nil {
		return
	}
	g.mu.Lock()
	var trip *RefusedError
	switch {
	case c.refusedWhole():
		var status int
		for s := range c.statuses {
			status = s
		}
		if g.inARow > 0 && status != g.status {
			g.inARow = 0
		}
		g.inARow++
		g.status = status
		if g.inARow >= g.limit && !g.tripped {
			g.tripped = true
			trip = &RefusedError{Chunks: g.inARow, StatusCode: status, Detail: c.detail}
		}
	case c.confirmed > 0:
		g.inARow = 0
	}
	g.mu.Unlock()
	if trip != nil && g.stop != nil {
		g.stop(trip)
	}
}

// stopped reports whether the guard stopped the run: no more requests should go out.
func (g *refusalGuard) stopped() bool {
	if g == nil {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.tripped
}
