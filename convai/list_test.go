package convai_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/convai"
	"github.com/convai-retention/retention/convai/convaitest"
	"github.com/convai-retention/retention/policy"
)

// collect lists characterID and returns the IDs seen.
func collect(c *convai.Client, characterID string) ([]convai.ListedSession, convai.Result) {
	var got []convai.ListedSession
	res := c.List(context.Background(), characterID, func(s convai.ListedSession) error {
		got = append(got, s)
		return nil
	})
	return got, res
}

func TestListRequestAndAnswer(t *testing.T) {
	t.Parallel()
	var gotPath, gotKey, gotBody string
	c, _ := setup(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		gotPath, gotKey, gotBody = r.URL.Path, r.Header.Get("CONVAI-API-KEY"), string(b)
		_, _ = io.WriteString(w, `[{"sessionID": "s1", "date": "31-12-2025", "time": "23:59:58", "is_added_to_memory": false},
			{"sessionID": "s2", "date": "not a date", "time": "x", "extra": {"nested": [1, 2]}}]`)
	})
	got, res := collect(c, "char-1")
	requireClean(t, res)
	require.Equal(t, convai.Confirmed, res.Class, res.Detail)
	require.Equal(t, "/character/chatHistory/list", gotPath)
	require.Equal(t, apiKey, gotKey)
	require.JSONEq(t, `{"charID": "char-1", "limit": "-1"}`, gotBody)
	require.Equal(t, []convai.ListedSession{
		{SessionID: "s1", Start: time.Date(2025, 12, 31, 23, 59, 58, 0, time.UTC), Memory: convai.MemoryNotAdded},
		{SessionID: "s2"},
	}, got)
}

func TestListAnswers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		code  int
		body  string
		class convai.Class
		seen  int
	}{
		{"empty list", 200, `[]`, convai.Confirmed, 0},
		{"not an array", 200, `{"status": "ok"}`, convai.Retryable, 0},
		{"html", 200, `<html></html>`, convai.Retryable, 0},
		{"empty body", 200, ``, convai.Retryable, 0},
		{"truncated", 200, `[{"sessionID": "a"}, {"sessionID": "b"`, convai.Retryable, 1},
		{"numeric ID", 200, `[{"sessionID": "a"}, {"sessionID": 7}]`, convai.Retryable, 1},
		{"missing ID", 200, `[{"date": "01-01-2026"}]`, convai.Retryable, 0},
		{"trailing data", 200, `[{"sessionID": "a"}] [`, convai.Retryable, 1},
		{"null element", 200, `[{"sessionID": "a"}, null]`, convai.Retryable, 1},
		{"number element", 200, `[{"sessionID": "a"}, 7]`, convai.Retryable, 1},
		{"no comma", 200, `[{"sessionID": "a"} {"sessionID": "b"}]`, convai.Retryable, 1},
		{"trailing comma", 200, `[{"sessionID": "a", }]`, convai.Retryable, 0},
		{"bad literal", 200, `[{"sessionID": "a", "x": tru}]`, convai.Retryable, 0},
		{"bad number", 200, `[{"sessionID": "a", "x": 1.}]`, convai.Retryable, 0},
		{"bad escape", 200, `[{"sessionID": "a\x"}]`, convai.Retryable, 0},
		{"control character", 200, "[{\"sessionID\": \"a\tb\"}]", convai.Retryable, 0},
		{"bad escape in a long ID", 200, `[{"sessionID": "` + strings.Repeat("x", 3000) + `\x"}]`, convai.Retryable, 0},
		{"unclosed long ID", 200, `[{"sessionID": "` + strings.Repeat("x", 3000), convai.Retryable, 0},
		{"empty ID", 200, `[{"sessionID": ""}]`, convai.Retryable, 0},
		{"key without value", 200, `[{"sessionID"}]`, convai.Retryable, 0},
		{"key rejected", 401, `{"ERROR": "Invalid API key provided."}`, convai.AuthRejected, 0},
		{"forbidden", 403, ``, convai.AuthRejected, 0},
		{"unknown character", 404, `{"ERROR": "Character not found."}`, convai.Permanent, 0},
		{"rate limited", 429, `{"ERROR": "slow down"}`, convai.Retryable, 0},
		{"server error", 502, `bad gateway`, convai.Retryable, 0},
		{"redirect", 302, ``, convai.Retryable, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, _ := setup(t, reply(tt.code, tt.body, "Retry-After", "7"))
			got, res := collect(c, "c")
			requireClean(t, res)
			require.Equal(t, tt.class, res.Class, res.Detail)
			require.Equal(t, tt.code, res.StatusCode)
			require.Len(t, got, tt.seen)
			if tt.code == 200 && tt.class == convai.Retryable {
				require.ErrorIs(t, res.Err, convai.ErrMalformedAnswer)
			}
			if tt.code == 429 {
				require.Equal(t, 7*time.Second, res.RetryAfter)
			}
		})
	}
}

func TestListStoppedByCaller(t *testing.T) {
	t.Parallel()
	c, _ := setup(t, reply(200, `[{"sessionID": "a"}, {"sessionID": "b"}, {"sessionID": "c"}]`))
	stop := errors.New("enough")
	n := 0
	res := c.List(context.Background(), "c", func(convai.ListedSession) error {
		n++
		if n == 2 {
			return stop
		}
		return nil
	})
	require.Equal(t, convai.Permanent, res.Class)
	require.ErrorIs(t, res.Err, convai.ErrStopped)
	require.ErrorIs(t, res.Err, stop)
	require.Equal(t, 2, n)
}

func TestListHungAndCancelled(t *testing.T) {
	t.Parallel()
	c, _ := setup(t, hang)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	res := c.List(ctx, "c", func(convai.ListedSession) error { return nil })
	requireClean(t, res)
	require.Equal(t, convai.Retryable, res.Class)
	require.ErrorIs(t, res.Err, context.DeadlineExceeded)

	_, res = collect(c, "")
	require.ErrorIs(t, res.Err, convai.ErrInvalidInput)
}

// TestListLargeListFlatMemory streams a list of a million sessions (about 110 MB of JSON,
// written as it is read; a tenth of it under the race detector) and checks that the heap stays
// far below the size of the body.
func TestListLargeListFlatMemory(t *testing.T) {
	const n = bigList
	c, _ := setup(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, "[")
		for i := range n {
			if i > 0 {
				_, _ = io.WriteString(w, ",")
			}
			_, _ = fmt.Fprintf(w, `{"sessionID": "session-%07d", "date": "01-02-2026", "time": "03:04:05", "is_added_to_memory": false}`, i)
		}
		_, _ = io.WriteString(w, "]")
	})
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var peak uint64
	seen := 0
	res := c.List(context.Background(), "big", func(s convai.ListedSession) error {
		if seen%50_000 == 0 {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
		}
		if s.SessionID != fmt.Sprintf("session-%07d", seen) {
			return fmt.Errorf("element %d is %q", seen, s.SessionID)
		}
		seen++
		return nil
	})
	require.Equal(t, convai.Confirmed, res.Class, res.Detail)
	require.Equal(t, n, seen)
	grew := int64(peak) - int64(base)
	require.Less(t, grew, int64(32<<20), "the heap grew by %d bytes while reading a list of %d sessions", grew, n)
}

func TestListAndDetailsAgainstFake(t *testing.T) {
	t.Parallel()
	fake := convaitest.New(convaitest.Options{APIKey: apiKey})
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	t.Cleanup(fake.Close)
	c, err := convai.New(convai.Config{BaseURL: srv.URL, APIKey: apiKey})
	require.NoError(t, err)
	t.Cleanup(c.CloseIdleConnections)

	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	last := t0.Add(26*time.Hour + 500*time.Millisecond)
	fake.AddSession("c", "s1", t0, last)
	got, res := collect(c, "c")
	require.Equal(t, convai.Confirmed, res.Class, res.Detail)
	require.Equal(t, []convai.ListedSession{{SessionID: "s1", Start: t0, Memory: convai.MemoryNotAdded}}, got)

	d, res := c.Details(context.Background(), "c", "s1")
	require.Equal(t, convai.Confirmed, res.Class, res.Detail)
	require.Equal(t, convai.Details{Interactions: 2, Latest: last}, d)

	_, res = c.Details(context.Background(), "c", "gone")
	require.Equal(t, convai.Permanent, res.Class)
	require.Equal(t, 404, res.StatusCode)

	fake.Update(func(o *convaitest.Options) { o.UnconfirmedRate = 1 })
	for range 2 {
		_, res = c.Details(context.Background(), "c", "s1")
		require.Equal(t, convai.Retryable, res.Class)
		require.ErrorIs(t, res.Err, convai.ErrMalformedAnswer)
	}
	for range 4 {
		_, res = collect(c, "c")
		require.Equal(t, convai.Retryable, res.Class, "every malformed list is retryable")
	}
	fake.SetAPIKey("rotated")
	fake.Update(func(o *convaitest.Options) { o.UnconfirmedRate = 0 })
	_, res = collect(c, "c")
	require.Equal(t, convai.AuthRejected, res.Class)
	require.NotContains(t, res.Detail, apiKey)
}

func TestDetailsShapes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		body   string
		n      int
		latest time.Time
	}{
		{"array of interactions", `[{"timestamp": "2026-01-02 03:04:05"}, {"timestamp": "2026-01-03 00:00:00.5"}]`,
			2, time.Date(2026, 1, 3, 0, 0, 0, 5e8, time.UTC)},
		{"wrapped", `{"sessionID": "s", "interactions": [{"Timestamp": "2026-01-02T03:04:05+02:00"}]}`,
			1, time.Date(2026, 1, 2, 1, 4, 5, 0, time.UTC)},
		{"epoch seconds and millis", `[{"created_at": 1767312000}, {"time": 1767398400000}]`,
			2, time.Date(2026, 1, 3, 0, 0, 0, 0, time.UTC)},
		{"no timestamps", `[{"text": "hi"}, {"timestamp": "yesterday"}]`, 0, time.Time{}},
		{"only a year 0, before Go's zero time", `[{"timestamp": "0000-06-01 00:00:00"}]`,
			1, time.Date(0, 6, 1, 0, 0, 0, 0, time.UTC)},
		{"empty", `[]`, 0, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, _ := setup(t, reply(200, tt.body))
			d, res := c.Details(context.Background(), "c", "s")
			require.Equal(t, convai.Confirmed, res.Class, res.Detail)
			require.Equal(t, tt.n, d.Interactions)
			require.True(t, tt.latest.Equal(d.Latest), "latest %v, want %v", d.Latest, tt.latest)
		})
	}
}

// An element whose sessionID is longer than any Convai ID (policy.MaxIDLength bytes, once
// unescaped) is handed over with no ID and Overlong set, and the list goes on; IDs at the bound
// are kept, however they are escaped.
func TestListOverlongIDSkipped(t *testing.T) {
	t.Parallel()
	longest := strings.Repeat("x", policy.MaxIDLength)
	escaped := strings.Repeat(`\u00e9`, policy.MaxIDLength/2) // 128 é: 256 bytes, written in 768
	body := fmt.Sprintf(`[{"sessionID": "a"},
		{"date": "01-02-2026", "sessionID": "%s", "time": "03:04:05"},
		{"sessionID": "%s"},
		{"sessionID": "%s", "date": "01-02-2026", "time": "03:04:05"},
		{"sessionID": "%sx"},
		{"sessionID": "%s\u00e9"},
		{"sessionID": "b", "extra": {"s": "%s", "n": [1, -2.5e3, true, false, null]}}]`,
		strings.Repeat("y", 2000), longest, escaped, longest, escaped, strings.Repeat("z", 5000))
	c, _ := setup(t, reply(200, body))
	got, res := collect(c, "c")
	requireClean(t, res)
	require.Equal(t, convai.Confirmed, res.Class, res.Detail)
	start := time.Date(2026, 2, 1, 3, 4, 5, 0, time.UTC)
	require.Equal(t, []convai.ListedSession{
		{SessionID: "a"},
		{Overlong: true, Start: start},
		{SessionID: longest},
		{SessionID: strings.Repeat("é", policy.MaxIDLength/2), Start: start},
		{Overlong: true},
		{Overlong: true},
		{SessionID: "b"},
	}, got)
}

// The list parser keeps at most a bounded prefix of a string: a 50 MB session ID costs it no
// more memory than a short one, and the elements after it are read. Not parallel: it measures the
// bytes the process allocates while the parser runs.
func TestListOverlongIDFlatMemory(t *testing.T) {
	const idLen = 50 << 20
	r := io.MultiReader(
		strings.NewReader(`[{"sessionID": "a"}, {"sessionID": "`),
		&repeatReader{b: 'x', n: idLen},
		strings.NewReader(`", "date": "01-02-2026"}, {"sessionID": "b"}]`),
	)
	var got []convai.ListedSession
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	n, err := convai.DecodeList(r, func(s convai.ListedSession) error {
		got = append(got, s)
		return nil
	})
	runtime.ReadMemStats(&after)
	require.NoError(t, err)
	require.Equal(t, 3, n)
	require.Equal(t, []convai.ListedSession{{SessionID: "a"}, {Overlong: true}, {SessionID: "b"}}, got)
	allocated := after.TotalAlloc - before.TotalAlloc
	require.Less(t, allocated, uint64(4<<20), "the parser allocated %d bytes for a list with a %d-byte ID", allocated, idLen)
}

// repeatReader reads as n copies of b.
type repeatReader struct {
	b byte
	n int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.EOF
	}
	k := min(len(p), r.n)
	for i := range k {
		p[i] = r.b
	}
	r.n -= k
	return k, nil
}
