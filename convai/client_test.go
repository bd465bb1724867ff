package convai_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/convai"
)

const apiKey = "ck_9f8e7d6c5b4a3210"

// setup starts a server with h and returns a client for it.
func setup(t *testing.T, h http.HandlerFunc) (*convai.Client, *httptest.Server) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := convai.New(convai.Config{BaseURL: srv.URL, APIKey: apiKey, Now: func() time.Time { return now }})
	require.NoError(t, err)
	t.Cleanup(c.CloseIdleConnections)
	return c, srv
}

// reply answers with code, body and header key/value pairs, after reading the request.
func reply(code int, body string, header ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.WriteHeader(code)
		_, _ = io.WriteString(w, body)
	}
}

// hang reads the request and waits for the client to go away.
func hang(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	select {
	case <-r.Context().Done():
	case <-time.After(10 * time.Second):
	}
}

// requireClean checks the invariants every Result keeps.
func requireClean(t *testing.T, res convai.Result) {
	t.Helper()
	require.NotZero(t, res.Class)
	require.Equal(t, res.Class == convai.Confirmed, res.Err == nil, "Err is nil exactly when confirmed: %+v", res)
	require.LessOrEqual(t, len(res.Detail), convai.MaxDetail)
	require.True(t, utf8.ValidString(res.Detail), "%q", res.Detail)
	for _, r := range res.Detail {
		require.False(t, unicode.IsControl(r), "control character in %q", res.Detail)
	}
	require.NotContains(t, res.Detail, apiKey)
	if res.Err != nil {
		require.NotContains(t, res.Err.Error(), apiKey)
	}
	require.GreaterOrEqual(t, res.RetryAfter, time.Duration(0))
	require.LessOrEqual(t, res.RetryAfter, convai.MaxRetryAfter)
}

func TestDeleteRequest(t *testing.T) {
	t.Parallel()
	type seen struct {
		method, path, query string
		header              http.Header
		body                []byte
	}
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), body}
		_, _ = io.WriteString(w, `{"status": "SUCCESSFULLY DELETED"}`)
	}))
	t.Cleanup(srv.Close)
	c, err := convai.New(convai.Config{BaseURL: srv.URL + "/proxy/v1/", APIKey: apiKey})
	require.NoError(t, err)
	t.Cleanup(c.CloseIdleConnections)

	ids := []string{"plain", `q"uote`, `back\slash`, "uni\u00e9\u4e16\U0001F600", "ctl\x00\x1f\n\t", "<html>&amp;", "\u2028"}
	res := c.Delete(context.Background(), "char/1?x", ids)
	requireClean(t, res)
	require.Equal(t, convai.Confirmed, res.Class)
	require.Equal(t, 200, res.StatusCode)
	require.NoError(t, res.Err)

	s := <-got
	require.Equal(t, http.MethodPost, s.method)
	require.Equal(t, "/proxy/v1/character/chatHistory/delete", s.path)
	require.Empty(t, s.query)
	require.Equal(t, []string{apiKey}, s.header.Values("CONVAI-API-KEY"))
	require.Equal(t, "application/json", s.header.Get("Content-Type"))
	require.Equal(t, "application/json", s.header.Get("Accept"))
	require.Equal(t, "convai-retention", s.header.Get("User-Agent"))

	var body map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(s.body, &body))
	require.Len(t, body, 2, "only charID and sessionIDs: %s", s.body)
	var charID string
	var sessionIDs []string
	require.NoError(t, json.Unmarshal(body["charID"], &charID))
	require.NoError(t, json.Unmarshal(body["sessionIDs"], &sessionIDs))
	require.Equal(t, "char/1?x", charID)
	require.Equal(t, ids, sessionIDs)
}

func TestDeleteStatuses(t *testing.T) {
	t.Parallel()
	const ok = `{"status": "SUCCESSFULLY DELETED"}`
	tests := []struct {
		name       string
		h          http.HandlerFunc
		class      convai.Class
		code       int
		retryAfter time.Duration
		detail     string // Detail, exactly
		unconf     bool   // Err wraps ErrUnconfirmed
	}{
		{"success", reply(200, ok), convai.Confirmed, 200, 0, "status 200: SUCCESSFULLY DELETED", false},
		{"success in other case", reply(200, `{"status":"successfully deleted"}`), convai.Retryable, 200, 0, "status 200 is not a deletion confirmation: JSON object whose status is not SUCCESSFULLY DELETED", true},
		{"success with spaces", reply(200, `{"status":" SUCCESSFULLY DELETED "}`), convai.Retryable, 200, 0,
			"status 200 is not a deletion confirmation: JSON object whose status is not SUCCESSFULLY DELETED", true},
		{"success but deleted 0", reply(200, `{"status":"SUCCESSFULLY DELETED","deleted":0}`), convai.Retryable, 200, 0,
			"status 200 is not a deletion confirmation: it also says nothing was deleted (deleted)", true},
		{"401", reply(401, `{"ERROR": "Invalid API key provided."}`), convai.AuthRejected, 401, 0, "status 401: Invalid API key provided.", false},
		{"403", reply(403, `Forbidden`), convai.AuthRejected, 403, 0, "status 403: non-JSON body of 9 bytes", false},
		{"400", reply(400, `{"ERROR":"Session not found."}`), convai.Permanent, 400, 0, "status 400: Session not found.", false},
		{"404", reply(404, `<h1>Not Found</h1>`), convai.Permanent, 404, 0, "status 404: non-JSON body of 18 bytes", false},
		{"408", reply(408, ``), convai.Retryable, 408, 0, "status 408: empty body", false},
		{"429 with seconds", reply(429, `{"ERROR":"slow down"}`, "Retry-After", "7"), convai.Retryable, 429, 7 * time.Second, "status 429: JSON body without a known message", false},
		{"429 with a date", reply(429, ``, "Retry-After", now.Add(42*time.Second).Format(http.TimeFormat)), convai.Retryable, 429, 42 * time.Second, "status 429: empty body", false},
		{"429 with garbage", reply(429, ``, "Retry-After", "soon"), convai.Retryable, 429, 0, "status 429: empty body", false},
		{"429 with a huge value", reply(429, ``, "Retry-After", "86400"), convai.Retryable, 429, time.Hour, "status 429: empty body", false},
		{"429 without Retry-After", reply(429, ``), convai.Retryable, 429, 0, "status 429: empty body", false},
		{"500", reply(500, `{"ERROR":"oops"}`), convai.Retryable, 500, 0, "status 500: JSON body without a known message", false},
		{"500 with the stand-in's text", reply(500, `{"ERROR": "Internal server error."}`), convai.Retryable, 500, 0, "status 500: Internal server error.", false},
		{"500 with a known text in an array", reply(500, `["Internal server error."]`), convai.Retryable, 500, 0, "status 500: JSON body of 26 bytes that is not an object", false},
		{"502 ignores Retry-After", reply(502, ``, "Retry-After", "5"), convai.Retryable, 502, 0, "status 502: empty body", false},
		{"503 with Retry-After", reply(503, `busy`, "Retry-After", "2"), convai.Retryable, 503, 2 * time.Second, "status 503: non-JSON body of 4 bytes", false},
		{"200 empty", reply(200, ``), convai.Retryable, 200, 0, "status 200 is not a deletion confirmation: empty body", true},
		{"204", reply(204, ``), convai.Retryable, 204, 0, "status 204 is not a deletion confirmation: empty body", true},
		{"200 html", reply(200, "<html>\n<body>OK</body></html>"), convai.Retryable, 200, 0, "status 200 is not a deletion confirmation: non-JSON body of 29 bytes", true},
		{"200 queued", reply(200, `{"status":"QUEUED"}`), convai.Retryable, 200, 0, "status 200 is not a deletion confirmation: JSON object whose status is not SUCCESSFULLY DELETED", true},
		{"200 success and failed_ids", reply(200, `{"status":"SUCCESSFULLY DELETED","failed_ids":["s2"]}`), convai.Retryable, 200, 0,
			"status 200 is not a deletion confirmation: it also names a failure (failed_ids)", true},
		{"200 status twice", reply(200, `{"status":"FAILED","status":"SUCCESSFULLY DELETED"}`), convai.Retryable, 200, 0,
			"status 200 is not a deletion confirmation: it gives its status more than once", true},
		{"200 number status", reply(200, `{"status": 1}`), convai.Retryable, 200, 0, "status 200 is not a deletion confirmation: JSON object whose status is not a string", true},
		{"200 truncated", reply(200, `{"status": "SUCCESSFULLY DELETED"`), convai.Retryable, 200, 0, "status 200 is not a deletion confirmation: non-JSON body of 33 bytes", true},
		{"200 array", reply(200, `[{"status": "SUCCESSFULLY DELETED"}]`), convai.Retryable, 200, 0,
			"status 200 is not a deletion confirmation: JSON body of 36 bytes that is not an object", true},
		{"200 without a status", reply(200, `{"ok":true}`), convai.Retryable, 200, 0, "status 200 is not a deletion confirmation: JSON object without a status", true},
		{"418", reply(418, `teapot`), convai.Permanent, 418, 0, "status 418: non-JSON body of 6 bytes", false},
		{"304", reply(304, ``), convai.Retryable, 304, 0, "unexpected status 304: empty body", false},
		{"600", reply(600, ok), convai.Retryable, 600, 0, "unexpected status 600: JSON body without a known message", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, _ := setup(t, tt.h)
			res := c.Delete(context.Background(), "c", []string{"s1", "s2"})
			requireClean(t, res)
			require.Equal(t, tt.class, res.Class, res.Detail)
			require.Equal(t, tt.code, res.StatusCode)
			require.Equal(t, tt.retryAfter, res.RetryAfter)
			require.Equal(t, tt.detail, res.Detail)
			if res.Class != convai.Confirmed {
				var se *convai.StatusError
				require.ErrorAs(t, res.Err, &se)
				require.Equal(t, tt.code, se.StatusCode)
				require.Equal(t, tt.class, se.Class)
				require.Equal(t, res.Detail, se.Detail)
			}
			require.Equal(t, tt.unconf, errors.Is(res.Err, convai.ErrUnconfirmed))
		})
	}
}

func TestDeleteHungServer(t *testing.T) {
	t.Parallel()
	c, _ := setup(t, hang)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	res := c.Delete(ctx, "c", []string{"s"})
	requireClean(t, res)
	require.Equal(t, convai.Retryable, res.Class)
	require.Zero(t, res.StatusCode)
	require.ErrorIs(t, res.Err, context.DeadlineExceeded)
	require.NotErrorIs(t, res.Err, context.Canceled)
	require.NotEmpty(t, res.Detail)
}

func TestDeleteCancelledParent(t *testing.T) {
	t.Parallel()
	arrived := make(chan struct{})
	c, _ := setup(t, func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		hang(w, r)
	})

	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-arrived
		cancel()
	}()
	res := c.Delete(ctx, "c", []string{"s"})
	requireClean(t, res)
	require.Equal(t, convai.Retryable, res.Class)
	require.Zero(t, res.StatusCode)
	require.ErrorIs(t, res.Err, context.Canceled)
}

func TestDeleteAlreadyCancelled(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	c, _ := setup(t, func(w http.ResponseWriter, r *http.Request) { hits.Add(1) })

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res := c.Delete(ctx, "c", []string{"s"})
	requireClean(t, res)
	require.Equal(t, convai.Retryable, res.Class)
	require.ErrorIs(t, res.Err, context.Canceled)
	require.Zero(t, hits.Load())
}

func TestDeleteCancelledWhileReadingBody(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Length", "100")
		w.WriteHeader(200)
		_, _ = io.WriteString(w, `{"status": "SUCCESSFULLY DELETED"}`)
		w.(http.Flusher).Flush()
		hang(w, r)
	}))
	t.Cleanup(srv.Close)
	// The parent context is cancelled as soon as the response headers are in.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	inner := &http.Transport{}
	t.Cleanup(inner.CloseIdleConnections)
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		resp, err := inner.RoundTrip(r)
		cancel()
		return resp, err
	})}
	c, err := convai.New(convai.Config{BaseURL: srv.URL, APIKey: apiKey, HTTPClient: hc})
	require.NoError(t, err)

	res := c.Delete(ctx, "c", []string{"s"})
	requireClean(t, res)
	require.Equal(t, convai.Retryable, res.Class, "a confirmation whose body did not finish is not one")
	require.Equal(t, 200, res.StatusCode)
	require.ErrorIs(t, res.Err, context.Canceled)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestDeleteDroppedConnection(t *testing.T) {
	t.Parallel()
	c, _ := setup(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			_ = conn.Close()
		}
	})

	res := c.Delete(context.Background(), "c", []string{"s"})
	requireClean(t, res)
	require.Equal(t, convai.Retryable, res.Class)
	require.Zero(t, res.StatusCode)
	require.ErrorIs(t, res.Err, io.EOF)
}

func TestDeleteShortBody(t *testing.T) {
	t.Parallel()
	// The body announces more bytes than it has: the complete confirmation arrives, then the
	// connection dies.
	c, _ := setup(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		body := `{"status": "SUCCESSFULLY DELETED"}`
		_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n" + body)
		_ = buf.Flush()
		_ = conn.Close()
	})

	res := c.Delete(context.Background(), "c", []string{"s"})
	requireClean(t, res)
	require.Equal(t, convai.Retryable, res.Class)
	require.Equal(t, 200, res.StatusCode)
	require.ErrorIs(t, res.Err, io.ErrUnexpectedEOF)
}

func TestDeleteRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	var targetHits atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		targetHits.Add(1)
		_, _ = io.WriteString(w, `{"status": "SUCCESSFULLY DELETED"}`)
	}))
	t.Cleanup(target.Close)
	redirect := func(code int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			http.Redirect(w, r, target.URL+r.URL.Path, code)
		}
	}

	for _, code := range []int{301, 302, 303, 307, 308} {
		c, _ := setup(t, redirect(code))
		res := c.Delete(context.Background(), "c", []string{"s"})
		requireClean(t, res)
		require.Equal(t, convai.Retryable, res.Class)
		require.Equal(t, code, res.StatusCode)
		require.Contains(t, res.Detail, "unexpected status")
	}

	// A caller's client that follows redirects is not obeyed, and not changed.
	srv := httptest.NewServer(redirect(307))
	t.Cleanup(srv.Close)
	follow := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(follow.CloseIdleConnections)
	c, err := convai.New(convai.Config{BaseURL: srv.URL, APIKey: apiKey, HTTPClient: follow})
	require.NoError(t, err)
	res := c.Delete(context.Background(), "c", []string{"s"})
	require.Equal(t, 307, res.StatusCode)
	require.Nil(t, follow.CheckRedirect)
	require.Zero(t, targetHits.Load())
}

func TestDeleteOversizedBody(t *testing.T) {
	t.Parallel()
	const ok = `{"status": "SUCCESSFULLY DELETED"}`
	tests := []struct {
		name  string
		code  int
		body  string
		class convai.Class
	}{
		{"confirmation padded past the limit", 200, ok + strings.Repeat(" ", convai.MaxBody), convai.Retryable},
		{"confirmation padded within the limit", 200, ok + strings.Repeat(" ", convai.MaxBody-len(ok)), convai.Confirmed},
		{"huge error page", 500, strings.Repeat("<p>error</p>\n", 100_000), convai.Retryable},
		{"huge 400", 400, strings.Repeat("x", 1<<20), convai.Permanent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, _ := setup(t, reply(tt.code, tt.body))
			res := c.Delete(context.Background(), "c", []string{"s"})
			requireClean(t, res)
			require.Equal(t, tt.class, res.Class, res.Detail)
		})
	}
}

// TestDeleteDetailQuotesNoBody: a body of any text, control characters included, is described
// by its kind and size; none of it is quoted.
func TestDeleteDetailQuotesNoBody(t *testing.T) {
	t.Parallel()
	body := "line1\r\n\tline2\x00\x1b[31mred\u202eevil\xff\xfe " + strings.Repeat("é", 300)
	c, _ := setup(t, reply(400, body))

	res := c.Delete(context.Background(), "c", []string{"s"})
	requireClean(t, res)
	require.Equal(t, fmt.Sprintf("status 400: non-JSON body of %d bytes", len(body)), res.Detail)
	require.Equal(t, "convai: "+res.Detail, res.Err.Error())
}

func TestDeleteInvalidInput(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	c, _ := setup(t, func(w http.ResponseWriter, r *http.Request) { hits.Add(1) })

	var nilCtx context.Context
	tests := []struct {
		name string
		ctx  context.Context
		char string
		ids  []string
	}{
		{"empty character", context.Background(), "", []string{"s"}},
		{"nil IDs", context.Background(), "c", nil},
		{"no IDs", context.Background(), "c", []string{}},
		{"empty ID", context.Background(), "c", []string{"s", ""}},
		{"invalid UTF-8 ID", context.Background(), "c", []string{"s\xff"}},
		{"invalid UTF-8 character", context.Background(), "c\xc3", []string{"s"}},
		{"nil context", nilCtx, "c", []string{"s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := c.Delete(tt.ctx, tt.char, tt.ids)
			requireClean(t, res)
			require.Equal(t, convai.Permanent, res.Class)
			require.Zero(t, res.StatusCode)
			require.ErrorIs(t, res.Err, convai.ErrInvalidInput)
		})
	}
	t.Cleanup(func() { require.Zero(t, hits.Load(), "nothing is sent") })
}
