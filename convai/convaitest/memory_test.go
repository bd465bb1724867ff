package convaitest_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/convai"
	"github.com/convai-retention/retention/convai/convaitest"
)

// clock is a time the test moves by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var t0 = time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)

// client returns a Convai client for the bundle's fake.
func (b *bundle) client(t *testing.T) *convai.Client {
	t.Helper()
	c, err := convai.New(convai.Config{BaseURL: b.srv.URL, APIKey: key})
	require.NoError(t, err)
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// listMemories lists the memories of endUser with char through c.
func listMemories(t *testing.T, c *convai.Client, char, endUser string, pageSize int) ([]convai.Memory, convai.MemoryList, convai.Result) {
	t.Helper()
	var got []convai.Memory
	list, res := c.ListMemories(context.Background(), convai.MemoryQuery{CharacterID: char, EndUserID: endUser, PageSize: pageSize},
		func(m convai.Memory) error {
			got = append(got, m)
			return nil
		})
	return got, list, res
}

func seedMemories(n int, sessionID string) []convaitest.Memory {
	out := make([]convaitest.Memory, n)
	for i := range out {
		out[i] = convaitest.Memory{ID: fmt.Sprintf("m%03d", i), Text: "likes green tea", SessionID: sessionID,
			CreatedAt: t0.Add(time.Duration(i) * time.Minute), UpdatedAt: t0.Add(time.Duration(i) * time.Hour)}
	}
	return out
}

// TestMemoryListAndDelete: the client reads every page the fake serves, deletes one memory, and an
// unknown memory is a 404 the client reads as "no such memory".
func TestMemoryListAndDelete(t *testing.T) {
	t.Parallel()
	b := setup(t, convaitest.Options{})
	require.NoError(t, b.fake.AddMemories(convaitest.MemorySeed{Memories: map[string]map[string][]convaitest.Memory{
		"c1": {"u1": seedMemories(150, ""), "u2": seedMemories(1, "")},
		"c2": {"u1": seedMemories(2, "")},
	}}))
	c := b.client(t)

	got, list, res := listMemories(t, c, "c1", "u1", 0)
	require.Equal(t, convai.Confirmed, res.Class, res.Detail)
	require.Equal(t, convai.MemoryList{Listed: 150, TotalCount: 150, Pages: 2}, list)
	require.Equal(t, "m000", got[0].ID)
	require.Equal(t, t0, got[0].CreatedAt)
	require.Equal(t, t0.Add(149*time.Hour), got[149].UpdatedAt)

	res = c.DeleteMemory(context.Background(), "c1", "u1", "m007")
	require.Equal(t, convai.Confirmed, res.Class, res.Detail)
	require.Len(t, b.fake.Memories("c1", "u1"), 149)
	require.Len(t, b.fake.Memories("c2", "u1"), 2, "another character's memories stay")

	res = c.DeleteMemory(context.Background(), "c1", "u1", "m007")
	require.Equal(t, convai.Permanent, res.Class)
	require.ErrorIs(t, res.Err, convai.ErrMemoryNotFound)

	_, list, res = listMemories(t, c, "c1", "nobody", 0)
	require.Equal(t, convai.Confirmed, res.Class, res.Detail)
	require.True(t, list.Empty())
	st := b.fake.Stats()
	require.Equal(t, 149+1+2, st.Memories)
	require.Equal(t, 3, st.Outcomes[convaitest.OutcomeMemoryListed])
	require.Equal(t, 1, st.Outcomes[convaitest.OutcomeMemoryDeleted])
	reqs := b.fake.Requests()
	require.Equal(t, convaitest.EndpointMemoryDelete, reqs[2].Endpoint)
	require.Equal(t, "u1", reqs[2].EndUserID)
	require.Equal(t, "m007", reqs[2].MemoryID)
}

// TestDeleteAllCompletesAfterDelay: delete-all answers "in progress" at once; the memories it
// covers stay listed until the delay has passed on the fake's clock; a memory added after the
// request is not covered, and is listed after the deletion completed.
func TestDeleteAllCompletesAfterDelay(t *testing.T) {
	t.Parallel()
	clk := &clock{t: t0}
	b := setup(t, convaitest.Options{Now: clk.now, MemoryDeleteDelay: time.Hour})
	require.NoError(t, b.fake.AddMemories(convaitest.MemorySeed{Memories: map[string]map[string][]convaitest.Memory{
		"c1": {"u1": seedMemories(3, "")}, "c2": {"u1": seedMemories(1, "")},
	}}))
	c := b.client(t)

	res := c.DeleteAllMemories(context.Background(), "c1", "u1")
	require.Equal(t, convai.Confirmed, res.Class, res.Detail)
	require.Equal(t, "status 200: deletion in progress", res.Detail)
	require.True(t, b.fake.DeleteAllPending("c1", "u1"))

	_, list, res := listMemories(t, c, "c1", "u1", 0)
	require.Equal(t, convai.Confirmed, res.Class, res.Detail)
	require.Equal(t, 3, list.Listed, "not deleted yet")
	b.fake.AddMemory("c1", "u1", convaitest.Memory{ID: "late", CreatedAt: t0})

	clk.add(time.Hour - time.Nanosecond)
	_, list, _ = listMemories(t, c, "c1", "u1", 0)
	require.Equal(t, 4, list.Listed, "still in progress")

	clk.add(time.Nanosecond)
	got, list, res := listMemories(t, c, "c1", "u1", 0)
	require.Equal(t, convai.Confirmed, res.Class, res.Detail)
	require.Equal(t, convai.MemoryList{Listed: 1, TotalCount: 1, Pages: 1}, list)
	require.Equal(t, "late", got[0].ID, "a memory added after the request reappears in the list")
	require.False(t, b.fake.DeleteAllPending("c1", "u1"))
	require.Len(t, b.fake.Memories("c2", "u1"), 1, "only the character asked for")
	require.Equal(t, 1, b.fake.Stats().Outcomes[convaitest.OutcomeDeleteAllStarted])
}

// TestDeleteAllNeverCompletes: with StuckDeleteAll a delete-all is accepted and its memories stay,
// however long the clock runs; one asked for after the fault is lifted completes.
func TestDeleteAllNeverCompletes(t *testing.T) {
	t.Parallel()
	clk := &clock{t: t0}
	b := setup(t, convaitest.Options{Now: clk.now, StuckDeleteAll: true})
	b.fake.AddMemory("c1", "u1", convaitest.Memory{ID: "m1"})
	c := b.client(t)

	require.Equal(t, convai.Confirmed, c.DeleteAllMemories(context.Background(), "c1", "u1").Class)
	clk.add(365 * 24 * time.Hour)
	_, list, res := listMemories(t, c, "c1", "u1", 0)
	require.Equal(t, convai.Confirmed, res.Class, res.Detail)
	require.False(t, list.Empty())
	require.True(t, b.fake.DeleteAllPending("c1", "u1"))

	b.fake.Update(func(o *convaitest.Options) { o.StuckDeleteAll = false })
	require.Equal(t, convai.Confirmed, c.DeleteAllMemories(context.Background(), "c1", "u1").Class)
	_, list, _ = listMemories(t, c, "c1", "u1", 0)
	require.True(t, list.Empty())
}

// TestEndUserDelete: deleting an end user removes their memories with every character, and the
// end user; an unknown end user is a 404 the client reads as "no such end user".
func TestEndUserDelete(t *testing.T) {
	t.Parallel()
	b := setup(t, convaitest.Options{})
	require.NoError(t, b.fake.AddMemories(convaitest.MemorySeed{
		EndUsers: []string{"quiet"},
		Memories: map[string]map[string][]convaitest.Memory{
			"c1": {"u1": seedMemories(2, ""), "u2": seedMemories(1, "")},
			"c2": {"u1": seedMemories(3, "")},
		},
	}))
	require.Equal(t, []string{"quiet", "u1", "u2"}, b.fake.EndUsers())
	c := b.client(t)

	res := c.DeleteEndUser(context.Background(), "u1")
	require.Equal(t, convai.Confirmed, res.Class, res.Detail)
	require.Empty(t, b.fake.Memories("c1", "u1"))
	require.Empty(t, b.fake.Memories("c2", "u1"))
	require.Len(t, b.fake.Memories("c1", "u2"), 1)
	require.Equal(t, []string{"quiet", "u2"}, b.fake.EndUsers())
	require.Equal(t, convai.Confirmed, c.DeleteEndUser(context.Background(), "quiet").Class, "an end user without memories")

	res = c.DeleteEndUser(context.Background(), "u1")
	require.Equal(t, convai.Permanent, res.Class)
	require.ErrorIs(t, res.Err, convai.ErrMemoryNotFound)
}

// TestMemoryFaults: the memory endpoints take the fake's faults, and answer a foreign character
// with 403 and an account without memory with 404; the client classifies each.
func TestMemoryFaults(t *testing.T) {
	t.Parallel()
	calls := func(c *convai.Client) map[string]func() convai.Result {
		return map[string]func() convai.Result{
			"list": func() convai.Result {
				_, res := c.ListMemories(context.Background(), convai.MemoryQuery{CharacterID: "c1", EndUserID: "u1"}, func(convai.Memory) error { return nil })
				return res
			},
			"delete":     func() convai.Result { return c.DeleteMemory(context.Background(), "c1", "u1", "m000") },
			"delete-all": func() convai.Result { return c.DeleteAllMemories(context.Background(), "c1", "u1") },
			"end user":   func() convai.Result { return c.DeleteEndUser(context.Background(), "u1") },
		}
	}
	tests := []struct {
		name       string
		opts       convaitest.Options
		class      convai.Class
		codes      []int
		retryAfter time.Duration
		is         error
		outcome    convaitest.Outcome
	}{
		{"rate limited", convaitest.Options{RateLimitRate: 1, RetryAfter: 3 * time.Second}, convai.Retryable, []int{429}, 3 * time.Second, nil, convaitest.OutcomeRateLimited},
		{"server errors", convaitest.Options{FailRate: 1}, convai.Retryable, []int{500, 502, 503}, 0, nil, convaitest.OutcomeFailed},
		{"unconfirmed", convaitest.Options{UnconfirmedRate: 1}, convai.Retryable, []int{200}, 0, nil, convaitest.OutcomeUnconfirmed},
		{"dropped", convaitest.Options{DropRate: 1}, convai.Retryable, []int{0}, 0, nil, convaitest.OutcomeDropped},
		{"foreign character", convaitest.Options{ForeignCharacters: []string{"c1"}}, convai.AuthRejected, []int{403}, 0, nil, convaitest.OutcomeForbidden},
		{"no memory", convaitest.Options{NoMemory: true}, convai.Permanent, []int{404}, 0, convai.ErrMemoryUnavailable, convaitest.OutcomeNoMemory},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, tt.opts)
			b.fake.AddMemory("c1", "u1", convaitest.Memory{ID: "m000"})
			c := b.client(t)
			for name, call := range calls(c) {
				if tt.name == "foreign character" && name == "end user" {
					continue // no character: nothing to refuse
				}
				res := call()
				require.Equal(t, tt.class, res.Class, "%s: %s", name, res.Detail)
				require.Contains(t, tt.codes, res.StatusCode, name)
				if tt.codes[0] == 429 || res.StatusCode == 503 {
					require.Equal(t, max(tt.retryAfter, time.Second), res.RetryAfter, name)
				}
				if tt.is != nil {
					require.ErrorIs(t, res.Err, tt.is, name)
				}
			}
			require.Len(t, b.fake.Memories("c1", "u1"), 1, "nothing deleted")
			require.False(t, b.fake.DeleteAllPending("c1", "u1"), "nothing started")
			require.Equal(t, []string{"u1"}, b.fake.EndUsers())
			require.Positive(t, b.fake.Stats().Outcomes[tt.outcome])
		})
	}
}

// TestMemoryLostAnswers: a deletion whose answer is lost happened; the client cannot know.
func TestMemoryLostAnswers(t *testing.T) {
	t.Parallel()
	clk := &clock{t: t0}
	b := setup(t, convaitest.Options{LostAnswerRate: 1, Now: clk.now})
	require.NoError(t, b.fake.AddMemories(convaitest.MemorySeed{Memories: map[string]map[string][]convaitest.Memory{
		"c1": {"u1": seedMemories(2, ""), "u2": seedMemories(1, "")},
	}}))
	c := b.client(t)
	for _, res := range []convai.Result{
		c.DeleteMemory(context.Background(), "c1", "u1", "m000"),
		c.DeleteAllMemories(context.Background(), "c1", "u1"),
		c.DeleteEndUser(context.Background(), "u2"),
	} {
		require.Equal(t, convai.Retryable, res.Class, res.Detail)
		require.Zero(t, res.StatusCode)
	}
	require.Empty(t, b.fake.Memories("c1", "u1"), "deleted, then started and completed")
	require.Equal(t, []string{"u1"}, b.fake.EndUsers())
}

// TestMemoryBadRequests: what the API would refuse is refused before any fault or state.
func TestMemoryBadRequests(t *testing.T) {
	t.Parallel()
	b := setup(t, convaitest.Options{FailRate: 1})
	b.fake.AddMemory("c1", "u1", convaitest.Memory{ID: "m1"})
	tests := []struct {
		path, body, apiKey string
		code               int
		msg                string
	}{
		{convaitest.MemoryListPath, `{"character_id": "c1", "end_user_id": "u1", "page_size": 10}`, key, 400, "page must be"},
		{convaitest.MemoryListPath, `{"character_id": "c1", "end_user_id": "u1", "page": 0, "page_size": 10}`, key, 400, "page must be"},
		{convaitest.MemoryListPath, `{"character_id": "c1", "end_user_id": "u1", "page": 1, "page_size": 101}`, key, 400, "page_size must be"},
		{convaitest.MemoryListPath, `{"character_id": "c1", "end_user_id": "u1", "page": 1}`, key, 400, "page_size must be"},
		{convaitest.MemoryListPath, `{"character_id": "c1", "page": 1, "page_size": 1}`, key, 400, "character_id and end_user_id are required."},
		{convaitest.MemoryListPath, `{"character_id": "c1", "end_user_id": "u1", "page": "1", "page_size": 1}`, key, 400, "Malformed JSON body."},
		{convaitest.MemoryDeletePath, `{"character_id": "c1", "end_user_id": "u1"}`, key, 400, "memory_id are required."},
		{convaitest.MemoryDeleteAllPath, `{"end_user_id": "u1"}`, key, 400, "character_id and end_user_id are required."},
		{convaitest.EndUserDeletePath, `{}`, key, 400, "end_user_id is required."},
		{convaitest.EndUserDeletePath, `{"end_user_id": "u1"}`, "wrong", 401, "Invalid API key provided."},
	}
	for _, tt := range tests {
		r, err := b.do(context.Background(), http.MethodPost, tt.path, tt.apiKey, tt.body)
		require.NoError(t, err)
		require.Equal(t, tt.code, r.status, "%s %s: %s", tt.path, tt.body, r.body)
		require.Contains(t, r.body, tt.msg)
	}
	r, err := b.do(context.Background(), http.MethodGet, convaitest.MemoryListPath, key, "")
	require.NoError(t, err)
	require.Equal(t, http.StatusMethodNotAllowed, r.status)
	require.Len(t, b.fake.Memories("c1", "u1"), 1)
	require.Zero(t, b.fake.Stats().Outcomes[convaitest.OutcomeFailed], "refused before any fault")
}

// TestListSaysAddedToMemory: a session a memory was drawn from is listed with
// is_added_to_memory true, and stays so; deleting its chat history leaves the memory.
func TestListSaysAddedToMemory(t *testing.T) {
	t.Parallel()
	b := setup(t, convaitest.Options{})
	b.fake.AddSession("c1", "s1", t0)
	b.fake.AddSession("c1", "s2", t0)
	b.fake.AddSession("c1", "s3", t0)
	b.fake.AddMemory("c1", "u1", convaitest.Memory{ID: "m1", SessionID: "s1"})
	b.fake.SetAddedToMemory("c1", "s3", true)
	b.fake.SetAddedToMemory("c1", "s3", false)

	_, els := b.list(t, `{"charID": "c1", "limit": "-1"}`)
	flags := map[string]bool{}
	for _, e := range els {
		require.NotNil(t, e.Memory, e.SessionID)
		flags[e.SessionID] = *e.Memory
	}
	require.Equal(t, map[string]bool{"s1": true, "s2": false, "s3": false}, flags)

	require.Equal(t, http.StatusOK, b.post(t, "c1", "s1").status)
	require.Len(t, b.fake.Memories("c1", "u1"), 1, "deleting chat history leaves the memory")
}

// TestAddMemoriesRefusesEmptyIDs: a seed with an empty ID adds nothing.
func TestAddMemoriesRefusesEmptyIDs(t *testing.T) {
	t.Parallel()
	b := setup(t, convaitest.Options{})
	for _, seed := range []convaitest.MemorySeed{
		{EndUsers: []string{"ok", ""}},
		{Memories: map[string]map[string][]convaitest.Memory{"": {"u": {{ID: "m"}}}}},
		{Memories: map[string]map[string][]convaitest.Memory{"c": {"": {{ID: "m"}}}}},
		{Memories: map[string]map[string][]convaitest.Memory{"c": {"u": {{ID: "m"}, {Text: "no id"}}}}},
	} {
		err := b.fake.AddMemories(seed)
		require.Error(t, err)
		require.True(t, strings.Contains(err.Error(), "empty") || strings.Contains(err.Error(), "no id"), err.Error())
	}
	require.Empty(t, b.fake.EndUsers())
	require.Zero(t, b.fake.Stats().Memories)
}
