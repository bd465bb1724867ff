package convaitest

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// ServeHTTP answers one request like the delete endpoint, faults included. Dropping a connection
// needs a real server (httptest.NewServer): with a ResponseWriter that cannot be hijacked the
// Fake aborts the handler with http.ErrAbortHandler instead.
func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	arrived, opts, reject := f.begin()
	rec := Request{Time: arrived}
	rec.Status, rec.Outcome = f.serve(w, r, opts, reject, &rec)
	// Record before the client can see the end of the exchange, so a test that just got its
	// answer (or lost its connection) finds the request in the log.
	f.finish(rec)
	if opts.Logger != nil {
		opts.Logger.Debug("request", "method", r.Method, "path", r.URL.Path, "char_id", rec.CharID,
			"ids", len(rec.SessionIDs), "status", rec.Status, "outcome", rec.Outcome,
			"duration", opts.Now().Sub(arrived))
	}
	if rec.Outcome == OutcomeDropped || rec.Outcome == OutcomeLostAnswer {
		drop(w)
	}
}

// endpoints names the endpoint of each path the fake serves.
var endpoints = map[string]string{
	Path:                EndpointDelete,
	ListPath:            EndpointList,
	DetailsPath:         EndpointDetails,
	MemoryListPath:      EndpointMemoryList,
	MemoryDeletePath:    EndpointMemoryDelete,
	MemoryDeleteAllPath: EndpointMemoryDeleteAll,
	EndUserDeletePath:   EndpointEndUserDelete,
}

func (f *Fake) serve(w http.ResponseWriter, r *http.Request, opts Options, reject map[string]bool, rec *Request) (int, Outcome) {
	endpoint, ok := endpoints[r.URL.Path]
	if !ok {
		return writeError(w, http.StatusNotFound, "Not found."), OutcomeNotFound
	}
	rec.Endpoint = endpoint
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return writeError(w, http.StatusMethodNotAllowed, "Method not allowed."), OutcomeMethodNotAllowed
	}
	// Read the body first: only then does the server notice a client that goes away.
	body, readErr := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if !sleep(r.Context(), opts.Latency) {
		return 0, OutcomeCanceled
	}
	key := r.Header.Get("CONVAI-API-KEY")
	if opts.APIKey == "" || subtle.ConstantTimeCompare([]byte(key), []byte(opts.APIKey)) != 1 {
		return writeBody(w, http.StatusUnauthorized, "application/json", InvalidKey), OutcomeUnauthorized
	}
	if readErr != nil {
		return writeError(w, http.StatusBadRequest, "Request body could not be read."), OutcomeBadRequest
	}
	if isMemoryEndpoint(rec.Endpoint) {
		return f.serveMemory(w, r, opts, body, rec)
	}
	var req struct {
		CharID     *string  `json:"charID"`
		SessionIDs []string `json:"sessionIDs"`
		SessionID  *string  `json:"sessionID"`
		Limit      *string  `json:"limit"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return writeError(w, http.StatusBadRequest, "Malformed JSON body."), OutcomeBadRequest
	}
	if req.CharID != nil {
		rec.CharID = *req.CharID
	}
	switch rec.Endpoint {
	case EndpointList:
		limit := -1
		if req.Limit != nil {
			n, err := strconv.Atoi(*req.Limit)
			if err != nil || n == 0 || n < -1 {
				return writeError(w, http.StatusBadRequest, `limit must be "-1" or a positive number, as a string.`), OutcomeBadRequest
			}
			limit = n
		}
		if rec.CharID == "" {
			return writeError(w, http.StatusBadRequest, "charID is required."), OutcomeBadRequest
		}
		return f.answerList(w, r, opts, rec.CharID, limit)
	case EndpointDetails:
		if req.SessionID != nil {
			rec.SessionIDs = []string{*req.SessionID}
		}
		if rec.CharID == "" || req.SessionID == nil || *req.SessionID == "" {
			return writeError(w, http.StatusBadRequest, "charID and sessionID are required."), OutcomeBadRequest
		}
		return f.answerDetails(w, r, opts, rec.CharID, *req.SessionID)
	}
	rec.SessionIDs = req.SessionIDs
	if msg := checkRequest(rec.CharID, req.SessionIDs, opts.MaxIDs); msg != "" {
		return writeError(w, http.StatusBadRequest, msg), OutcomeBadRequest
	}
	for _, id := range req.SessionIDs {
		if reject[id] {
			return writeError(w, http.StatusBadRequest, fmt.Sprintf("Session %q cannot be deleted.", id)), OutcomeRejected
		}
	}
	if opts.RefuseUnknown {
		if id, ok := f.firstUnknown(rec.CharID, req.SessionIDs); ok {
			return writeError(w, http.StatusNotFound, fmt.Sprintf("Session %q not found.", id)), OutcomeUnknown
		}
	}
	return f.answer(w, r, opts, rec.CharID, req.SessionIDs)
}

// checkRequest returns why a parsed body is refused, or "".
func checkRequest(charID string, ids []string, maxIDs int) string {
	switch {
	case charID == "":
		return "charID is required."
	case len(ids) == 0:
		return "sessionIDs must not be empty."
	case maxIDs > 0 && len(ids) > maxIDs:
		return fmt.Sprintf("At most %d sessionIDs per request, got %d.", maxIDs, len(ids))
	}
	for _, id := range ids {
		if id == "" {
			return "sessionIDs must not contain an empty ID."
		}
	}
	return ""
}

// answer applies the drawn fault, or deletes.
func (f *Fake) answer(w http.ResponseWriter, r *http.Request, opts Options, charID string, ids []string) (int, Outcome) {
	if code, out, faulted := f.fault(w, r, opts, unconfirmedBodies); faulted {
		if out == OutcomeLostAnswer {
			f.remember(charID, ids)
		}
		return code, out
	}
	f.remember(charID, ids)
	return writeBody(w, http.StatusOK, "application/json", Confirmation), OutcomeDeleted
}

// fault draws the fault of a request and, if there is one, answers it (bad answers come from
// bad, in turn). A lost answer is left to the caller: it returns OutcomeLostAnswer and
// ServeHTTP closes the connection.
func (f *Fake) fault(w http.ResponseWriter, r *http.Request, opts Options, bad []badBody) (int, Outcome, bool) {
	fault, turn := f.draw(opts)
	switch fault {
	case faultFail:
		code := []int{http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable}[turn%3]
		if code == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", retryAfter(opts.RetryAfter))
		}
		return writeError(w, code, "Internal server error."), OutcomeFailed, true
	case faultRateLimit:
		w.Header().Set("Retry-After", retryAfter(opts.RetryAfter))
		return writeError(w, http.StatusTooManyRequests, "Too many requests."), OutcomeRateLimited, true
	case faultHang:
		return f.hang(r.Context(), w, opts.HangFor), OutcomeHung, true
	case faultDrop:
		return 0, OutcomeDropped, true // ServeHTTP closes the connection
	case faultUnconfirmed:
		u := bad[turn%len(bad)]
		return writeBody(w, http.StatusOK, u.contentType, u.body), OutcomeUnconfirmed, true
	case faultLostAnswer:
		return 0, OutcomeLostAnswer, true // ServeHTTP closes the connection
	}
	return 0, "", false
}

// badBody is a 200 answer that is not the documented one.
type badBody struct{ contentType, body string }

// unconfirmedBodies are the 200 answers that are not confirmations, used in turn.
var unconfirmedBodies = []badBody{
	{"application/json", `{"status":"QUEUED"}`},
	{"application/json", ``},
	{"text/html", `<html><body>OK</body></html>`},
	{"application/json", `{"status": 1}`},
	{"application/json", `{"status": "SUCCESSFULLY DEL`},
	{"application/json", `["SUCCESSFULLY DELETED"]`},
}

type fault int

const (
	faultNone fault = iota
	faultFail
	faultRateLimit
	faultHang
	faultDrop
	faultUnconfirmed
	faultLostAnswer
)

// draw picks the fault of a request, and its turn among requests with the same fault.
func (f *Fake) draw(opts Options) (fault, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u := f.rng.Float64()
	rates := []struct {
		rate  float64
		fault fault
	}{
		{opts.FailRate, faultFail},
		{opts.RateLimitRate, faultRateLimit},
		{opts.HangRate, faultHang},
		{opts.DropRate, faultDrop},
		{opts.UnconfirmedRate, faultUnconfirmed},
		{opts.LostAnswerRate, faultLostAnswer},
	}
	acc := 0.0
	for _, r := range rates {
		acc += r.rate
		if u < acc {
			switch r.fault {
			case faultFail:
				f.failTurn++
				return r.fault, f.failTurn - 1
			case faultUnconfirmed:
				f.unconfTurn++
				return r.fault, f.unconfTurn - 1
			}
			return r.fault, 0
		}
	}
	return faultNone, 0
}

// hang waits for the client to go away (no answer), hangFor to pass (504) or the Fake to close
// (503), and returns the status written.
func (f *Fake) hang(ctx context.Context, w http.ResponseWriter, hangFor time.Duration) int {
	var timeout <-chan time.Time
	if hangFor > 0 {
		t := time.NewTimer(hangFor)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-ctx.Done():
		return 0
	case <-timeout:
		return writeError(w, http.StatusGatewayTimeout, "Gateway timeout.")
	case <-f.closed:
		return writeError(w, http.StatusServiceUnavailable, "Shutting down.")
	}
}

// drop closes the connection without an answer.
func drop(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// HTTP/2 or a recorder: abort the response the way net/http provides.
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}

// sleep waits d, and reports false if ctx ends first.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// retryAfter formats d as whole seconds, rounded up.
func retryAfter(d time.Duration) string {
	return strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10)
}

func writeError(w http.ResponseWriter, code int, msg string) int {
	b, _ := json.Marshal(map[string]string{"ERROR": msg})
	return writeBody(w, code, "application/json", string(b))
}

func writeBody(w http.ResponseWriter, code int, contentType, body string) int {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	_, _ = io.WriteString(w, body)
	return code
}
