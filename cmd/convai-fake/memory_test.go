package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/convai-retention/retention/convai"
	"github.com/convai-retention/retention/convai/convaitest"
	"github.com/convai-retention/retention/internal/syncbuf"
)

func listAllMemories(t *testing.T, c *convai.Client, char, user string) (convai.MemoryList, convai.Result) {
	t.Helper()
	return c.ListMemories(context.Background(), convai.MemoryQuery{CharacterID: char, EndUserID: user}, func(convai.Memory) error { return nil })
}

func postJSON(t *testing.T, url, body string) (int, map[string]any) {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Post(url, "application/json", bytes.NewBufferString(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return resp.StatusCode, out
}

// TestRunServesMemoriesFromFile: the memories of --memories are served; a delete-all completes
// by the next request with no --memory-delete-delay; the control endpoints show the state.
func TestRunServesMemoriesFromFile(t *testing.T) {
	t.Parallel()
	path := t.TempDir() + "/memories.json"
	require.NoError(t, os.WriteFile(path, []byte(`{"end_users": ["quiet"], "memories": {"char-1": {"u1": [
		{"id": "m1", "memory": "likes tea", "session_id": "s1", "created_at": "2026-01-02T03:04:05Z"},
		{"id": "m2", "memory": "has a cat"}]}}}`), 0o600))
	sessions := t.TempDir() + "/sessions.json"
	require.NoError(t, os.WriteFile(sessions, []byte(`{"char-1": {"s1": ["2026-01-02T03:04:05Z"]}}`), 0o600))
	b := start(t, "--memories", path, "--sessions", sessions)
	c := newClient(t, b.baseURL, key)

	list, res := listAllMemories(t, c, "char-1", "u1")
	require.Equal(t, convai.Confirmed, res.Class, res.Detail)
	require.Equal(t, 2, list.Listed)

	var users struct {
		EndUsers []string `json:"end_users"`
	}
	getJSON(t, b.baseURL+"/_fake/end-users", &users)
	require.Equal(t, []string{"quiet", "u1"}, users.EndUsers)

	require.Equal(t, convai.Confirmed, c.DeleteAllMemories(context.Background(), "char-1", "u1").Class)
	list, res = listAllMemories(t, c, "char-1", "u1")
	require.Equal(t, convai.Confirmed, res.Class, res.Detail)
	require.True(t, list.Empty())

	var mem struct {
		Memories []convaitest.Memory `json:"memories"`
		Pending  bool                `json:"delete_all_pending"`
	}
	getJSON(t, b.baseURL+"/_fake/memories?character=char-1&end_user=u1", &mem)
	require.Empty(t, mem.Memories)
	require.False(t, mem.Pending)
	var stats convaitest.Stats
	getJSON(t, b.baseURL+"/_fake/stats", &stats)
	require.Zero(t, stats.Memories)
	require.Equal(t, 1, stats.Outcomes[convaitest.OutcomeDeleteAllStarted])
}

// TestRunSeedsMemoriesWhileRunning: POST /_fake/memories adds end users and memories, and refuses
// a seed that is not one, adding nothing.
func TestRunSeedsMemoriesWhileRunning(t *testing.T) {
	t.Parallel()
	b := start(t)
	code, out := postJSON(t, b.baseURL+"/_fake/memories", `{"memories": {"c": {"u": [{"id": "m1"}, {"id": "m2"}]}}}`)
	require.Equal(t, http.StatusOK, code, out)
	require.EqualValues(t, 2, out["memories"])

	for _, bad := range []string{`{"memories": {"c": {"u": [{"memory": "no id"}]}}}`, `{"memorys": {}}`, `[]`, `{} {}`, `not json`} {
		code, out = postJSON(t, b.baseURL+"/_fake/memories", bad)
		require.Equal(t, http.StatusBadRequest, code, bad)
		require.Contains(t, out["error"], "want {", bad)
	}
	list, res := listAllMemories(t, newClient(t, b.baseURL, key), "c", "u")
	require.Equal(t, convai.Confirmed, res.Class, res.Detail)
	require.Equal(t, 2, list.Listed)
}

// TestRunMemoryFaultFlags: --stuck-delete-all, --foreign-characters and --no-memory.
func TestRunMemoryFaultFlags(t *testing.T) {
	t.Parallel()
	path := t.TempDir() + "/memories.json"
	require.NoError(t, os.WriteFile(path, []byte(`{"memories": {"mine": {"u": [{"id": "m1"}]}, "theirs": {"u": [{"id": "m2"}]}}}`), 0o600))

	b := start(t, "--memories", path, "--stuck-delete-all", "--foreign-characters", " theirs ,")
	c := newClient(t, b.baseURL, key)
	require.Equal(t, convai.Confirmed, c.DeleteAllMemories(context.Background(), "mine", "u").Class)
	list, res := listAllMemories(t, c, "mine", "u")
	require.Equal(t, convai.Confirmed, res.Class, res.Detail)
	require.Equal(t, 1, list.Listed, "a stuck delete-all never completes")
	res = c.DeleteAllMemories(context.Background(), "theirs", "u")
	require.Equal(t, convai.AuthRejected, res.Class)
	require.Equal(t, http.StatusForbidden, res.StatusCode)

	b = start(t, "--memories", path, "--no-memory")
	_, res = listAllMemories(t, newClient(t, b.baseURL, key), "mine", "u")
	require.ErrorIs(t, res.Err, convai.ErrMemoryUnavailable)
}

// TestRunRefusesBadMemoriesFile: a --memories that is not a seed, is not a regular file or does
// not exist is bad input (exit 2); so is a negative --memory-delete-delay.
func TestRunRefusesBadMemoriesFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for name, content := range map[string]string{"no-id.json": `{"memories": {"c": {"u": [{}]}}}`, "shape.json": `{"c": ["m"]}`} {
		require.NoError(t, os.WriteFile(dir+"/"+name, []byte(content), 0o600))
	}
	// Hostile files: a FIFO no one writes (an open would wait for ever), an endless device, one
	// byte over the bound.
	require.NoError(t, syscall.Mkfifo(dir+"/fifo", 0o600))
	big := bytes.Repeat([]byte(" "), maxMemorySeed+1)
	require.NoError(t, os.WriteFile(dir+"/big.json", big, 0o600))
	for _, args := range [][]string{
		{"--memories", dir + "/no-id.json"},
		{"--memories", dir + "/shape.json"},
		{"--memories", dir + "/missing.json"},
		{"--memories", dir},
		{"--memories", dir + "/fifo"},
		{"--memories", "/dev/zero"},
		{"--memories", dir + "/big.json"},
		{"--memory-delete-delay", "-1s"},
	} {
		var stderr syncbuf.Buffer
		err := run(context.Background(), append([]string{"--listen", "127.0.0.1:0"}, args...), env(map[string]string{keyEnv: key}), &bytes.Buffer{}, &stderr)
		require.Equal(t, 2, exitCode(err, &stderr), "%v: %v", args, err)
		require.Contains(t, stderr.String(), args[0])
	}
}

// A seed posted to the control endpoint is bounded like the file: one byte over is refused
// (413) and nothing is added.
func TestPostedMemorySeedIsBounded(t *testing.T) {
	t.Parallel()
	fake := convaitest.New(convaitest.Options{APIKey: key})
	t.Cleanup(fake.Close)
	mux := http.NewServeMux()
	memoryRoutes(mux, fake)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	body := `{"memories": {}}` + strings.Repeat(" ", maxMemorySeed)
	resp, err := http.Post(srv.URL+"/_fake/memories", "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	require.Zero(t, fake.Stats().Memories)
}

// TestRunSeedsListFlags: POST /_fake/memories sets what the session list says of
// is_added_to_memory: true, false, left out, or another value; a flag that is not JSON is
// refused. The list says true of a session a memory was drawn from, false of the others.
func TestRunSeedsListFlags(t *testing.T) {
	t.Parallel()
	path := t.TempDir() + "/sessions.json"
	sessions := `{"c": {"drawn": [], "plain": [], "yes": [], "no": [], "absent": [], "odd": []}}`
	require.NoError(t, os.WriteFile(path, []byte(sessions), 0o600))
	b := start(t, "--sessions", path)
	code, out := postJSON(t, b.baseURL+"/_fake/memories", `{"memories": {"c": {"u": [{"id": "m1", "session_id": "drawn"}]}},
		"list_flags": {"c": {"yes": "true", "no": "false", "absent": "absent", "odd": "\"maybe\""}}}`)
	require.Equal(t, http.StatusOK, code, out)
	code, out = postJSON(t, b.baseURL+"/_fake/memories", `{"list_flags": {"c": {"yes": "not json"}}}`)
	require.Equal(t, http.StatusBadRequest, code, out)

	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, b.baseURL+"/character/chatHistory/list",
		strings.NewReader(`{"charID": "c", "limit": "-1"}`))
	require.NoError(t, err)
	req.Header.Set("CONVAI-API-KEY", key)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var raw []map[string]json.RawMessage
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&raw))
	said := map[string]string{}
	for _, el := range raw {
		var id string
		require.NoError(t, json.Unmarshal(el["sessionID"], &id))
		if v, ok := el["is_added_to_memory"]; ok {
			said[id] = string(v)
		}
	}
	require.Equal(t, map[string]string{"drawn": "true", "plain": "false", "yes": "true", "no": "false", "odd": `"maybe"`}, said,
		"absent is left out")

	var got = map[string]convai.MemoryFlag{}
	res := newClient(t, b.baseURL, key).List(context.Background(), "c", func(s convai.ListedSession) error {
		got[s.SessionID] = s.Memory
		return nil
	})
	require.Equal(t, convai.Confirmed, res.Class, res.Detail)
	require.Equal(t, map[string]convai.MemoryFlag{"drawn": convai.MemoryAdded, "plain": convai.MemoryNotAdded, "yes": convai.MemoryAdded,
		"no": convai.MemoryNotAdded, "absent": convai.MemoryUnstated, "odd": convai.MemoryUnstated}, got)
}
