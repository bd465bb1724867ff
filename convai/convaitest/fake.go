// Package convaitest provides Fake, an http.Handler that stands in for Convai's chat-history
// endpoints (delete, list and details) and its long-term memory endpoints (list, delete,
// delete-all, and the deletion of an end user) in tests and demos. It holds sessions per
// character with their interaction times (AddSession), and end users' memories per character
// (AddMemories), checks the key and the body like the real API, removes what it is asked to
// delete and remembers what it deleted, injects faults (errors, rate limits, hangs, dropped connections, answers that
// are not confirmations, deletions whose answer is lost) at seeded random rates, and records
// every request it answered and the most requests it ever had in flight.
//
//	fake := convaitest.New(convaitest.Options{APIKey: "k"})
//	srv := httptest.NewServer(fake)
//	defer srv.Close()
//	defer fake.Close()
package convaitest

import (
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// Path is the path of the delete endpoint; ListPath, DetailsPath and the memory paths
// (MemoryListPath, MemoryDeletePath, MemoryDeleteAllPath, EndUserDeletePath) are the others.
const Path = "/character/chatHistory/delete"

// The answers the Fake gives.
const (
	// Confirmation is the body of a successful delete.
	Confirmation = `{"status": "SUCCESSFULLY DELETED"}`
	// InvalidKey is the body of a 401.
	InvalidKey = `{"ERROR": "Invalid API key provided."}`
)

// maxBody is the largest request body the Fake reads.
const maxBody = 1 << 20

// Options configures a Fake. Rates are fractions of the requests that would otherwise succeed,
// drawn alike for every endpoint (the memory ones included); each is clamped to [0, 1] and they are drawn in the order of the fields, so when they add up to
// more than 1 the later ones get what is left.
type Options struct {
	// APIKey is the key the Fake accepts in CONVAI-API-KEY. Required: with an empty key every
	// request is refused with 401.
	APIKey string
	// Latency is added to every request to an endpoint, before anything else is decided.
	Latency time.Duration
	// FailRate is the fraction answered 500, 502 or 503 (in turn).
	FailRate float64
	// RateLimitRate is the fraction answered 429 with a Retry-After header.
	RateLimitRate float64
	// RetryAfter is sent in Retry-After on 429 and 503, in whole seconds rounded up; default 1s.
	RetryAfter time.Duration
	// HangRate is the fraction that hang until the client goes away, HangFor passes (then 504)
	// or the Fake is closed (then 503).
	HangRate float64
	// HangFor bounds a hang; 0 means until the client goes away or the Fake is closed.
	HangFor time.Duration
	// DropRate is the fraction whose connection is closed without an answer.
	DropRate float64
	// UnconfirmedRate is the fraction answered 200 with a body that is not a confirmation (in
	// turn: {"status":"QUEUED"}, an empty body, HTML, {"status":1}, truncated JSON, an array);
	// for the list and details endpoints, a body that is not a list or not JSON.
	UnconfirmedRate float64
	// LostAnswerRate is the fraction that are deleted and then have their connection closed
	// without an answer: the deletion happened but the client cannot know. A list or details
	// request is only dropped.
	LostAnswerRate float64
	// RejectIDs are session IDs the API refuses: a request with any of them gets 400 and
	// deletes nothing. They show in every character's list: a session the API refuses to
	// delete is one it has.
	RejectIDs []string
	// RefuseUnknown makes a delete naming a session the Fake does not hold (never added, or
	// deleted already) answer 404 and delete nothing: what a repeated delete may look like.
	// Without it every delete of a well-formed request is confirmed.
	RefuseUnknown bool
	// MaxIDs, if positive, is the most session IDs a request may carry; more gets 400.
	MaxIDs int
	// MemoryDeleteDelay is how long, by Now, a memory delete-all takes: it is answered "in
	// progress" at once, and the memories it covers (those held when it was asked for) are gone
	// for the first request, or the first look (Memories), at or after the delay. 0: gone for
	// the next one.
	MemoryDeleteDelay time.Duration
	// StuckDeleteAll makes every delete-all asked for while it is set answer "in progress" and
	// never complete.
	StuckDeleteAll bool
	// ForeignCharacters are characters the key does not own: the memory endpoints answer 403 for
	// them and touch nothing.
	ForeignCharacters []string
	// NoMemory makes the memory endpoints answer 404, as for an account or an API without
	// long-term memory.
	NoMemory bool
	// Seed seeds the fault choice: the same seed gives the same sequence of faults over the
	// requests that reach the choice.
	Seed int64
	// Now is the clock for Request.Time, default time.Now.
	Now func() time.Time
	// Logger, if set, gets one debug record per request. The key is never logged.
	Logger *slog.Logger
}

// Fake is the stand-in endpoint. It is safe for concurrent use. Use New to make one.
type Fake struct {
	closeOnce sync.Once
	closed    chan struct{}

	mu          sync.Mutex
	opts        Options
	reject      map[string]bool
	foreign     map[string]bool
	rng         *rand.Rand
	failTurn    int
	unconfTurn  int
	deleted     map[string]map[string]bool
	sessions    map[string]map[string][]time.Time
	memory      memoryState
	log         []Request
	outcomes    map[Outcome]int
	received    int
	inFlight    int
	maxInFlight int
}

// New returns a Fake configured by opts. Rates outside [0, 1] are clamped, never refused.
func New(opts Options) *Fake {
	f := &Fake{
		closed:   make(chan struct{}),
		rng:      rand.New(rand.NewPCG(uint64(opts.Seed), 0x636f6e766169)), //nolint:gosec // test faults, not security
		deleted:  make(map[string]map[string]bool),
		sessions: make(map[string]map[string][]time.Time),
		outcomes: make(map[Outcome]int),
		memory:   newMemoryState(),
	}
	f.setOptions(opts)
	return f
}

// setOptions normalises opts and installs them. The caller holds mu, or f is not shared yet.
func (f *Fake) setOptions(opts Options) {
	for _, r := range []*float64{&opts.FailRate, &opts.RateLimitRate, &opts.HangRate, &opts.DropRate, &opts.UnconfirmedRate, &opts.LostAnswerRate} {
		*r = clamp01(*r)
	}
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = time.Second
	}
	opts.Latency = max(opts.Latency, 0)
	opts.HangFor = max(opts.HangFor, 0)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	opts.RejectIDs = slices.Clone(opts.RejectIDs)
	f.reject = make(map[string]bool, len(opts.RejectIDs))
	for _, id := range opts.RejectIDs {
		f.reject[id] = true
	}
	opts.MemoryDeleteDelay = max(opts.MemoryDeleteDelay, 0)
	opts.ForeignCharacters = slices.Clone(opts.ForeignCharacters)
	f.foreign = make(map[string]bool, len(opts.ForeignCharacters))
	for _, c := range opts.ForeignCharacters {
		f.foreign[c] = true
	}
	f.opts = opts
}

func clamp01(x float64) float64 {
	if !(x > 0) { // also NaN
		return 0
	}
	return min(x, 1)
}

// Update changes the options of a running Fake: fn gets a copy of the current options and its
// changes apply to requests that arrive afterwards. Seed is ignored: the fault sequence goes on.
func (f *Fake) Update(fn func(*Options)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o := f.opts
	o.RejectIDs = slices.Clone(o.RejectIDs)
	o.ForeignCharacters = slices.Clone(o.ForeignCharacters)
	fn(&o)
	f.setOptions(o)
}

// SetAPIKey changes the accepted key, e.g. to test a key revoked mid-run.
func (f *Fake) SetAPIKey(k string) { f.Update(func(o *Options) { o.APIKey = k }) }

// SetRejectIDs replaces the session IDs the Fake refuses.
func (f *Fake) SetRejectIDs(ids ...string) { f.Update(func(o *Options) { o.RejectIDs = ids }) }

// Close releases every hanging request (answered 503) and makes later hangs return at once. It
// does not stop the Fake from answering; call it before closing the server so the server's Close
// does not wait on hung requests. It is safe to call more than once.
func (f *Fake) Close() { f.closeOnce.Do(func() { close(f.closed) }) }
