package convai_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/convai"
)

// seenRequest is one request a test server received.
type seenRequest struct {
	method, path string
	key          []string
	body         map[string]json.RawMessage
}

// recorder serves answer and keeps every request it got.
type recorder struct {
	mu   sync.Mutex
	seen []seenRequest
}

func (rc *recorder) handler(t *testing.T, answer func(n int, r seenRequest, w http.ResponseWriter)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		s := seenRequest{method: r.Method, path: r.URL.Path, key: r.Header.Values("CONVAI-API-KEY")}
		if err := json.Unmarshal(raw, &s.body); err != nil {
			t.Errorf("request body is not a JSON object: %v", err)
		}
		rc.mu.Lock()
		rc.seen = append(rc.seen, s)
		n := len(rc.seen)
		rc.mu.Unlock()
		answer(n, s, w)
	}
}

func (rc *recorder) requests() []seenRequest {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]seenRequest(nil), rc.seen...)
}

func bodyString(t *testing.T, b map[string]json.RawMessage, name string) string {
	t.Helper()
	var s string
	require.NoError(t, json.Unmarshal(b[name], &s), "%s in %v", name, b)
	return s
}

func bodyInt(t *testing.T, b map[string]json.RawMessage, name string) int {
	t.Helper()
	var n int
	require.NoError(t, json.Unmarshal(b[name], &n), "%s in %v", name, b)
	return n
}

// TestMemoryRequests: each memory call is one POST to its path under MemoryBaseURL (another host
// than the chat history's), with the key header and the documented body, nothing more.
func TestMemoryRequests(t *testing.T) {
	t.Parallel()
	history := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("a memory call went to the chat-history host: %s", r.URL.Path)
		w.WriteHeader(http.StatusTeapot)
	}))
	t.Cleanup(history.Close)
	rc := &recorder{}
	memory := httptest.NewServer(rc.handler(t, func(_ int, r seenRequest, w http.ResponseWriter) {
		switch r.path {
		case "/mem/v1/memory/list":
			_, _ = io.WriteString(w, `{"memories": [], "total_count": 0, "has_more": false}`)
		case "/mem/v1/memory/delete":
			_, _ = io.WriteString(w, `{"deleted": true, "memory_id": "m/1"}`)
		default:
			_, _ = io.WriteString(w, `{"status": "Deletion in progress"}`)
		}
	}))
	t.Cleanup(memory.Close)
	c, err := convai.New(convai.Config{BaseURL: history.URL, MemoryBaseURL: memory.URL + "/mem/v1/", APIKey: apiKey})
	require.NoError(t, err)
	t.Cleanup(c.CloseIdleConnections)
	ctx := context.Background()

	list, res := c.ListMemories(ctx, convai.MemoryQuery{CharacterID: "char-1", EndUserID: "user \u00e9"}, func(convai.Memory) error { return nil })
	requireClean(t, res)
	require.Equal(t, convai.Confirmed, res.Class, res.Detail)
	require.True(t, list.Empty())
	for _, res := range []convai.Result{
		c.DeleteMemory(ctx, "char-1", "user \u00e9", "m/1"),
		c.DeleteAllMemories(ctx, "char-1", "user \u00e9"),
		c.DeleteEndUser(ctx, "user \u00e9"),
	} {
		requireClean(t, res)
		require.Equal(t, convai.Confirmed, res.Class, res.Detail)
	}

	seen := rc.requests()
	require.Len(t, seen, 4)
	wantPaths := []string{"/mem/v1/memory/list", "/mem/v1/memory/delete", "/mem/v1/memory/delete-all", "/mem/v1/user/end-users/delete"}
	wantMembers := []int{4, 3, 2, 1}
	for i, s := range seen {
		require.Equal(t, http.MethodPost, s.method)
		require.Equal(t, wantPaths[i], s.path)
		require.Equal(t, []string{apiKey}, s.key)
		require.Len(t, s.body, wantMembers[i], "only the documented members: %v", s.body)
		require.Equal(t, "user \u00e9", bodyString(t, s.body, "end_user_id"))
		if i < 3 {
			require.Equal(t, "char-1", bodyString(t, s.body, "character_id"))
		}
	}
	require.Equal(t, 1, bodyInt(t, seen[0].body, "page"))
	require.Equal(t, convai.MaxMemoryPageSize, bodyInt(t, seen[0].body, "page_size"))
	require.Equal(t, "m/1", bodyString(t, seen[1].body, "memory_id"))
}

// TestMemoryBaseURLDefaultsToBaseURL: without MemoryBaseURL the memory endpoints are under BaseURL.
func TestMemoryBaseURLDefaultsToBaseURL(t *testing.T) {
	t.Parallel()
	rc := &recorder{}
	c, _ := setup(t, rc.handler(t, func(_ int, _ seenRequest, w http.ResponseWriter) {
		_, _ = io.WriteString(w, `{"memories": [], "total_count": 0, "has_more": false}`)
	}))
	_, res := c.ListMemories(context.Background(), convai.MemoryQuery{CharacterID: "c", EndUserID: "u"}, func(convai.Memory) error { return nil })
	require.Equal(t, convai.Confirmed, res.Class, res.Detail)
	require.Equal(t, "/memory/list", rc.requests()[0].path)
}

// TestMemoryBaseURLValidated: MemoryBaseURL is held to BaseURL's rules, and named in the error.
func TestMemoryBaseURLValidated(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"ftp://h", "https://", "https://u:p@h", "https://h/?q=1", "://"} {
		_, err := convai.New(convai.Config{MemoryBaseURL: bad, APIKey: apiKey})
		var ce *convai.ConfigError
		require.ErrorAs(t, err, &ce, bad)
		require.Equal(t, "MemoryBaseURL", ce.Field, bad)
		require.NotContains(t, err.Error(), "u:p", "user info is masked")
	}
	_, err := convai.New(convai.Config{MemoryBaseURL: "https://h/" + apiKey + "/x", APIKey: apiKey, BaseURL: "https"})
	require.Error(t, err)
	require.NotContains(t, err.Error(), apiKey)
}

// memoryPage writes one page of n memories numbered from first.
func memoryPage(first, n, total int, hasMore bool) string {
	var b strings.Builder
	b.WriteString(`{"memories": [`)
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, `{"id": "mem-%04d", "memory": "likes tea", "created_at": "2026-01-02T03:04:05Z", "updated_at": "2026-02-03 04:05:06", "metadata": {"error": "x", "nested": [1, {"a": null}]}}`, first+i)
	}
	fmt.Fprintf(&b, `], "total_count": %d, "has_more": %t, "page": 1}`, total, hasMore)
	return b.String()
}

// TestListMemoriesReadsEveryPage: pages from 1 at the page size asked for, until has_more is
// false; each memory once, with its times and without its text.
func TestListMemoriesReadsEveryPage(t *testing.T) {
	t.Parallel()
	const total, size = 25, 10
	rc := &recorder{}
	c, _ := setup(t, rc.handler(t, func(n int, r seenRequest, w http.ResponseWriter) {
		var page, pageSize int
		_ = json.Unmarshal(r.body["page"], &page)
		_ = json.Unmarshal(r.body["page_size"], &pageSize)
		first := (page - 1) * pageSize
		count := min(pageSize, total-first)
		_, _ = io.WriteString(w, memoryPage(first, count, total, first+count < total))
	}))
	var got []convai.Memory
	list, res := c.ListMemories(context.Background(), convai.MemoryQuery{CharacterID: "c", EndUserID: "u", PageSize: size},
		func(m convai.Memory) error {
			got = append(got, m)
			return nil
		})
	requireClean(t, res)
	require.Equal(t, convai.Confirmed, res.Class, res.Detail)
	require.Equal(t, convai.MemoryList{Listed: total, TotalCount: total, Pages: 3}, list)
	require.False(t, list.Empty())
	require.Len(t, got, total)
	for i, m := range got {
		require.Equal(t, fmt.Sprintf("mem-%04d", i), m.ID)
		require.False(t, m.Overlong)
		require.Equal(t, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), m.CreatedAt)
		require.Equal(t, time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC), m.UpdatedAt)
	}
	seen := rc.requests()
	require.Len(t, seen, 3)
	for i, s := range seen {
		require.Equal(t, i+1, bodyInt(t, s.body, "page"))
		require.Equal(t, size, bodyInt(t, s.body, "page_size"))
	}
}

// TestListMemoriesPageBound: a list whose has_more never ends is read up to MaxPages and is then
// no whole list; the pages read were handed over.
func TestListMemoriesPageBound(t *testing.T) {
	t.Parallel()
	rc := &recorder{}
	c, _ := setup(t, rc.handler(t, func(n int, _ seenRequest, w http.ResponseWriter) {
		_, _ = io.WriteString(w, memoryPage(n, 1, 1_000_000, true))
	}))
	seen := 0
	list, res := c.ListMemories(context.Background(), convai.MemoryQuery{CharacterID: "c", EndUserID: "u", MaxPages: 3},
		func(convai.Memory) error { seen++; return nil })
	requireClean(t, res)
	require.Equal(t, convai.Retryable, res.Class)
	require.ErrorIs(t, res.Err, convai.ErrMalformedAnswer)
	require.Contains(t, res.Detail, "after 3 pages")
	require.Len(t, rc.requests(), 3, "no page past the bound is asked for")
	require.Equal(t, 3, seen)
	require.Equal(t, 3, list.Pages)
}

// TestListMemoriesMalformedPages: a 2xx page that is not the documented shape is Retryable with
// ErrMalformedAnswer, nothing of it is handed over, and its text is never quoted.
func TestListMemoriesMalformedPages(t *testing.T) {
	t.Parallel()
	const marker = "QUOTED-" + apiKey
	el := `{"id": "m1", "memory": "` + marker + `"}`
	tests := map[string]string{
		"not JSON":                   marker,
		"an array":                   `[` + el + `]`,
		"memories missing":           `{"total_count": 0, "has_more": false}`,
		"total_count missing":        `{"memories": [], "has_more": false}`,
		"has_more missing":           `{"memories": [], "total_count": 0}`,
		"has_more a string":          `{"memories": [], "total_count": 0, "has_more": "false"}`,
		"total_count negative":       `{"memories": [], "total_count": -1, "has_more": false}`,
		"total_count fractional":     `{"memories": [], "total_count": 1.5, "has_more": false}`,
		"total_count a string":       `{"memories": [], "total_count": "0", "has_more": false}`,
		"total_count too large":      `{"memories": [], "total_count": 10000000000, "has_more": false}`,
		"memories an object":         `{"memories": {}, "total_count": 0, "has_more": false}`,
		"memories given twice":       `{"memories": [], "memories": [], "total_count": 0, "has_more": false}`,
		"memories spelled otherwise": `{"Memories": [], "total_count": 0, "has_more": false}`,
		"a failure named":            `{"memories": [], "total_count": 0, "has_more": false, "error": "` + marker + `"}`,
		"an element not an object":   `{"memories": ["` + marker + `"], "total_count": 1, "has_more": false}`,
		"an id missing":              `{"memories": [{"memory": "` + marker + `"}], "total_count": 1, "has_more": false}`,
		"an id a number":             `{"memories": [{"id": 7}], "total_count": 1, "has_more": false}`,
		"an id empty":                `{"memories": [{"id": ""}], "total_count": 1, "has_more": false}`,
		"an id given twice":          `{"memories": [{"id": "a", "ID": "b"}], "total_count": 1, "has_more": false}`,
		"an id of invalid UTF-8":     "{\"memories\": [{\"id\": \"a\xff\"}], \"total_count\": 1, \"has_more\": false}",
		"more than the page size":    `{"memories": [` + el + `, ` + el + `], "total_count": 2, "has_more": false}`,
		"has_more on an empty page":  `{"memories": [], "total_count": 5, "has_more": true}`,
		"data after the object":      `{"memories": [], "total_count": 0, "has_more": false}` + marker,
		"cut short":                  `{"memories": [` + el,
		"over the bound":             `{"memories": [], "total_count": 0, "has_more": false, "pad": "` + strings.Repeat("x", convai.MaxMemoryPageBody) + `"}`,
	}
	for name, body := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c, _ := setup(t, reply(200, body))
			handed := 0
			_, res := c.ListMemories(context.Background(), convai.MemoryQuery{CharacterID: "c", EndUserID: "u", PageSize: 1},
				func(convai.Memory) error { handed++; return nil })
			requireClean(t, res)
			require.Equal(t, convai.Retryable, res.Class, res.Detail)
			require.ErrorIs(t, res.Err, convai.ErrMalformedAnswer)
			require.Zero(t, handed, "nothing of a malformed page is handed over")
			require.NotContains(t, res.Detail, "QUOTED")
			require.NotContains(t, res.Err.Error(), "QUOTED")
		})
	}
}

// TestListMemoriesOddValues: an over-long id is counted without its ID; a time that cannot be
// read, or lies outside the years 1 to 9999, is zero; a number is seconds or milliseconds.
func TestListMemoriesOddValues(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 257)
	body := `{"memories": [
		{"id": "` + long + `", "created_at": "soon"},
		{"id": "a", "created_at": 1767225600, "updated_at": 1767225600123},
		{"id": "b", "created_at": "0000-01-01T00:00:00Z", "updated_at": null},
		{"id": "c", "created_at": -5, "updated_at": {"t": 1}}
	], "total_count": 4, "has_more": false}`
	c, _ := setup(t, reply(200, body))
	var got []convai.Memory
	_, res := c.ListMemories(context.Background(), convai.MemoryQuery{CharacterID: "c", EndUserID: "u"}, func(m convai.Memory) error {
		got = append(got, m)
		return nil
	})
	require.Equal(t, convai.Confirmed, res.Class, res.Detail)
	require.Equal(t, []convai.Memory{
		{Overlong: true},
		{ID: "a", CreatedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), UpdatedAt: time.Date(2026, 1, 1, 0, 0, 0, 123e6, time.UTC)},
		{ID: "b"},
		{ID: "c"},
	}, got)
}

// TestListMemoriesStoppedByCaller: an error from fn ends the list, Permanent with ErrStopped.
func TestListMemoriesStoppedByCaller(t *testing.T) {
	t.Parallel()
	c, _ := setup(t, reply(200, memoryPage(0, 3, 3, false)))
	stop := errors.New("enough")
	list, res := c.ListMemories(context.Background(), convai.MemoryQuery{CharacterID: "c", EndUserID: "u"}, func(convai.Memory) error { return stop })
	requireClean(t, res)
	require.Equal(t, convai.Permanent, res.Class)
	require.ErrorIs(t, res.Err, convai.ErrStopped)
	require.ErrorIs(t, res.Err, stop)
	require.Zero(t, list.Listed)
}

// memoryCalls runs each memory call against c, named.
func memoryCalls(c *convai.Client) map[string]func(ctx context.Context) convai.Result {
	return map[string]func(ctx context.Context) convai.Result{
		"list": func(ctx context.Context) convai.Result {
			_, res := c.ListMemories(ctx, convai.MemoryQuery{CharacterID: "c", EndUserID: "u"}, func(convai.Memory) error { return nil })
			return res
		},
		"delete":     func(ctx context.Context) convai.Result { return c.DeleteMemory(ctx, "c", "u", "m") },
		"delete-all": func(ctx context.Context) convai.Result { return c.DeleteAllMemories(ctx, "c", "u") },
		"end user":   func(ctx context.Context) convai.Result { return c.DeleteEndUser(ctx, "u") },
	}
}

// TestMemoryStatuses: the memory endpoints' statuses are classified like deletes, and a 404 says
// that long-term memory is not offered, unless its body names an unknown memory or end user.
func TestMemoryStatuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		code       int
		body       string
		header     []string
		class      convai.Class
		retryAfter time.Duration
		is         error
		detail     string
	}{
		{"401", 401, `{"ERROR": "Invalid API key provided."}`, nil, convai.AuthRejected, 0, nil, "Invalid API key provided."},
		{"403 foreign character", 403, `{"ERROR": "This key may not access this character."}`, nil, convai.AuthRejected, 0, nil, "This key may not access this character."},
		{"404 route", 404, `<html>` + apiKey + `</html>`, nil, convai.Permanent, 0, convai.ErrMemoryUnavailable, "does not offer long-term memory"},
		{"404 empty", 404, ``, nil, convai.Permanent, 0, convai.ErrMemoryUnavailable, "does not offer long-term memory"},
		{"404 memory", 404, `{"ERROR": "Memory not found."}`, nil, convai.Permanent, 0, convai.ErrMemoryNotFound, "Memory not found."},
		{"404 end user", 404, `{"error": "End user not found."}`, nil, convai.Permanent, 0, convai.ErrMemoryNotFound, "End user not found."},
		{"400", 400, `{"ERROR": "` + apiKey + `"}`, nil, convai.Permanent, 0, nil, "JSON body without a known message"},
		{"429", 429, `{"ERROR": "Too many requests."}`, []string{"Retry-After", "7"}, convai.Retryable, 7 * time.Second, nil, "Too many requests."},
		{"500", 500, `oops`, nil, convai.Retryable, 0, nil, "non-JSON body of 4 bytes"},
		{"503", 503, `{}`, []string{"Retry-After", "2"}, convai.Retryable, 2 * time.Second, nil, "status 503"},
		{"302", 302, ``, []string{"Location", "https://elsewhere.example/"}, convai.Retryable, 0, nil, "unexpected status 302"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, _ := setup(t, reply(tt.code, tt.body, tt.header...))
			for call, do := range memoryCalls(c) {
				res := do(context.Background())
				requireClean(t, res)
				require.Equal(t, tt.class, res.Class, "%s: %s", call, res.Detail)
				require.Equal(t, tt.code, res.StatusCode, call)
				require.Equal(t, tt.retryAfter, res.RetryAfter, call)
				require.Contains(t, res.Detail, tt.detail, call)
				var se *convai.StatusError
				require.ErrorAs(t, res.Err, &se, call)
				if tt.is != nil {
					require.ErrorIs(t, res.Err, tt.is, call)
				}
				require.Equal(t, tt.code == 404 && tt.is == convai.ErrMemoryUnavailable, errors.Is(res.Err, convai.ErrMemoryUnavailable), call)
				require.False(t, errors.Is(res.Err, convai.ErrUnconfirmed), call)
			}
		})
	}
}

// TestMemoryDeleteAnswers: a 2xx of /memory/delete confirms only the documented shape, for the
// memory asked for.
func TestMemoryDeleteAnswers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		body string
		ok   bool
	}{
		{`{"deleted": true, "memory_id": "m"}`, true},
		{` {"memory_id": "m", "deleted": true, "note": "bye"} `, true},
		{`{"deleted": true, "memory_id": "m", "errors": []}`, true},
		{`{"deleted": true}`, false},
		{`{"memory_id": "m"}`, false},
		{`{"deleted": false, "memory_id": "m"}`, false},
		{`{"deleted": "true", "memory_id": "m"}`, false},
		{`{"deleted": 1, "memory_id": "m"}`, false},
		{`{"deleted": true, "memory_id": "other"}`, false},
		{`{"deleted": true, "memory_id": 7}`, false},
		{`{"Deleted": true, "memory_id": "m"}`, false},
		{`{"deleted": true, "deleted": true, "memory_id": "m"}`, false},
		{`{"deleted": true, "memory_id": "m", "error": "partly"}`, false},
		{`{"deleted": true, "memory_id": "m", "result": {"failed": ["m"]}}`, false},
		{`{"deleted": true, "memory_id": "m", "success": false}`, false},
		{`{"deleted": true, "memory_id": "m"} {}`, false},
		{`[{"deleted": true, "memory_id": "m"}]`, false},
		{``, false},
		{`<html>` + apiKey + `</html>`, false},
	}
	for _, tt := range tests {
		c, _ := setup(t, reply(200, tt.body))
		res := c.DeleteMemory(context.Background(), "c", "u", "m")
		requireClean(t, res)
		if tt.ok {
			require.Equal(t, convai.Confirmed, res.Class, "%s: %s", tt.body, res.Detail)
			require.Equal(t, "status 200: memory deleted", res.Detail)
			continue
		}
		require.Equal(t, convai.Retryable, res.Class, "%s", tt.body)
		require.ErrorIs(t, res.Err, convai.ErrUnconfirmed, tt.body)
		require.Contains(t, res.Detail, "is not a confirmation of the memory delete")
	}
}

// TestMemoryDeleteAllAnswers: a 2xx of delete-all (and of the end user's deletion) accepts the
// deletion only when it says it is in progress or done, and nothing denies it.
func TestMemoryDeleteAllAnswers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code int
		body string
		says string // "" when not accepted
	}{
		{200, `{"status": "Deletion in progress"}`, "deletion in progress"},
		{200, `{"message": "Memory deletion is IN_PROGRESS", "end_user_id": "u"}`, "deletion in progress"},
		{202, `{"state": "in progress"}`, "deletion in progress"},
		{202, ``, "deletion in progress"},
		{200, `{"status": "SUCCESSFULLY DELETED"}`, "deleted"},
		{200, `{"deleted": true}`, "deleted"},
		{200, `{"success": true, "detail": "done"}`, "deleted"},
		{200, ``, ""},
		{204, ``, ""},
		{200, `{}`, ""},
		{200, `{"status": "QUEUED"}`, ""},
		{200, `{"status": "Deletion failed, retry in progress"}`, ""},
		{200, `{"status": "not in progress"}`, ""},
		{200, `{"status": "Deletion in progress", "error": "quota"}`, ""},
		{200, `{"status": "Deletion in progress", "deleted": false}`, ""},
		{200, `{"status": "Deletion in progress", "Status": "x"}`, ""},
		{200, `{"deleted": "true"}`, ""},
		{200, `{"success": true, "success": true}`, ""},
		{200, `["Deletion in progress"]`, ""},
		{200, `"Deletion in progress"`, ""},
		{200, `{"status": "Deletion in progress"} trailing`, ""},
		{200, apiKey, ""},
	}
	for _, tt := range tests {
		c, _ := setup(t, reply(tt.code, tt.body))
		for _, res := range []convai.Result{c.DeleteAllMemories(context.Background(), "c", "u"), c.DeleteEndUser(context.Background(), "u")} {
			requireClean(t, res)
			if tt.says != "" {
				require.Equal(t, convai.Confirmed, res.Class, "%d %s: %s", tt.code, tt.body, res.Detail)
				require.Equal(t, "status "+strconv.Itoa(tt.code)+": "+tt.says, res.Detail)
				continue
			}
			require.Equal(t, convai.Retryable, res.Class, "%d %s", tt.code, tt.body)
			require.ErrorIs(t, res.Err, convai.ErrUnconfirmed, tt.body)
		}
	}
}

// TestMemoryInvalidInput: what cannot be sent is Permanent with ErrInvalidInput, and nothing is
// sent.
func TestMemoryInvalidInput(t *testing.T) {
	t.Parallel()
	rc := &recorder{}
	c, _ := setup(t, rc.handler(t, func(int, seenRequest, http.ResponseWriter) {}))
	ctx := context.Background()
	none := func(convai.Memory) error { return nil }
	var results []convai.Result
	for _, q := range []convai.MemoryQuery{
		{EndUserID: "u"},
		{CharacterID: "c"},
		{CharacterID: "c\xff", EndUserID: "u"},
		{CharacterID: "c", EndUserID: "u", PageSize: convai.MaxMemoryPageSize + 1},
		{CharacterID: "c", EndUserID: "u", PageSize: -1},
		{CharacterID: "c", EndUserID: "u", MaxPages: -1},
	} {
		_, res := c.ListMemories(ctx, q, none)
		results = append(results, res)
	}
	results = append(results,
		c.DeleteMemory(ctx, "c", "u", ""), c.DeleteMemory(ctx, "", "u", "m"), c.DeleteMemory(ctx, "c", "u\xfe", "m"),
		c.DeleteAllMemories(ctx, "c", ""), c.DeleteAllMemories(ctx, "", "u"),
		c.DeleteEndUser(ctx, ""), c.DeleteEndUser(ctx, "\xff"))
	for i, res := range results {
		requireClean(t, res)
		require.Equal(t, convai.Permanent, res.Class, i)
		require.ErrorIs(t, res.Err, convai.ErrInvalidInput, i)
		require.Zero(t, res.StatusCode)
	}
	require.Empty(t, rc.requests())
}

// TestMemoryHungAndCancelled: a hung endpoint ends with the caller's context, Retryable, and the
// context's error is in Err.
func TestMemoryHungAndCancelled(t *testing.T) {
	t.Parallel()
	c, _ := setup(t, hang)
	for call, do := range memoryCalls(c) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan convai.Result, 1)
		go func() { done <- do(ctx) }()
		cancel()
		res := <-done
		requireClean(t, res)
		require.Equal(t, convai.Retryable, res.Class, call)
		require.ErrorIs(t, res.Err, context.Canceled, call)
	}
}

// TestMemoryAnswersQuoteNoBody: no memory answer, of any status, brings any form of the key
// it echoes into a Detail or an error.
func TestMemoryAnswersQuoteNoBody(t *testing.T) {
	t.Parallel()
	const key = "ck-live-M3m0ry4Ns5w6"
	shapes := map[string]func(enc string) string{
		"text":        func(enc string) string { return enc },
		"error":       func(enc string) string { return `{"ERROR": "` + enc + `"}` },
		"member name": func(enc string) string { return `{"` + enc + `": 1, "status": "in progress"}` },
		"memory text": func(enc string) string {
			return `{"memories": [{"id": "m", "memory": "` + enc + `"}], "total_count": 1}`
		},
		"id":             func(enc string) string { return `{"deleted": true, "memory_id": "` + enc + `"}` },
		"failure member": func(enc string) string { return `{"status": "in progress", "errors": ["` + enc + `"]}` },
	}
	for form := range encodedKeys(key) {
		for shape, body := range shapes {
			for _, code := range []int{200, 400, 404, 500} {
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					_, _ = io.Copy(io.Discard, r.Body)
					w.WriteHeader(code)
					_, _ = io.WriteString(w, body(encodedKeys(r.Header.Get("CONVAI-API-KEY"))[form]))
				}))
				c, err := convai.New(convai.Config{BaseURL: srv.URL, APIKey: key})
				require.NoError(t, err)
				for call, do := range memoryCalls(c) {
					res := do(context.Background())
					if res.Class == convai.Confirmed {
						continue
					}
					for _, s := range []string{res.Detail, res.Err.Error()} {
						for name, e := range encodedKeys(key) {
							require.NotContains(t, strings.ToLower(s), strings.ToLower(e), "%s/%s/%d/%s: %s of the key", form, shape, code, call, name)
						}
						requireNoForm(t, s, key)
					}
				}
				c.CloseIdleConnections()
				srv.Close()
			}
		}
	}
}
