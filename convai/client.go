package convai

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/convai-retention/retention/internal/secret"
)

// MaxBody is how much of a response body Delete reads; a 2xx with a longer body is not a
// confirmation.
const MaxBody = 64 << 10

// maxDrain is how much more of a body Delete reads and discards so the connection can be reused;
// past it, the connection is closed instead.
const maxDrain = 64 << 10

// Client sends requests to the Convai API's chat-history endpoints. It is safe for concurrent use. Its fmt output
// never includes the API key.
type Client struct {
	endpoint endpoints
	// key returns the API key. A func, because fmt prints a func as an address under every
	// verb, even through reflection on an unexported field.
	key       func() string
	secrets   *secret.Redactor // the key and Config.Secrets
	http      *http.Client
	userAgent string
	now       func() time.Time
}

// New validates cfg, fills its defaults and returns a Client. Errors are *ConfigError.
func New(cfg Config) (*Client, error) {
	cfg, ep, err := fill(cfg)
	if err != nil {
		return nil, err
	}
	apiKey := cfg.APIKey
	return &Client{
		endpoint:  ep,
		key:       func() string { return apiKey },
		secrets:   secret.New([]string{apiKey}, cfg.Secrets),
		http:      cfg.HTTPClient,
		userAgent: cfg.UserAgent,
		now:       cfg.Now,
	}, nil
}

// String describes c without its API key.
func (c *Client) String() string {
	return fmt.Sprintf("convai.Client{endpoint: %s, user_agent: %s}", c.endpoint.delete, c.userAgent)
}

// GoString is String: %#v of a Client never prints its API key.
func (c *Client) GoString() string { return c.String() }

// CloseIdleConnections closes the idle connections of the client's transport.
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }

// Result is the outcome of one Delete call.
type Result struct {
	// Class says what the caller should do.
	Class Class
	// StatusCode is the HTTP status, 0 when no response arrived.
	StatusCode int
	// RetryAfter is the wait a 429 or 503 asked for in its Retry-After header, clamped to
	// MaxRetryAfter; 0 if there was none or it was invalid.
	RetryAfter time.Duration
	// Detail is short human text for logs and the outcomes: the error, or the status and what
	// was classified (a known error text, or the kind and size of the body; never the body's
	// own text). At most MaxDetail bytes of valid UTF-8, without control characters and without
	// the API key.
	Detail string
	// Err is nil when Class is Confirmed. It is a *StatusError when the API answered; otherwise
	// it wraps the transport error, and ctx.Err() when ctx is done, so
	// errors.Is(res.Err, context.Canceled) tells a cancelled run from a failed request.
	Err error
}

type deleteRequest struct {
	CharID     string   `json:"charID"`
	SessionIDs []string `json:"sessionIDs"`
}

// Delete asks the API to delete sessionIDs of characterID. It sends one request and does not
// retry; bound it with ctx. Input it refuses to send is Permanent with ErrInvalidInput.
func (c *Client) Delete(ctx context.Context, characterID string, sessionIDs []string) Result {
	if err := checkInput(characterID, sessionIDs); err != nil {
		return c.failure(Permanent, err)
	}
	resp, res := c.post(ctx, c.endpoint.delete, "delete", deleteRequest{CharID: characterID, SessionIDs: sessionIDs})
	if resp == nil {
		return res
	}
	defer drainClose(resp.Body)
	raw, readErr := io.ReadAll(io.LimitReader(resp.Body, MaxBody+1))
	return c.answer(ctx, resp, raw, readErr)
}

// post sends request, encoded as JSON, in one POST to url. It returns the response, or nil and
// the Result of a request that could not be encoded or got no response (what names the request
// in errors).
func (c *Client) post(ctx context.Context, url, what string, request any) (*http.Response, Result) {
	body, err := json.Marshal(request)
	if err != nil {
		return nil, c.failure(Permanent, fmt.Errorf("encode %s request: %w", what, err))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, c.failure(Permanent, fmt.Errorf("%w: build %s request: %w", ErrInvalidInput, what, err))
	}
	// The documented spelling, sent as is; header names are case-insensitive anyway.
	req.Header["CONVAI-API-KEY"] = []string{c.key()}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)

	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.failure(Retryable, fmt.Errorf("send %s request: %w", what, withCtxErr(ctx, err)))
	}
	return resp, Result{}
}

// answer classifies a response whose body (at most MaxBody+1 bytes) is raw. Its Detail says
// what was classified (the status and, for a 2xx, why it is not a confirmation) and quotes from
// the body only a message on the list of known messages: never the body itself, which may echo
// the key in an encoding redaction does not know.
func (c *Client) answer(ctx context.Context, resp *http.Response, raw []byte, readErr error) Result {
	key := c.secrets
	code := resp.StatusCode
	res := Result{StatusCode: code}
	if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
		res.RetryAfter, _ = ParseRetryAfter(resp.Header.Get("Retry-After"), c.now())
	}
	oversized := len(raw) > MaxBody
	if oversized {
		raw = raw[:MaxBody]
	}
	res.Class = Classify(code, raw)
	is2xx := code >= 200 && code <= 299
	var text string
	switch {
	case is2xx && readErr != nil:
		res.Class = Retryable
		text = fmt.Sprintf("status %d is not a deletion confirmation: reading the body failed: %v", code, readErr)
	case is2xx && oversized:
		res.Class = Retryable
		text = fmt.Sprintf("status %d is not a deletion confirmation: body over %d bytes", code, MaxBody)
	case oversized:
		text = fmt.Sprintf("%s: body over %d bytes", statusText(code), MaxBody)
	case res.Class == Confirmed:
		res.Detail = fmt.Sprintf("status %d: %s", code, confirmation)
		return res
	case is2xx:
		if _, why := confirms(raw); why != "" {
			text = fmt.Sprintf("status %d is not a deletion confirmation: %s", code, why)
		} else {
			text = fmt.Sprintf("status %d is not a deletion confirmation: %s", code, unconfirmedBody(raw))
		}
	default:
		text = fmt.Sprintf("%s: %s", statusText(code), bodyMessage(raw))
	}
	res.Detail = sanitize(text, key)
	var err error = &StatusError{StatusCode: code, Class: res.Class, Detail: res.Detail}
	if readErr != nil {
		err = fmt.Errorf("%w: read body: %w", err, withCtxErr(ctx, readErr))
	}
	res.Err = c.redact(err)
	return res
}

// failure is a Result for a call that got no response, or sent nothing.
func (c *Client) failure(class Class, err error) Result {
	err = c.redact(err)
	return Result{Class: class, Detail: sanitize(err.Error(), c.secrets), Err: err}
}

// redact returns err with a message free of the API key and the other secrets.
func (c *Client) redact(err error) error {
	msg := err.Error()
	if clean := scrub(msg, c.secrets); clean != msg {
		return &redactedError{msg: cmp.Or(clean, "error message withheld: it contained the API key"), err: err}
	}
	return err
}

// withCtxErr makes sure err wraps ctx.Err() when ctx is done.
func withCtxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%w: %w", cerr, err)
	}
	return err
}

// statusText is "status N" for a status with a documented class, else "unexpected status N".
func statusText(code int) string {
	if isDocumented(code) {
		return fmt.Sprintf("status %d", code)
	}
	return fmt.Sprintf("unexpected status %d", code)
}

// isDocumented reports whether code is one of the statuses with a documented class.
func isDocumented(code int) bool {
	return code >= 200 && code <= 599 && code/100 != 3
}

// checkID refuses an ID that must not be sent: empty, or not valid UTF-8.
func checkID(what, id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: empty %s", ErrInvalidInput, what)
	case !utf8.ValidString(id):
		return fmt.Errorf("%w: %s %s is not valid UTF-8", ErrInvalidInput, what, strconv.QuoteToASCII(id))
	}
	return nil
}

// checkInput refuses what must not be sent.
func checkInput(characterID string, sessionIDs []string) error {
	switch {
	case characterID == "":
		return fmt.Errorf("%w: empty character ID", ErrInvalidInput)
	case !utf8.ValidString(characterID):
		return fmt.Errorf("%w: character ID %s is not valid UTF-8", ErrInvalidInput, strconv.QuoteToASCII(characterID))
	case len(sessionIDs) == 0:
		return fmt.Errorf("%w: no session IDs", ErrInvalidInput)
	}
	for i, id := range sessionIDs {
		switch {
		case id == "":
			return fmt.Errorf("%w: session ID %d is empty", ErrInvalidInput, i)
		case !utf8.ValidString(id):
			return fmt.Errorf("%w: session ID %s is not valid UTF-8", ErrInvalidInput, strconv.QuoteToASCII(id))
		}
	}
	return nil
}

// drainClose reads a bounded rest of body so the connection can be reused, then closes it.
func drainClose(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, maxDrain))
	_ = body.Close()
}
